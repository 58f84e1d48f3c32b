"""The ``prefect-storage`` command, run as a user runs it: a subprocess with a home folder and
a registry URL in its environment, on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from prefect_storage.engine.flow import Flow
from prefect_storage.registry import REGISTRY_URL_ENV, FlowRegistry, RunState
from prefect_storage.registry.registration import register_flow
from prefect_storage.storage import Webhook
from tests.registry.conftest import CLI, read_logs, stop_process
from tests.servers.webhook import WebhookServer

TWO_FLOWS = """
from prefect_storage import Flow, Parameter, context, task

@task
def add_one(x):
    context["logger"].info("adding one to %s", x)
    return x + 1

@task
def fail(x):
    raise RuntimeError(f"cli-fail always fails ({x})")

with Flow("cli-add") as add_flow:
    add_one(Parameter("x", required=True))

with Flow("cli-fail") as fail_flow:
    fail(1)
"""

WAIT_TIMEOUT = "60"
"""``run --wait --timeout``: a run the agent never picks up fails the test, not the suite."""


def one_line_error(done: object) -> str:
    """Assert the CLI failed with exactly one ``Error: ...`` line on stderr; return it."""
    stderr: str = done.stderr  # type: ignore[attr-defined]
    assert done.returncode != 0, (done.stdout, stderr)  # type: ignore[attr-defined]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def snapshot(registry: FlowRegistry) -> tuple[list[tuple[str, int]], list[str]]:
    flows = [(r.name, r.version) for r in registry.list_flows(all_versions=True)]
    return flows, [r.id for r in registry.list_flow_runs()]


# -- register, flows ls|show --------------------------------------------------------------------
def test_register_a_script_with_two_flows(
    cli: CLI, registry: FlowRegistry, write_script: Callable[[str, str], Path], home: Path
) -> None:
    script = write_script("two_flows.py", TWO_FLOWS)
    done = cli("register", str(script), "--label", "team", "-l", "extra", "--json")
    assert done.returncode == 0, done.stderr
    entries = json.loads(done.stdout)

    digest = hashlib.sha256(script.read_bytes()).hexdigest()
    assert sorted(e["name"] for e in entries) == ["cli-add", "cli-fail"]
    for entry in entries:
        assert (entry["version"], entry["created"], entry["storage"]) == (1, True, "Local")
        assert entry["location"] == str(script)  # script mode: the file, in place
        assert entry["sha256"] == digest
        assert entry["labels"] == sorted(["team", "extra", socket.gethostname()])

    record = registry.get_flow("cli-add")
    assert record.storage["stored_as_script"] is True
    assert record.parameters == [{"name": "x", "required": True, "default": None}]
    flows_dir = home / "flows"  # script mode stores nothing: the script stays where it is
    assert not flows_dir.exists() or not any(p.is_file() for p in flows_dir.rglob("*"))

    # The same script again: identical content, no new versions.
    again = cli("register", str(script), "--label", "team", "-l", "extra")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("unchanged") == 2, again.stdout
    assert snapshot(registry)[0] == [("cli-add", 1), ("cli-fail", 1)]

    listed = cli("flows", "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    flows = json.loads(listed.stdout)
    assert [(f["name"], f["version"], f["storage_type"]) for f in flows] == [
        ("cli-add", 1, "Local"),
        ("cli-fail", 1, "Local"),
    ]
    assert {f["sha256"] for f in flows} == {digest}

    text = cli("flows", "ls")
    assert text.returncode == 0, text.stderr
    assert "cli-add  v1  Local" in text.stdout and "cli-fail  v1  Local" in text.stdout

    shown = cli("flows", "show", "cli-add", "--json")
    assert shown.returncode == 0, shown.stderr
    details = json.loads(shown.stdout)
    assert details["storage"]["path"] == str(script)
    assert details["parameters"] == [{"name": "x", "required": True, "default": None}]


def test_register_a_changed_script_makes_new_versions(
    cli: CLI, registry: FlowRegistry, write_script: Callable[[str, str], Path]
) -> None:
    script = write_script("two_flows.py", TWO_FLOWS)
    assert cli("register", str(script)).returncode == 0
    script.write_text(TWO_FLOWS + "\n# a change\n")
    done = cli("register", str(script), "--json")
    assert done.returncode == 0, done.stderr
    assert sorted((e["name"], e["version"]) for e in json.loads(done.stdout)) == [
        ("cli-add", 2),
        ("cli-fail", 2),
    ]


def test_flows_show_masks_secret_values(
    cli: CLI,
    registry: FlowRegistry,
    webhook_server: WebhookServer,
    load_flow: Callable[[str, str], Flow],
) -> None:
    webhook_server.token = "abc123"
    url = f"{webhook_server.url}/flows/masked"
    flow = load_flow(TWO_FLOWS, "cli-fail")
    flow.storage = Webhook(
        build_request_kwargs={"url": url, "headers": {"Authorization": "Bearer abc123"}},
        build_request_http_method="PUT",
        get_flow_request_kwargs={"url": url, "headers": {"Authorization": "Bearer ${TOKEN}"}},
        get_flow_request_http_method="GET",
        secrets=["TOKEN"],
    )
    register_flow(flow, registry=registry)
    # The literal token is what the registry keeps (it is needed to build); display masks it.
    assert registry.get_flow("cli-fail").storage["build_request_kwargs"]["headers"] == {
        "Authorization": "Bearer abc123"
    }

    for args in (("flows", "show", "cli-fail"), ("flows", "show", "cli-fail", "--json")):
        done = cli(*args)
        assert done.returncode == 0, done.stderr
        assert "abc123" not in done.stdout + done.stderr
        assert "********" in done.stdout
        assert "Bearer ${TOKEN}" in done.stdout  # a template names a secret; it is no secret
        assert "TOKEN" in done.stdout
    details = json.loads(done.stdout)
    storage = details["storage"]
    assert storage["build_request_kwargs"]["headers"]["Authorization"] == "********"
    assert storage["get_flow_request_kwargs"]["headers"]["Authorization"] == "Bearer ${TOKEN}"
    assert storage["secrets"] == ["TOKEN"]
    assert storage["build_request_kwargs"]["url"] == url


# -- run --wait through a background agent ------------------------------------------------------
@dataclass
class BackgroundAgent:
    process: subprocess.Popen[str]
    logs: Path
    """Where its output goes (see ``read_logs``)."""


@pytest.fixture
def background_agent(cli: CLI, registry: FlowRegistry, tmp_path: Path) -> Iterator[BackgroundAgent]:
    """``agent local`` polling every 0.2 s with the host-name label and 'cli'; stopped after
    the test if the test did not stop it."""
    registry.check()  # the tables exist before the agent's first poll
    logs = tmp_path / "agent" / "agent"
    agent = cli.popen("agent", "local", "--poll-interval", "0.2", "-l", "cli", logs=logs)
    yield BackgroundAgent(agent, logs)
    stop_process(agent)


def test_run_wait_streams_logs_and_exits_with_the_run_state(
    cli: CLI,
    registry: FlowRegistry,
    write_script: Callable[[str, str], Path],
    background_agent: BackgroundAgent,
) -> None:
    script = write_script("two_flows.py", TWO_FLOWS)
    assert cli("register", str(script), "-l", "cli").returncode == 0

    good = cli("run", "cli-add", "-p", "x=3", "--wait", "--timeout", WAIT_TIMEOUT)
    assert good.returncode == 0, (good.stdout, good.stderr, read_logs(background_agent.logs))
    assert "adding one to 3" in good.stdout
    assert "Success" in good.stdout

    bad = cli("run", "cli-fail", "--wait", "--timeout", WAIT_TIMEOUT)
    assert bad.returncode == 1, (bad.stdout, bad.stderr)
    assert "Failed" in bad.stdout
    assert "cli-fail always fails (1)" in bad.stdout

    runs = cli("runs", "ls", "--json")
    assert runs.returncode == 0, runs.stderr
    listed = json.loads(runs.stdout)
    assert [(r["flow_name"], r["state"]) for r in listed] == [
        ("cli-add", RunState.SUCCESS),
        ("cli-fail", RunState.FAILED),
    ]
    add_run = listed[0]
    assert add_run["parameters"] == {"x": 3}  # -p values are JSON: a number, not "3"
    assert any(t["result"] == "4" for t in add_run["task_states"].values())
    assert add_run["agent"].startswith("local-agent-")

    text = cli("runs", "ls", "--flow", "cli-fail")
    assert text.returncode == 0, text.stderr
    assert listed[1]["id"] in text.stdout and listed[0]["id"] not in text.stdout

    logs = cli("runs", "logs", add_run["id"])
    assert logs.returncode == 0, logs.stderr
    assert "adding one to 3" in logs.stdout
    logs_json = cli("runs", "logs", add_run["id"], "--json")
    assert logs_json.returncode == 0, logs_json.stderr
    assert "adding one to 3" in [e["message"] for e in json.loads(logs_json.stdout)]

    # Ctrl-C stops the agent cleanly (stop_process waits for it with a generous deadline).
    assert stop_process(background_agent.process) == 0, read_logs(background_agent.logs)
    stdout, stderr = read_logs(background_agent.logs)
    assert "Agent stopped (SIGINT)" in stdout
    assert "Traceback" not in stderr


def test_run_without_wait_schedules_a_given_version(
    cli: CLI, registry: FlowRegistry, write_script: Callable[[str, str], Path]
) -> None:
    script = write_script("two_flows.py", TWO_FLOWS)
    assert cli("register", str(script)).returncode == 0
    script.write_text(TWO_FLOWS + "\n# v2\n")
    assert cli("register", str(script)).returncode == 0

    done = cli("run", "cli-add", "-p", "x=5", "--version", "1", "--json")
    assert done.returncode == 0, done.stderr
    scheduled = json.loads(done.stdout)
    assert (scheduled["flow_version"], scheduled["state"]) == (1, RunState.SCHEDULED)
    assert scheduled["parameters"] == {"x": 5}
    text = cli("run", "cli-add", "-p", "x=hello")
    assert text.returncode == 0, text.stderr
    assert "Scheduled flow run" in text.stdout and "v2" in text.stdout
    runs = registry.list_flow_runs("cli-add")
    assert [(r.flow_version, r.parameters) for r in runs] == [(1, {"x": 5}), (2, {"x": "hello"})]


# -- bad input: one line, non-zero exit, nothing recorded ---------------------------------------
BAD_INPUT = {
    "unknown flow": (("run", "no-such-flow"), "No flow named 'no-such-flow'"),
    "unknown version": (("run", "cli-add", "--version", "9", "-p", "x=1"), "no version 9"),
    "unknown parameter": (("run", "cli-add", "-p", "x=1", "-p", "y=2"), "no parameter 'y'"),
    "missing required parameter": (("run", "cli-add"), "needs parameter 'x'"),
    "unknown flow, with --wait": (("run", "nope", "--wait", "--timeout", "5"), "'nope'"),
    "script with a syntax error": (("register", "{syntax_error}"), "syntax error"),
    "script with no flows": (("register", "{no_flows}"), "No flows found"),
    "missing script": (("register", "{missing}"), "Cannot"),
    "unknown run": (("runs", "logs", "no-such-run"), "No flow run"),
    "unknown flow to show": (("flows", "show", "nope"), "No flow named 'nope'"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_a_one_line_error_and_records_nothing(
    case: str,
    cli: CLI,
    registry: FlowRegistry,
    write_script: Callable[[str, str], Path],
    load_flow: Callable[[str, str], Flow],
    tmp_path: Path,
) -> None:
    from prefect_storage.cli.register import load_flows

    script = write_script("two_flows.py", TWO_FLOWS)
    for flow, storage in load_flows(str(script)):
        flow.storage = storage
        register_flow(flow, registry=registry)
    paths = {
        "syntax_error": write_script(
            "syntax_error.py",
            "from prefect_storage import Flow\nwith Flow('broken') as flow\n    pass\n",
        ),
        "no_flows": write_script("no_flows.py", "X = 1\n"),
        "missing": tmp_path / "scripts" / "missing.py",
    }
    args, expected = BAD_INPUT[case]
    args = tuple(a.format(**{k: str(v) for k, v in paths.items()}) for a in args)
    before = snapshot(registry)

    message = one_line_error(cli(*args))

    assert expected in message
    assert snapshot(registry) == before


@pytest.mark.parametrize(
    "args",
    [("register", "{script}"), ("flows", "ls"), ("run", "cli-add", "-p", "x=1"), ("runs", "ls")],
    ids=["register", "flows-ls", "run", "runs-ls"],
)
def test_unreachable_registry_is_a_one_line_error(
    args: tuple[str, ...],
    cli: CLI,
    unreachable_registry_url: str,
    write_script: Callable[[str, str], Path],
    home: Path,
) -> None:
    script = write_script("two_flows.py", TWO_FLOWS)
    args = tuple(a.format(script=script) for a in args)
    done = cli(*args, **{REGISTRY_URL_ENV: unreachable_registry_url})
    message = one_line_error(done)
    assert "registry" in message and "127.0.0.1" in message
    assert not home.exists() or not any(p.is_file() for p in home.rglob("*"))


def test_invalid_registry_url_is_a_one_line_error(cli: CLI) -> None:
    message = one_line_error(cli("flows", "ls", **{REGISTRY_URL_ENV: "not a url"}))
    assert REGISTRY_URL_ENV in message


# -- the README's main command -------------------------------------------------------------------
def test_demo_runs_end_to_end_in_a_fresh_home(cli: CLI, tmp_path: Path) -> None:
    demo_home = tmp_path / "demo-home"
    done = cli("demo", "--home", str(demo_home), TMPDIR=str(tmp_path))
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "Success" in done.stdout
    assert "sum of squares: 55" in done.stdout
    assert (demo_home / "registry.db").is_file()
    registry = FlowRegistry(f"sqlite:///{demo_home / 'registry.db'}")
    [run] = registry.list_flow_runs()
    assert run.state == RunState.SUCCESS


def test_demo_without_home_uses_a_new_temporary_home(cli: CLI, tmp_path: Path) -> None:
    done = cli("demo", TMPDIR=str(tmp_path))
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "Success" in done.stdout
    assert any(p.name.startswith("prefect-storage-demo-") for p in tmp_path.iterdir())


# -- the command's own structure -------------------------------------------------------------------
def test_the_entry_point_has_every_command_and_no_module_imports_the_package_back() -> None:
    import ast

    import prefect_storage.cli as cli_package
    from prefect_storage.cli import main  # the console script's `prefect_storage.cli:main`

    assert {
        "agent",
        "demo",
        "execute",
        "flows",
        "register",
        "registry",
        "run",
        "runs",
        "secret",
    } <= set(main.commands)
    for module in Path(cli_package.__file__).parent.glob("*.py"):
        if module.name in ("__init__.py", "__main__.py"):
            continue
        tree = ast.parse(module.read_text())
        back = [
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None
        ]
        assert back == [], f"{module.name} imports the cli package back at lines {back}"
