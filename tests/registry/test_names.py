"""Flow, project and agent names the registry cannot hold are refused the same way on SQLite
and PostgreSQL (PostgreSQL alone used to fail with a raw ``DataError``), before any SQL."""

from __future__ import annotations

import pytest

from prefect_storage.exceptions import RegistryNameError
from prefect_storage.registry import MAX_NAME_LENGTH, FlowRegistry
from tests.registry.conftest import CLI

STORAGE = {"type": "Local", "flows": {}, "secrets": [], "directory": "/nowhere"}

TOO_LONG = "f" * 300
WITH_NUL = "my\x00flow"
WITH_NEWLINE = "my\nflow"


def register(registry: FlowRegistry, name: str, project: str | None = None) -> object:
    return registry.register_flow(name, STORAGE, sha256="0" * 64, project=project)


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            TOO_LONG,
            "is 300 characters long ('ffffffffffffffffffff'...); the flow registry "
            "allows at most 255",
        ),
        (WITH_NUL, "contains the control character U+0000 at position 2"),
        (WITH_NEWLINE, "contains the control character U+000A at position 2"),
        ("", "must be a non-empty string"),
    ],
)
def test_a_flow_name_the_registry_cannot_hold_is_refused_before_any_sql(
    registry: FlowRegistry, name: str, expected: str
) -> None:
    with pytest.raises(RegistryNameError) as raised:
        register(registry, name)
    assert isinstance(raised.value, ValueError)
    assert str(raised.value).startswith("The flow name (`name`) ")
    assert expected in str(raised.value)
    assert registry.list_flows() == []  # nothing recorded

    # Looking such a name up says the same, instead of a driver error on PostgreSQL.
    with pytest.raises(RegistryNameError, match="`name`"):
        registry.get_flow(name)
    with pytest.raises(RegistryNameError, match="`name`"):
        registry.create_flow_run(name)
    with pytest.raises(RegistryNameError, match="`flow_name`"):
        registry.list_flow_runs(name)


def test_a_project_name_the_registry_cannot_hold_is_refused(registry: FlowRegistry) -> None:
    with pytest.raises(RegistryNameError, match=r"The project name \(`project`\) is 300"):
        register(registry, "ok", project=TOO_LONG)
    with pytest.raises(RegistryNameError, match="U\\+0000"):
        register(registry, "ok", project=WITH_NUL)
    assert registry.list_flows() == []


@pytest.mark.parametrize("agent", [TOO_LONG, WITH_NUL])
def test_an_agent_name_the_registry_cannot_hold_is_refused_and_claims_nothing(
    registry: FlowRegistry, agent: str
) -> None:
    register(registry, "claimable")
    run = registry.create_flow_run("claimable")
    with pytest.raises(RegistryNameError, match=r"The agent name \(`agent`\)"):
        registry.claim_flow_runs([], agent)
    assert registry.get_flow_run(run.id).state == "Scheduled"


def test_the_longest_allowed_and_non_ascii_names_round_trip(registry: FlowRegistry) -> None:
    longest = "n" * MAX_NAME_LENGTH
    accented = "flüsse-über-größen ✓"
    for name in (longest, accented):
        register(registry, name, project=name)
        assert registry.get_flow(name).project == name
    run = registry.create_flow_run(accented)
    (claimed,) = registry.claim_flow_runs([], longest)
    assert (claimed.id, claimed.agent) == (run.id, longest)


def test_the_cli_gives_one_line_for_a_name_too_long(registry: FlowRegistry, cli: CLI) -> None:
    done = cli("run", TOO_LONG)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("Error: The flow name (`name`) is 300 characters long")
