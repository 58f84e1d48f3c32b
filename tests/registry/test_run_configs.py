"""Run configs round-trip through their payload; a bad payload is a StorageConfigError naming
what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from prefect_storage.exceptions import StorageConfigError
from prefect_storage.run_configs import DockerRun, LocalRun, RunConfig, UniversalRun


@pytest.mark.parametrize(
    "config",
    [
        UniversalRun(labels=["b", "a"]),
        LocalRun(env={"A": "1"}, working_dir="/srv/flows", labels=["x"]),
        DockerRun(image="flows:1"),
    ],
)
def test_a_run_config_round_trips(config: RunConfig) -> None:
    assert RunConfig.deserialize(config.serialize()) == config


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ({"type": "KubernetesRun"}, "'KubernetesRun'"),
        ({"labels": []}, "None"),
        (["LocalRun"], "None"),
        ({"type": ["LocalRun"]}, "['LocalRun']"),
        ({"type": "LocalRun", "cpu": 2}, "'cpu'"),
        ({"type": "DockerRun", "labels": "a"}, "`labels`"),
    ],
)
def test_a_bad_payload_is_a_storage_config_error(payload: Any, named: str) -> None:
    with pytest.raises(StorageConfigError, match=r"run config|payload") as raised:
        RunConfig.deserialize(payload)
    assert named in str(raised.value)
