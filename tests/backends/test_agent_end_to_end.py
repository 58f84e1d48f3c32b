"""End to end: a flow registered with S3 storage on moto's server runs through a local agent,
which loads it from the S3 server in a fresh process (the fault proxy sees that GET)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from prefect_storage import context
from prefect_storage.agents.local import LocalAgent
from prefect_storage.engine.flow import Flow
from prefect_storage.registry import FlowRegistry, RunState
from prefect_storage.results import S3Result
from prefect_storage.secrets import set_secret
from tests.backends.conftest import Kit, settle
from tests.backends.support import moto_auth, moto_iam_keys
from tests.contract.rigs import FLOW_NAME

ScriptFlow = Callable[[str], Flow]


@pytest.fixture
def registry(tmp_path: Path) -> FlowRegistry:
    return FlowRegistry(f"sqlite:///{tmp_path / 'registry' / 'registry.db'}")


def run_through_agent(registry: FlowRegistry, parameters: dict[str, int]) -> str:
    run = registry.create_flow_run(FLOW_NAME, parameters=parameters)
    agent = LocalAgent(registry=registry, labels=[], hostname_label=False)
    assert agent.run_once() == [run.id]
    return run.id


def test_an_s3_flow_runs_through_a_local_agent(
    s3_kit: Kit, script_flow: ScriptFlow, registry: FlowRegistry
) -> None:
    proxy = s3_kit.proxy()
    storage = s3_kit.storage()
    assert storage.labels == []  # no host label: any agent may run it
    flow = script_flow(FLOW_NAME)
    flow.storage = storage
    flow.register(registry=registry)
    [record] = registry.list_flows()
    assert record.labels == []
    assert record.storage["type"] == "S3"
    assert isinstance(flow.result, S3Result)  # paired by register()
    location = storage.flows[FLOW_NAME]
    settle(proxy)
    proxy.reset()

    run_id = run_through_agent(registry, {"x": 20})

    finished = registry.get_flow_run(run_id)
    logs = "\n".join(entry["message"] for entry in registry.get_logs(run_id))
    assert finished.state == RunState.SUCCESS, f"{finished.message}\n{logs}"
    assert finished.task_states is not None
    by_task = {state["task"]: state for state in finished.task_states.values()}
    assert by_task["add_one"]["result"] == "41"
    object_gets = [r for r in proxy.requests if s3_kit.is_object_get(r, location)]
    assert len(object_gets) == 1, [(r.method, r.path) for r in proxy.requests]
    # The agent's process checkpointed the task results through the paired S3Result.
    result_locations = {state["location"] for state in by_task.values() if state["location"]}
    assert result_locations and result_locations <= set(s3_kit.names())


def test_the_agent_uses_the_aws_credentials_secret_the_storage_names(
    s3_kit: Kit,
    script_flow: ScriptFlow,
    registry: FlowRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With moto checking keys, the run works only with the ``AWS_CREDENTIALS`` secret the
    storage names (from the secrets file), not with the wrong keys in the environment."""
    access_key, secret_key = moto_iam_keys(s3_kit.server.endpoint_url)
    credentials = {"ACCESS_KEY": access_key, "SECRET_ACCESS_KEY": secret_key}
    set_secret("AWS_CREDENTIALS", json.dumps(credentials))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-environment-secret")
    storage = s3_kit.storage(secrets=["AWS_CREDENTIALS"])
    flow = script_flow(FLOW_NAME)
    flow.storage = storage

    with moto_auth(s3_kit.server.endpoint_url):
        with context(secrets={"AWS_CREDENTIALS": credentials}):
            flow.register(registry=registry)
        run_id = run_through_agent(registry, {"x": 1})

    finished = registry.get_flow_run(run_id)
    logs = "\n".join(entry["message"] for entry in registry.get_logs(run_id))
    assert finished.state == RunState.SUCCESS, f"{finished.message}\n{logs}"
    assert secret_key not in logs
