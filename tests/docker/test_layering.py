"""The Dockerfile puts the flows last: after a one-line change to a flow, a rebuild reuses
every layer before them (the pip installs above all) and makes new ones only for the flows."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

from prefect_storage.storage import Docker
from tests.docker.conftest import load_flows, unique, write_script
from tests.servers.docker import DockerDaemon, LocalRegistry

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FLOW = """
from prefect_storage import Flow, task


@task
def greet():
    return "{greeting}"


with Flow("layered") as flow:
    greet()
"""


def build(
    tmp_path: Path,
    greeting: str,
    caplog: pytest.LogCaptureFixture,
    docker_kwargs: dict[str, Any],
    registry: LocalRegistry,
    image_name: str,
    data: Path,
) -> tuple[Docker, dict[str, bool]]:
    """Build the flow with ``greeting``; returns the storage and, per Dockerfile step, whether
    the engine took it from its cache."""
    script = write_script(tmp_path / greeting, "flows.py", FLOW.format(greeting=greeting))
    storage = Docker(
        registry_url=registry.url,
        image_name=image_name,
        env_vars={"LAYERED": "1"},
        python_dependencies=["tomli-w>=1.0,<2"],
        files={str(data): "/opt/data.txt"},
        extra_dockerfile_commands=["RUN echo extra > /opt/extra.txt"],
        **docker_kwargs,
    )
    storage.add_flow(load_flows(script)["layered"])
    caplog.clear()
    storage.build()
    return storage, cached_steps(caplog.messages)


def cached_steps(lines: list[str]) -> dict[str, bool]:
    """``{"RUN python -m pip install ...": True, ...}`` from the streamed build output."""
    steps: dict[str, bool] = {}
    current = None
    for line in lines:
        match = re.match(r"^Step \d+/\d+ : (.*)$", line)
        if match:
            current = match.group(1)
            steps[current] = False
        elif current is not None and "Using cache" in line:
            steps[current] = True
    return steps


def test_a_one_line_flow_change_reuses_the_dependency_layers(
    module_docker_config: None,
    docker_kwargs: dict[str, Any],
    docker_registry: LocalRegistry,
    docker_daemon: DockerDaemon,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="prefect_storage.docker")
    data = tmp_path / "data.txt"
    data.write_text("data\n")
    name = unique("layered")
    first, _ = build(tmp_path, "hello", caplog, docker_kwargs, docker_registry, name, data)
    second, steps = build(
        tmp_path, "hello again", caplog, docker_kwargs, docker_registry, name, data
    )

    assert steps, caplog.messages
    pip_steps = [step for step in steps if "pip install" in step]
    assert len(pip_steps) == 2, steps  # python_dependencies, then this package's wheel
    copies_before_flows = [s for s in steps if s.startswith("COPY") and "flows/" not in s]
    for step in [*pip_steps, *copies_before_flows, "RUN echo extra > /opt/extra.txt"]:
        assert steps[step], f"not taken from the cache: {step}\n{steps}"
    flow_steps = [s for s in steps if s.startswith("COPY flows/")]
    assert len(flow_steps) == 1 and not steps[flow_steps[0]], steps
    assert '"$PY" -m prefect_storage.healthcheck' in list(steps)[-1], steps
    for check in ("System Version check: OK", "Flow load check: OK", "All health checks passed."):
        assert check in caplog.messages, caplog.messages

    # The images share every layer below the flows: only the flows' COPY and the health
    # check's RUN (the two newest history entries) are new.
    client = docker_daemon.client()
    try:
        histories = [
            [entry["Id"] for entry in client.api.history(storage.image)]
            for storage in (first, second)
        ]
    finally:
        client.close()
    assert len(histories[0]) == len(histories[1])
    assert histories[0][2:] == histories[1][2:]
    assert histories[0][0] != histories[1][0] and histories[0][1] != histories[1][1]
    assert docker_registry.tags(name) == sorted([first.image_tag, second.image_tag])
