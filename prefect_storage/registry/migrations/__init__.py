"""The registry's schema versions: Alembic migrations, run from code (no ``alembic.ini``).

Every registry records its schema revision in ``alembic_version``. Opening a registry
(:func:`ensure_schema`, called when ``FlowRegistry`` creates its engine) reads that one row;
at the head revision nothing else happens. Otherwise, under a lock, a registry made before
schema versions (today's tables, no ``alembic_version``) is recognised as revision ``0001``,
an empty one starts from nothing, and every missing migration runs in ONE transaction: an
interrupted upgrade leaves the registry at its old revision. A revision this code does not
know (a newer prefect-storage wrote it) is refused, naming both versions.

Adding a migration is one new file ``versions/NNNN_what_it_does.py`` (the next number) with
``revision = "NNNN"``, ``down_revision`` the previous number, and ``upgrade()`` /
``downgrade()`` written with ``alembic.op`` (use ``op.batch_alter_table`` for changes
SQLite cannot ALTER in place); then update ``schema.py`` to match. The file name's number is
the revision, so the head is known without loading Alembic (tests check that the two agree,
and that the migrated schema equals ``schema.py``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...exceptions import RegistryError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = [
    "LEGACY_REVISION",
    "VERSIONS_DIR",
    "current_revision",
    "ensure_schema",
    "head_revision",
    "upgrade",
]

VERSIONS_DIR = Path(__file__).resolve().parent / "versions"
"""The migration scripts shipped with the package, one ``NNNN_slug.py`` per revision."""

LEGACY_REVISION = "0001"
"""The schema of registries written before schema versions existed (no ``alembic_version``)."""

LEGACY_TABLE = "flows"
"""A table every pre-versioning registry has: with it but no ``alembic_version``, it is 0001."""

VERSION_TABLE = "alembic_version"

PG_LOCK_KEY = 0x7072_6566_7374_7267  # "prefstrg": one advisory-lock id for every registry
"""The ``pg_advisory_xact_lock`` key held while a PostgreSQL registry is migrated."""

_REVISION_FILE = re.compile(r"^(\d{4})_\w+\.py$")


@cache
def _known_revisions(locations: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Revision ids from the file names, in order (a listdir, not an Alembic scan)."""
    names = [
        match.group(1)
        for folder in (str(VERSIONS_DIR), *locations)
        for name in os.listdir(folder)
        if (match := _REVISION_FILE.match(name))
    ]
    return tuple(sorted(names))


def head_revision(version_locations: Sequence[str] = ()) -> str:
    """The newest schema revision this code (plus ``version_locations``) can migrate to."""
    return _known_revisions(tuple(version_locations))[-1]


def ensure_schema(engine: Engine, display_url: str) -> None:
    """Bring the registry at ``engine`` to the head revision (see the module docstring).

    Raises :class:`RegistryError` for a registry newer than this code; database errors
    (unreachable, not a database) propagate for the caller to word.
    """
    from sqlalchemy import text

    head = head_revision()
    # Fast path, as agents open registries often: one SELECT, no Alembic import.
    with engine.connect() as connection:
        try:
            found = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
            revisions = list(found)
        except Exception:
            connection.rollback()
            revisions = []  # no version table yet: the slow path looks closer
    if revisions == [head]:
        return
    _refuse_unknown(revisions, display_url)
    upgrade(engine, display_url)


def upgrade(
    engine: Engine,
    display_url: str,
    destination: str | None = None,
    version_locations: Sequence[str] = (),
) -> tuple[str | None, str]:
    """Migrate to ``destination`` (default: head) in one transaction, under a lock.

    Returns ``(from, to)``: the revision found (``None`` for an empty database) and the one
    the registry is at now; equal when there was nothing to do. ``version_locations`` adds
    folders of migration scripts (tests use it).
    """
    from alembic.runtime.environment import EnvironmentContext

    script = _script_directory(tuple(version_locations))
    destination = destination or head_revision(version_locations)
    known = _known_revisions(tuple(version_locations))
    with _migration_transaction(engine) as connection:
        current, recorded = _read_revision(connection)
        _refuse_unknown([current] if current else [], display_url, known)
        if current == destination:
            return current, destination
        from alembic.config import Config

        def steps(heads: Any, _context: Any) -> Any:
            return script._upgrade_revs(destination, heads)

        with EnvironmentContext(Config(), script, fn=steps, destination_rev=destination) as env:
            # We hold the transaction: Alembic must neither begin nor commit one itself.
            env.configure(
                connection=connection, transaction_per_migration=False, render_as_batch=True
            )
            if current == LEGACY_REVISION and not recorded:
                env.get_context().stamp(script, LEGACY_REVISION)
            env.run_migrations()
        return current, destination


def current_revision(engine: Engine) -> str | None:
    """The registry's revision without changing it (0001 for a pre-versioning registry)."""
    with engine.connect() as connection:
        return _read_revision(connection)[0]


@contextmanager
def _migration_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction for the whole upgrade, holding a lock that other openers wait on.

    PostgreSQL: a transaction-level advisory lock (released by commit or rollback, so a
    killed process cannot leave it held). SQLite: ``BEGIN EXCLUSIVE``, which is both the
    cross-process lock and the transaction; without an explicit BEGIN the sqlite3 module
    would autocommit each CREATE/ALTER and an interrupted upgrade could stop half-way.
    """
    from sqlalchemy import text

    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN EXCLUSIVE")
        elif engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
        try:
            yield connection
        except BaseException:
            connection.rollback()
            raise
        connection.commit()


def _read_revision(connection: Connection) -> tuple[str | None, bool]:
    """The revision and whether ``alembic_version`` records it (False: inferred from tables)."""
    from sqlalchemy import text

    if _has_table(connection, VERSION_TABLE):
        rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
        revisions = sorted(rows)
        if revisions:
            return revisions[-1], True
    return (LEGACY_REVISION if _has_table(connection, LEGACY_TABLE) else None), False


def _has_table(connection: Connection, name: str) -> bool:
    from sqlalchemy import inspect

    return bool(inspect(connection).has_table(name))


def _refuse_unknown(
    revisions: list[str], display_url: str, known: tuple[str, ...] | None = None
) -> None:
    known = known or _known_revisions()
    for revision in revisions:
        if revision not in known:
            from ..._version import __version__

            newer = revision.isdigit() and revision > known[-1]
            raise RegistryError(
                f"The flow registry at {display_url} has schema version {revision}, "
                f"{'newer than' if newer else 'unknown to'} this prefect-storage "
                f"(schema {known[-1]}, version {__version__}); upgrade prefect-storage."
            )


@cache
def _script_directory(locations: tuple[str, ...] = ()) -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(
        str(VERSIONS_DIR.parent), version_locations=[str(VERSIONS_DIR), *locations]
    )
