"""The registry's versioned schema: a registry made before schema versions is upgraded in
place and still runs its flows; migrations equal ``schema.py``; an upgrade is all or nothing,
under a lock; a newer registry is refused; opening an up-to-date registry stays cheap.
Every test runs on SQLite and on a real PostgreSQL (the ``registry_url`` fixture)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, inspect, select, text
from sqlalchemy.engine import Engine

from prefect_storage._version import __version__
from prefect_storage.agents import LocalAgent
from prefect_storage.exceptions import RegistryError
from prefect_storage.registry import FlowRegistry, RunState, migrations, schema
from tests.registry.conftest import CLI, REPO_ROOT
from tests.registry.fixtures import schema_0001

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURE_FLOW = "registry-0001-fixture"
FIXTURE_LABEL = "registry-0001"
OLD_TABLES = (schema_0001.flows, schema_0001.flow_runs, schema_0001.flow_run_logs)
"""Parents first: the order rows are copied in."""

DEADLINE = 60.0
"""Seconds a test waits for a subprocess to reach a point or finish."""


def _engine(url: str) -> Engine:
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def _rows(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of the 0001 tables (0001 columns only), in a stable order."""
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: [
                    dict(row._mapping)
                    for row in connection.execute(select(table).order_by(*table.primary_key))
                ]
                for table in OLD_TABLES
            }
    finally:
        engine.dispose()


def _table_names(url: str) -> set[str]:
    engine = _engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _flow_run_columns(url: str) -> set[str]:
    engine = _engine(url)
    try:
        return {column["name"] for column in inspect(engine).get_columns("flow_runs")}
    finally:
        engine.dispose()


def _recorded_revision(url: str) -> str | None:
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def _set_revision(url: str, revision: str) -> None:
    engine = _engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()


@pytest.fixture
def legacy_registry(registry_url: str, home: Path, tmp_path: Path) -> str:
    """``registry_url`` holding the registry that the code of schema 0001 wrote (the committed
    SQL dump), with its flow file in ``home``. On PostgreSQL the tables are made as that code
    made them (``create_all`` of the frozen schema) and the dump's rows copied in."""
    shutil.copytree(FIXTURES / "home-0001", home, dirs_exist_ok=True)
    dump = (FIXTURES / "registry-0001.sql").read_text().replace("@HOME@", str(home))
    if registry_url.startswith("sqlite"):
        path = Path(registry_url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as connection:
            connection.executescript(dump)
        connection.close()
        return registry_url
    source = tmp_path / "dump.db"
    with sqlite3.connect(source) as connection:
        connection.executescript(dump)
    connection.close()
    rows = _rows(f"sqlite:///{source}")
    engine = _engine(registry_url)
    try:
        schema_0001.metadata.create_all(engine)
        with engine.begin() as connection:
            for table in OLD_TABLES:
                connection.execute(insert(table), rows[table.name])
            # As after inserts by the old code: the log ids' sequence is past the copied rows.
            connection.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('flow_run_logs', 'id'), "
                    "(SELECT max(id) FROM flow_run_logs))"
                )
            )
    finally:
        engine.dispose()
    return registry_url


def _fixture_rows(home: Path) -> dict[str, list[dict[str, Any]]]:
    """The dump's rows as read straight from SQLite (what the old registry holds)."""
    dump = (FIXTURES / "registry-0001.sql").read_text().replace("@HOME@", str(home))
    path = home.parent / "expected.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(dump)
    connection.close()
    return _rows(f"sqlite:///{path}")


def _comparable(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    # SQLite keeps no zone and PostgreSQL does: compare instants as UTC without the zone.
    def plain(value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    return {
        name: [{key: plain(value) for key, value in row.items()} for row in table_rows]
        for name, table_rows in rows.items()
    }


def _metadata_diff(url: str, metadata: Any) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = _engine(url)
    try:
        with engine.connect() as connection:
            return list(compare_metadata(MigrationContext.configure(connection), metadata))
    finally:
        engine.dispose()


# -- the revisions ------------------------------------------------------------------------------
def test_the_head_named_by_the_files_is_alembics_head_and_history_is_linear() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(
        str(migrations.VERSIONS_DIR.parent), version_locations=[str(migrations.VERSIONS_DIR)]
    )
    assert script.get_heads() == [migrations.head_revision()] == ["0002"]
    files = sorted(p.name for p in migrations.VERSIONS_DIR.glob("[0-9]*.py"))
    revisions = [script.get_revision(name[:4]) for name in files]
    assert [r.revision for r in revisions] == [name[:4] for name in files]
    assert [r.down_revision for r in revisions] == [None, *[r.revision for r in revisions[:-1]]]


def test_an_empty_registry_is_created_by_the_migrations_and_equals_schema_py(
    registry_url: str,
) -> None:
    registry = FlowRegistry(registry_url)
    registry.check()
    registry.engine.dispose()
    assert _recorded_revision(registry_url) == migrations.head_revision()
    assert _metadata_diff(registry_url, schema.metadata) == []


def test_revision_0001_is_exactly_the_schema_of_registries_made_before_versions(
    registry_url: str,
) -> None:
    registry = FlowRegistry(registry_url)
    engine = registry._create_engine(migrate=False)
    try:
        assert migrations.upgrade(engine, registry.display_url, destination="0001") == (
            None,
            "0001",
        )
    finally:
        engine.dispose()
    assert _metadata_diff(registry_url, schema_0001.metadata) == []


# -- a registry made by the unversioned code ----------------------------------------------------
def test_a_registry_made_before_schema_versions_is_upgraded_and_still_runs_its_flows(
    legacy_registry: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _rows(legacy_registry)
    assert _comparable(before) == _comparable(_fixture_rows(home))  # the fixture loaded
    assert _recorded_revision(legacy_registry) is None

    registry = FlowRegistry(legacy_registry)
    record = registry.get_flow(FIXTURE_FLOW)  # first use: upgraded here
    assert _recorded_revision(legacy_registry) == migrations.head_revision()
    assert _rows(legacy_registry) == before
    assert {"agents"} <= _table_names(legacy_registry)
    assert "lease_expires_at" in _flow_run_columns(legacy_registry)

    (old_run,) = registry.list_flow_runs(FIXTURE_FLOW)
    assert (old_run.state, old_run.parameters, old_run.lease_expires_at) == (
        RunState.SUCCESS,
        {"count": 4},
        None,
    )
    old_logs = [e["message"] for e in registry.get_logs(old_run.id)]
    assert len(old_logs) == len(before["flow_run_logs"]) and "total: 10" in old_logs

    # The old flow, stored by the old code, runs through an agent of this code.
    paths = (str(REPO_ROOT), os.environ.get("PYTHONPATH"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    run = registry.create_flow_run(FIXTURE_FLOW, parameters={"count": 5})
    assert record.version == 1 and record.storage["flows"][FIXTURE_FLOW].startswith(str(home))
    agent = LocalAgent(labels=[FIXTURE_LABEL], registry=registry, hostname_label=False)
    assert agent.run_once() == [run.id]
    finished = registry.get_flow_run(run.id)
    assert finished.state == RunState.SUCCESS, finished.message
    assert finished.task_states is not None and finished.task_states["total-1"]["result"] == "15"
    assert "total: 15" in [e["message"] for e in registry.get_logs(run.id)]
    registry.engine.dispose()


def test_registry_upgrade_and_version_commands(legacy_registry: str, cli: CLI) -> None:
    shown = cli("registry", "version", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["schema"] == "0001"
    assert json.loads(shown.stdout)["code_schema"] == migrations.head_revision()
    assert _recorded_revision(legacy_registry) is None  # `version` changes nothing

    upgraded = cli("registry", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "schema 0001 -> 0002" in upgraded.stdout
    assert _recorded_revision(legacy_registry) == "0002"

    again = cli("registry", "upgrade", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) | {"registry": None} == {
        "registry": None,
        "from": "0002",
        "to": "0002",
        "upgraded": False,
    }
    shown = cli("registry", "version")
    assert "0002 (up to date)" in shown.stdout, shown.stdout

    listed = cli("flows", "ls", "--json")
    assert [f["name"] for f in json.loads(listed.stdout)] == [FIXTURE_FLOW]


def test_an_empty_registry_is_created_by_registry_upgrade(registry_url: str, cli: CLI) -> None:
    done = cli("registry", "upgrade", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["from"] is None
    assert json.loads(done.stdout)["to"] == migrations.head_revision()
    assert _recorded_revision(registry_url) == migrations.head_revision()


# -- all or nothing, under a lock ---------------------------------------------------------------
FAILING_MIGRATION = '''
"""Test only: changes schema and rows, then fails (or blocks until killed) half-way."""
import os
import time

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("DELETE FROM flow_run_logs")
    marker = os.environ.get("MIGRATION_MARKER")
    if not marker:
        raise RuntimeError("interrupted half-way")
    with open(marker, "w") as file:
        file.write("half-way")
    deadline = time.monotonic() + 120  # blocks here until the test kills the process
    while time.monotonic() < deadline:
        time.sleep(0.05)


def downgrade():
    op.drop_table("half_done")
'''


@pytest.fixture
def failing_versions(tmp_path: Path) -> Path:
    folder = tmp_path / "failing_versions"
    folder.mkdir()
    (folder / "0003_fails_half_way.py").write_text(FAILING_MIGRATION)
    return folder


def _assert_untouched(url: str, before: dict[str, list[dict[str, Any]]]) -> None:
    """Still exactly the registry the old code made: no version, no new table or column."""
    assert _recorded_revision(url) is None
    assert _table_names(url) == {"flows", "flow_runs", "flow_run_logs"}
    assert "lease_expires_at" not in _flow_run_columns(url)
    assert _rows(url) == before


def _assert_retry_upgrades(url: str, before: dict[str, list[dict[str, Any]]]) -> None:
    registry = FlowRegistry(url)
    registry.check()
    assert _recorded_revision(url) == migrations.head_revision()
    assert _rows(url) == before
    assert len(registry.get_logs(registry.list_flow_runs(FIXTURE_FLOW)[0].id)) == len(
        before["flow_run_logs"]
    )
    registry.engine.dispose()


def test_an_upgrade_that_fails_half_way_leaves_the_old_revision_and_every_row(
    legacy_registry: str, failing_versions: Path
) -> None:
    before = _rows(legacy_registry)
    registry = FlowRegistry(legacy_registry)
    engine = registry._create_engine(migrate=False)
    try:
        with pytest.raises(RuntimeError, match="interrupted half-way"):
            migrations.upgrade(
                engine, registry.display_url, version_locations=[str(failing_versions)]
            )
    finally:
        engine.dispose()
    _assert_untouched(legacy_registry, before)
    _assert_retry_upgrades(legacy_registry, before)


def test_an_upgrade_killed_half_way_leaves_the_old_revision_and_every_row(
    legacy_registry: str, failing_versions: Path, tmp_path: Path
) -> None:
    before = _rows(legacy_registry)
    marker = tmp_path / "half-way"
    code = textwrap.dedent(
        f"""
        from prefect_storage.registry import FlowRegistry, migrations
        registry = FlowRegistry({legacy_registry!r})
        engine = registry._create_engine(migrate=False)
        migrations.upgrade(
            engine, registry.display_url, version_locations=[{str(failing_versions)!r}]
        )
        """
    )
    env = {**os.environ, "MIGRATION_MARKER": str(marker), "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + DEADLINE
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.exists(), process.stderr.read() if process.stderr else ""
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=DEADLINE)
        if process.stderr:
            process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    _assert_untouched(legacy_registry, before)
    _assert_retry_upgrades(legacy_registry, before)


OPEN_AT_ONCE = """
import os, sys, time
from prefect_storage.registry import FlowRegistry
deadline = time.monotonic() + 60
while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:
    time.sleep(0.005)
registry = FlowRegistry(sys.argv[1])
registry.check()
print(len(registry.list_flows()))
"""


def test_processes_opening_an_old_registry_at_once_upgrade_it_once(
    legacy_registry: str, tmp_path: Path
) -> None:
    before = _rows(legacy_registry)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT_ONCE, legacy_registry, str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    go.touch()
    results = [process.communicate(timeout=DEADLINE) for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, results
    assert [out.strip() for out, _ in results] == ["1"] * 4
    assert _recorded_revision(legacy_registry) == migrations.head_revision()
    assert _rows(legacy_registry) == before


# -- refusals -----------------------------------------------------------------------------------
def test_a_registry_newer_than_the_code_is_refused_naming_both_versions(
    registry_url: str, cli: CLI
) -> None:
    FlowRegistry(registry_url).check()
    _set_revision(registry_url, "0007")

    with pytest.raises(RegistryError) as raised:
        FlowRegistry(registry_url).check()
    display = FlowRegistry(registry_url).display_url
    assert str(raised.value) == (
        f"The flow registry at {display} has schema version 0007, newer than this "
        f"prefect-storage (schema {migrations.head_revision()}, version {__version__}); "
        "upgrade prefect-storage."
    )
    assert _recorded_revision(registry_url) == "0007"  # left as it was

    for command in (("flows", "ls"), ("registry", "upgrade")):
        done = cli(*command)
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [f"Error: {raised.value}"]
    shown = cli("registry", "version")
    assert shown.returncode == 0 and "0007 (newer than this prefect-storage" in shown.stdout


def test_a_registry_file_that_is_not_a_database_gives_a_one_line_error(
    tmp_path: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "registry.db"
    path.write_text("these are my notes, not a database\n" * 20)
    url = f"sqlite:///{path}"
    with pytest.raises(RegistryError) as raised:
        FlowRegistry(url).check()
    message = str(raised.value)
    assert str(path) in message and "not a usable SQLite database" in message
    assert "move it aside" in message
    assert path.read_text().startswith("these are my notes")  # nothing written over it

    monkeypatch.setenv("PREFECT_STORAGE_REGISTRY_URL", url)
    done = cli("flows", "ls")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"Error: {message}"]


# -- cheap when up to date ----------------------------------------------------------------------
def test_opening_an_up_to_date_registry_reads_its_version_without_loading_alembic(
    registry_url: str,
) -> None:
    FlowRegistry(registry_url).check()
    code = (
        "import sys\nfrom prefect_storage.registry import FlowRegistry\n"
        f"FlowRegistry({registry_url!r}).check()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=DEADLINE
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
