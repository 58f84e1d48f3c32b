"""The flow registry: registered flows (by name and version) and their flow runs.

SQLite at ``<home>/registry.db`` by default; any SQLAlchemy URL in
``PREFECT_STORAGE_REGISTRY_URL`` (``postgresql://...`` for agents on many machines)
uses the same schema. SQLAlchemy is imported only when a registry is used.
"""

from __future__ import annotations

import os
import unicodedata
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .._deps import import_optional
from ..config import home_dir
from ..exceptions import (
    FlowRunParameterError,
    RegistryError,
    RegistryNameError,
    RegistryUnavailableError,
    UnknownFlowError,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = ["AgentRecord", "FlowRecord", "FlowRegistry", "FlowRunRecord", "RunState"]

REGISTRY_URL_ENV = "PREFECT_STORAGE_REGISTRY_URL"
"""A SQLAlchemy URL for the registry; default ``sqlite:///<home>/registry.db``."""

MAX_NAME_LENGTH = 255
"""Longest flow, project or agent name (the columns are VARCHAR(255) on every database)."""
LEASE_SECONDS_ENV = "PREFECT_STORAGE_LEASE_SECONDS"
"""Seconds a claimed run's lease lasts unless renewed; default :data:`DEFAULT_LEASE_SECONDS`."""

DEFAULT_LEASE_SECONDS = 30.0
"""An agent renews the leases of its runs every third of this; a run not renewed this long
is taken to have lost its agent (see :meth:`FlowRegistry.expire_leases`)."""

LIVE_AGENT_LEASES = 3
"""An agent not seen for this many lease periods is taken to be gone."""


class RunState:
    """The life of a flow run: Scheduled -> Claimed (by an agent) -> Running -> final.

    ``runs cancel`` ends a Scheduled run Cancelled at once; a Claimed or Running one goes
    Cancelling until its agent has stopped it (then Cancelled).
    """

    SCHEDULED = "Scheduled"
    CLAIMED = "Claimed"
    RUNNING = "Running"
    CANCELLING = "Cancelling"
    SUCCESS = "Success"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    FINAL = (SUCCESS, FAILED, CANCELLED)
    LEASED = (CLAIMED, RUNNING, CANCELLING)
    """States held by an agent under a lease that must be renewed."""


def lease_seconds_from_env() -> float:
    """The lease length from ``PREFECT_STORAGE_LEASE_SECONDS``, else the default."""
    raw = os.environ.get(LEASE_SECONDS_ENV)
    if not raw:
        return DEFAULT_LEASE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise RegistryError(
            f"{LEASE_SECONDS_ENV}={raw!r} is not a positive number of seconds; "
            f"unset it for the default ({DEFAULT_LEASE_SECONDS:g}) or give e.g. 30"
        )
    return value


@dataclass(frozen=True)
class FlowRecord:
    id: str
    name: str
    version: int
    project: str | None
    storage: dict[str, Any]
    labels: list[str]
    run_config: dict[str, Any]
    parameters: list[dict[str, Any]]
    sha256: str | None
    created_at: datetime
    created: bool = field(default=True, compare=False)
    """False when registering found identical content and made no new version."""


@dataclass(frozen=True)
class FlowRunRecord:
    id: str
    flow_id: str
    flow_name: str
    flow_version: int
    parameters: dict[str, Any]
    labels: list[str]
    state: str
    message: str | None
    agent: str | None
    task_states: dict[str, Any] | None
    created_at: datetime
    claimed_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    lease_expires_at: datetime | None = None
    """Until when the agent holding the run (Claimed/Running/Cancelling) has it."""


@dataclass(frozen=True)
class AgentRecord:
    """An agent as it last reported itself (on start and on every heartbeat)."""

    name: str
    kind: str
    labels: list[str]
    started_at: datetime
    last_seen_at: datetime


def _now() -> datetime:
    return datetime.now(timezone.utc)


def default_registry_url() -> str:
    return os.environ.get(REGISTRY_URL_ENV) or f"sqlite:///{home_dir() / 'registry.db'}"


class FlowRegistry:
    """Flows and flow runs in one database (see the module docstring for the URL)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_registry_url()
        self._engine: Engine | None = None

    def __repr__(self) -> str:
        return f"<FlowRegistry: {self.display_url}>"

    @property
    def display_url(self) -> str:
        """The URL with any password masked."""
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except Exception:
            return "<invalid registry URL>"

    # -- connection ----------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    def _create_engine(self, migrate: bool = True) -> Engine:
        from sqlalchemy import create_engine, event
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(self.url)
        except ArgumentError:
            raise RegistryError(
                f"The flow registry URL ({REGISTRY_URL_ENV} or `registry=`) is not a valid "
                "database URL; use e.g. "
                "postgresql://user@host/db or sqlite:////path/registry.db"
            ) from None
        connect_args: dict[str, Any] = {}
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        if url.drivername == "postgresql+psycopg":
            import_optional("psycopg", "postgres")  # a missing driver names its extra
        if url.get_backend_name() == "postgresql":
            connect_args["connect_timeout"] = 5
        if url.get_backend_name() == "sqlite":
            connect_args["timeout"] = 30
            if url.database:
                os.makedirs(os.path.dirname(os.path.abspath(url.database)), exist_ok=True)
        try:
            engine = create_engine(url, connect_args=connect_args, pool_pre_ping=True)
        except ImportError as exc:  # another dialect's driver (the registry needs no other)
            raise RegistryError(
                f"The driver for {url.drivername} is not installed ({exc.name}); the registry "
                "runs on SQLite or PostgreSQL (pip install 'prefect-storage[postgres]')"
            ) from None
        if url.get_backend_name() == "sqlite":

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
                # WAL lets agents read while another process writes.
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()

        if migrate:
            try:
                self._create_tables(engine)
            except BaseException:
                engine.dispose()
                raise
        return engine

    def _create_tables(self, engine: Engine) -> None:
        """Create the schema, or migrate it to this code's revision (see ``.migrations``)."""
        from . import migrations

        with self._schema_errors(engine):
            migrations.ensure_schema(engine, self.display_url)

    @contextmanager
    def _schema_errors(self, engine: Engine) -> Iterator[None]:
        """Database errors met while opening the registry, as one-line registry errors."""
        from sqlalchemy.exc import DatabaseError, OperationalError

        try:
            yield
        except OperationalError as exc:
            raise RegistryUnavailableError(
                f"Cannot reach the flow registry at {self.display_url}: {_first_line(exc.orig)}"
            ) from None
        except DatabaseError as exc:
            if engine.dialect.name == "sqlite":
                raise RegistryError(
                    f"The flow registry file {engine.url.database} is not a usable SQLite "
                    f"database ({_first_line(exc.orig)}); move it aside (a new registry is "
                    f"created on next use) or point {REGISTRY_URL_ENV} at the right one."
                ) from None
            raise RegistryError(
                f"The flow registry at {self.display_url} could not be opened: "
                f"{_first_line(exc.orig)}"
            ) from None

    def upgrade_schema(self) -> tuple[str | None, str]:
        """Migrate the registry's schema to this code's revision now; returns (from, to).

        ``from`` is ``None`` for an empty database; equal revisions mean it was up to date.
        """
        from . import migrations

        engine = self._engine or self._create_engine(migrate=False)
        try:
            with self._schema_errors(engine):
                revisions = migrations.upgrade(engine, self.display_url)
        except BaseException:
            if engine is not self._engine:
                engine.dispose()
            raise
        self._engine = engine
        return revisions

    def schema_version(self) -> tuple[str | None, str]:
        """The registry's schema revision (``None``: empty) and this code's, changing nothing."""
        from . import migrations

        engine = self._engine or self._create_engine(migrate=False)
        try:
            with self._schema_errors(engine):
                return migrations.current_revision(engine), migrations.head_revision()
        finally:
            if engine is not self._engine:
                engine.dispose()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        from sqlalchemy.exc import OperationalError

        try:
            with self.engine.begin() as connection:
                yield connection
        except OperationalError as exc:
            raise RegistryUnavailableError(
                f"The flow registry at {self.display_url} failed: {_first_line(exc.orig)}"
            ) from None

    def check(self) -> None:
        """Connect (creating or migrating the schema if needed); raise if it is unusable."""
        with self._transaction():
            pass

    # -- flows ---------------------------------------------------------------------------
    def register_flow(
        self,
        name: str,
        storage: dict[str, Any],
        sha256: str | None,
        labels: list[str] | None = None,
        run_config: dict[str, Any] | None = None,
        parameters: list[dict[str, Any]] | None = None,
        project: str | None = None,
        reuse_identical: bool = True,
    ) -> FlowRecord:
        """Record a new version of flow ``name``, unless its latest version is identical.

        ``reuse_identical=False`` records a new version even then (the caller found the
        identical version's stored flow gone or damaged).
        """
        from sqlalchemy import insert
        from sqlalchemy.exc import IntegrityError

        check_name(name, "name", "flow name")
        if project is not None:
            check_name(project, "project", "project name")
        labels = sorted(set(labels or ()))
        run_config = run_config or {}
        for _ in range(5):
            try:
                with self._transaction() as connection:
                    latest = self._latest(connection, name)
                    if (
                        reuse_identical
                        and latest is not None
                        and _same_content(latest, storage, sha256, labels, run_config)
                    ):
                        return FlowRecord(**{**_flow_fields(latest), "created": False})
                    row: dict[str, Any] = {
                        "id": str(uuid.uuid4()),
                        "name": name,
                        "version": (latest.version + 1) if latest is not None else 1,
                        "project": project,
                        "storage": storage,
                        "labels": labels,
                        "run_config": run_config,
                        "parameters": parameters or [],
                        "sha256": sha256,
                        "created_at": _now(),
                    }
                    from .schema import flows

                    connection.execute(insert(flows).values(**row))
                    return FlowRecord(**row)
            except IntegrityError:
                continue  # another registration took this version number; try the next
        raise RegistryError(f"Could not record a new version of flow {name!r}: too much contention")

    def _latest(self, connection: Connection, name: str) -> Any:
        from sqlalchemy import select

        from .schema import flows

        query = select(flows).where(flows.c.name == name).order_by(flows.c.version.desc())
        return connection.execute(query.limit(1)).first()

    def get_flow(self, name: str, version: int | None = None) -> FlowRecord:
        """The latest version of flow ``name``, or the given ``version``."""
        from sqlalchemy import select

        from .schema import flows

        check_name(name, "name", "flow name")
        with self._transaction() as connection:
            if version is None:
                row = self._latest(connection, name)
            else:
                query = select(flows).where(flows.c.name == name, flows.c.version == version)
                row = connection.execute(query).first()
                if row is None and self._latest(connection, name) is not None:
                    versions = connection.execute(
                        select(flows.c.version).where(flows.c.name == name)
                    ).scalars()
                    raise UnknownFlowError(
                        f"Flow {name!r} has no version {version}; registered versions: "
                        f"{', '.join(map(str, sorted(versions)))}."
                    )
        if row is None:
            raise UnknownFlowError(
                f"No flow named {name!r} is registered; `prefect-storage flows ls` lists them."
            )
        return FlowRecord(**_flow_fields(row))

    def list_flows(self, all_versions: bool = False) -> list[FlowRecord]:
        from sqlalchemy import select

        from .schema import flows

        with self._transaction() as connection:
            rows = connection.execute(select(flows).order_by(flows.c.name, flows.c.version))
            records = [FlowRecord(**_flow_fields(row)) for row in rows]
        if all_versions:
            return records
        return list({record.name: record for record in records}.values())

    # -- flow runs -----------------------------------------------------------------------
    def create_flow_run(
        self, name: str, parameters: dict[str, Any] | None = None, version: int | None = None
    ) -> FlowRunRecord:
        """Schedule a run of flow ``name`` (latest version unless ``version``)."""
        from sqlalchemy import insert

        from .schema import flow_runs

        flow = self.get_flow(name, version)
        parameters = dict(parameters or {})
        _check_parameters(flow, parameters)
        run_id = str(uuid.uuid4())
        with self._transaction() as connection:
            connection.execute(
                insert(flow_runs).values(
                    id=run_id,
                    flow_id=flow.id,
                    parameters=parameters,
                    labels=flow.labels,
                    state=RunState.SCHEDULED,
                    created_at=_now(),
                )
            )
        return self.get_flow_run(run_id)

    def claim_flow_runs(
        self,
        agent_labels: list[str],
        agent: str,
        limit: int | None = None,
        lease_seconds: float | None = None,
    ) -> list[FlowRunRecord]:
        """Claim scheduled runs whose labels the agent has; each run goes to one agent only.

        Each claimed run gets a lease of ``lease_seconds`` (default: from the environment)
        that the agent must keep renewing (:meth:`renew_leases`).
        """
        from sqlalchemy import select, update

        from .schema import flow_runs

        check_name(agent, "agent", "agent name")
        lease = timedelta(seconds=lease_seconds or lease_seconds_from_env())
        have = set(agent_labels)
        claimed: list[str] = []
        with self._transaction() as connection:
            candidates = connection.execute(
                select(flow_runs.c.id, flow_runs.c.labels)
                .where(flow_runs.c.state == RunState.SCHEDULED)
                .order_by(flow_runs.c.created_at)
            ).all()
        for run_id, labels in candidates:
            if limit is not None and len(claimed) >= limit:
                break
            if not set(labels) <= have:
                continue
            # The state condition makes the claim atomic: of two agents, one updates a row.
            with self._transaction() as connection:
                result = connection.execute(
                    update(flow_runs)
                    .where(flow_runs.c.id == run_id, flow_runs.c.state == RunState.SCHEDULED)
                    .values(
                        state=RunState.CLAIMED,
                        agent=agent,
                        claimed_at=_now(),
                        lease_expires_at=_now() + lease,
                    )
                )
            if result.rowcount == 1:
                claimed.append(run_id)
        return [self.get_flow_run(run_id) for run_id in claimed]

    def set_flow_run_state(
        self,
        run_id: str,
        state: str,
        message: str | None = None,
        task_states: dict[str, Any] | None = None,
        expected: Collection[str] | None = None,
    ) -> bool:
        """Set the run's state; with ``expected``, only if it is in one of those states
        (atomic: of two writers, one wins). Returns whether the run was updated."""
        from sqlalchemy import update

        from .schema import flow_runs

        values: dict[str, Any] = {"state": state, "message": message}
        if state == RunState.RUNNING:
            values["started_at"] = _now()
        if state in RunState.FINAL:
            values["finished_at"] = _now()
        if task_states is not None:
            values["task_states"] = task_states
        query = update(flow_runs).where(flow_runs.c.id == run_id)
        if expected is not None:
            query = query.where(flow_runs.c.state.in_(list(expected)))
        with self._transaction() as connection:
            return bool(connection.execute(query.values(**values)).rowcount)

    # -- leases and cancelling -----------------------------------------------------------
    def renew_leases(
        self, run_ids: Collection[str], lease_seconds: float, agent: str | None = None
    ) -> dict[str, str]:
        """Extend the leases of those runs still Claimed/Running/Cancelling (held by
        ``agent`` if given) to now + ``lease_seconds``; returns every given run's state
        (a missing id is left out), so the holder learns of a cancel request."""
        from sqlalchemy import select, update

        from .schema import flow_runs

        ids = list(run_ids)
        if not ids:
            return {}
        query = update(flow_runs).where(
            flow_runs.c.id.in_(ids), flow_runs.c.state.in_(RunState.LEASED)
        )
        if agent is not None:
            query = query.where(flow_runs.c.agent == agent)
        with self._transaction() as connection:
            connection.execute(
                query.values(lease_expires_at=_now() + timedelta(seconds=lease_seconds))
            )
            rows = connection.execute(
                select(flow_runs.c.id, flow_runs.c.state).where(flow_runs.c.id.in_(ids))
            )
            return {run_id: state for run_id, state in rows}

    def expire_leases(self) -> list[str]:
        """End every run whose lease expired: Cancelling -> Cancelled, Claimed/Running ->
        Failed ("agent lost: ..."), each with a log line; returns their ids.

        Each run is ended by one UPDATE conditioned on its state and its expired lease, so
        of two reapers (agents, ``run --wait``, ``runs ls``) exactly one ends it and logs,
        and a lease renewed meanwhile is left alone.
        """
        from sqlalchemy import insert, select, update

        from .schema import flow_run_logs, flow_runs

        now = _now()
        with self._transaction() as connection:
            expired = connection.execute(
                select(
                    flow_runs.c.id,
                    flow_runs.c.state,
                    flow_runs.c.agent,
                    flow_runs.c.lease_expires_at,
                ).where(flow_runs.c.state.in_(RunState.LEASED), flow_runs.c.lease_expires_at < now)
            ).all()
        reaped: list[str] = []
        for run_id, state, agent, expires_at in expired:
            lost = (
                f"agent lost: {agent} stopped renewing its lease (it expired at "
                f"{expires_at:%Y-%m-%d %H:%M:%S} UTC) while the run was {state}"
            )
            final = RunState.CANCELLED if state == RunState.CANCELLING else RunState.FAILED
            message = f"Cancelled; {lost}" if final == RunState.CANCELLED else lost
            with self._transaction() as connection:
                result = connection.execute(
                    update(flow_runs)
                    .where(
                        flow_runs.c.id == run_id,
                        flow_runs.c.state == state,
                        flow_runs.c.lease_expires_at < now,
                    )
                    .values(state=final, message=message, finished_at=now)
                )
                if result.rowcount == 1:
                    connection.execute(
                        insert(flow_run_logs).values(
                            flow_run_id=run_id,
                            timestamp=now,
                            level="ERROR",
                            logger="prefect_storage.registry",
                            message=message,
                        )
                    )
                    reaped.append(run_id)
        return reaped

    def cancel_flow_run(self, run_id: str) -> FlowRunRecord:
        """Cancel a run: Scheduled -> Cancelled at once; Claimed/Running -> Cancelling (its
        agent stops it, then sets Cancelled); a Cancelling run is left as it is. A run in a
        final state raises :class:`RegistryError` ("already <state>")."""
        for _ in range(5):
            current = self.get_flow_run(run_id)
            if current.state in RunState.FINAL:
                raise RegistryError(
                    f"Flow run {run_id} is already {current.state}; only a Scheduled, Claimed "
                    "or Running run can be cancelled."
                )
            if current.state == RunState.CANCELLING:
                return current
            if current.state == RunState.SCHEDULED:
                done = self.set_flow_run_state(
                    run_id,
                    RunState.CANCELLED,
                    message="Cancelled before an agent claimed it.",
                    expected=[RunState.SCHEDULED],
                )
            else:
                done = self.set_flow_run_state(
                    run_id,
                    RunState.CANCELLING,
                    message=f"Cancel requested; waiting for agent {current.agent} to stop it.",
                    expected=[RunState.CLAIMED, RunState.RUNNING],
                )
            if done:
                return self.get_flow_run(run_id)
            # The state moved on (claimed, started or ended) meanwhile: decide again.
        raise RegistryError(f"Could not cancel flow run {run_id}: its state keeps changing")

    # -- agents --------------------------------------------------------------------------
    def record_agent(self, name: str, kind: str, labels: list[str], started_at: datetime) -> None:
        """Insert or refresh agent ``name``'s row; its ``last_seen_at`` becomes now."""
        from sqlalchemy import insert, update
        from sqlalchemy.exc import IntegrityError

        from .schema import agents

        values = {"kind": kind, "labels": sorted(labels), "started_at": started_at}
        for _ in range(3):
            try:
                with self._transaction() as connection:
                    result = connection.execute(
                        update(agents)
                        .where(agents.c.name == name)
                        .values(**values, last_seen_at=_now())
                    )
                    if result.rowcount == 0:
                        connection.execute(
                            insert(agents).values(name=name, **values, last_seen_at=_now())
                        )
                return
            except IntegrityError:
                continue  # inserted by another process at the same moment: update it
        raise RegistryError(f"Could not record agent {name!r}: too much contention")

    def remove_agent(self, name: str) -> None:
        from sqlalchemy import delete

        from .schema import agents

        with self._transaction() as connection:
            connection.execute(delete(agents).where(agents.c.name == name))

    def list_agents(self, seen_within: float | None = None) -> list[AgentRecord]:
        """Agents by name; with ``seen_within``, only those seen in the last that many seconds."""
        from sqlalchemy import select

        from .schema import agents

        query = select(agents).order_by(agents.c.name)
        if seen_within is not None:
            query = query.where(agents.c.last_seen_at >= _now() - timedelta(seconds=seen_within))
        with self._transaction() as connection:
            return [AgentRecord(**row._mapping) for row in connection.execute(query)]

    def get_flow_run(self, run_id: str) -> FlowRunRecord:
        runs = self._select_runs(run_id=run_id)
        if not runs:
            raise UnknownFlowError(f"No flow run with id {run_id!r}.")
        return runs[0]

    def list_flow_runs(self, flow_name: str | None = None) -> list[FlowRunRecord]:
        if flow_name is not None:
            check_name(flow_name, "flow_name", "flow name")
        return self._select_runs(flow_name=flow_name)

    def _select_runs(
        self, run_id: str | None = None, flow_name: str | None = None
    ) -> list[FlowRunRecord]:
        from sqlalchemy import select

        from .schema import flow_runs, flows

        query = (
            select(
                flow_runs, flows.c.name.label("flow_name"), flows.c.version.label("flow_version")
            )
            .join(flows, flows.c.id == flow_runs.c.flow_id)
            .order_by(flow_runs.c.created_at)
        )
        if run_id is not None:
            query = query.where(flow_runs.c.id == run_id)
        if flow_name is not None:
            query = query.where(flows.c.name == flow_name)
        with self._transaction() as connection:
            return [FlowRunRecord(**row._mapping) for row in connection.execute(query)]

    # -- logs ----------------------------------------------------------------------------
    def add_logs(self, run_id: str, records: list[dict[str, Any]]) -> None:
        """Append log records (``timestamp``, ``level``, ``logger``, ``message``)."""
        from sqlalchemy import insert

        from .schema import flow_run_logs

        if records:
            with self._transaction() as connection:
                connection.execute(
                    insert(flow_run_logs), [{"flow_run_id": run_id, **r} for r in records]
                )

    def get_logs(self, run_id: str, after_id: int = 0) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from .schema import flow_run_logs

        query = (
            select(flow_run_logs)
            .where(flow_run_logs.c.flow_run_id == run_id, flow_run_logs.c.id > after_id)
            .order_by(flow_run_logs.c.id)
        )
        with self._transaction() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]


def check_name(value: Any, argument: str, what: str) -> None:
    """Refuse a name the registry cannot store the same way on SQLite and PostgreSQL.

    Checked before any SQL: PostgreSQL rejects a NUL or more than 255 characters with a
    ``DataError`` deep in the driver, while SQLite would silently accept them.
    """
    if not isinstance(value, str) or not value:
        raise RegistryNameError(
            f"The {what} (`{argument}`) must be a non-empty string, got {value!r}."
        )
    if len(value) > MAX_NAME_LENGTH:
        raise RegistryNameError(
            f"The {what} (`{argument}`) is {len(value)} characters long ({value[:20]!r}...); "
            f"the flow registry allows at most {MAX_NAME_LENGTH}: use a shorter one."
        )
    for position, char in enumerate(value):
        if unicodedata.category(char) == "Cc":
            raise RegistryNameError(
                f"The {what} (`{argument}`) {value!r} contains the control character "
                f"U+{ord(char):04X} at position {position}; names must be printable text."
            )


def _flow_fields(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


def _same_content(
    latest: Any,
    storage: dict[str, Any],
    sha256: str | None,
    labels: list[str],
    run_config: dict[str, Any],
) -> bool:
    def without_locations(payload: dict[str, Any]) -> dict[str, Any]:
        # A new timestamp key for identical content is not a change worth a version.
        return {k: v for k, v in payload.items() if k not in ("flows", "__version__")}

    return (
        sha256 is not None
        and latest.sha256 == sha256
        and sorted(latest.labels) == labels
        and latest.run_config == run_config
        and without_locations(latest.storage) == without_locations(storage)
    )


def _check_parameters(flow: FlowRecord, given: dict[str, Any]) -> None:
    declared = {p["name"]: p for p in flow.parameters}
    known = ", ".join(sorted(declared)) or "none"
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise FlowRunParameterError(
            f"Flow {flow.name!r} has no parameter {unknown[0]!r}; its parameters: {known}."
        )
    missing = sorted(n for n, p in declared.items() if p.get("required") and n not in given)
    if missing:
        raise FlowRunParameterError(
            f"Flow {flow.name!r} needs parameter {missing[0]!r}: pass -p {missing[0]}=VALUE."
        )


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
