"""Faults against the real servers (issue acceptance): the S3 server gone during ``build()``,
a proxy answering 503 twice then passing, a corrupted object, and the HTTP requests one
``get_flow`` makes. Every storage here uses a fast retry policy (three attempts)."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from prefect_storage import Flow, task
from prefect_storage.exceptions import (
    BackendAuthError,
    BackendUnavailableError,
    CorruptFlowError,
    FlowNotFoundError,
)
from prefect_storage.registry import FlowRegistry
from prefect_storage.storage import S3, Storage
from tests.backends.conftest import Kit, settle
from tests.backends.support import FAST
from tests.contract.rigs import FLOW_NAME, SIBLING_NAME
from tests.servers.s3 import MotoServer

ScriptFlow = Callable[[str], Flow]


@task
def noop() -> int:
    return 1


def extra_flow(name: str) -> Flow:
    with Flow(name) as flow:
        noop()
    return flow


@pytest.fixture
def sqlite_registry(tmp_path: Path) -> FlowRegistry:
    return FlowRegistry(f"sqlite:///{tmp_path / 'registry' / 'registry.db'}")


# -- (a) the S3 server stops during build() -----------------------------------------------------
def _several_flow_storage(server: MotoServer, script_flow: ScriptFlow) -> tuple[S3, Flow]:
    bucket = server.new_bucket()
    storage = S3(bucket, client_options={"endpoint_url": server.endpoint_url})
    storage.retry_policy = FAST
    storage.add_flow(script_flow(SIBLING_NAME))
    storage.add_flow(extra_flow("extra-flow"))
    flow = script_flow(FLOW_NAME)
    flow.storage = storage
    return storage, flow


@pytest.mark.parametrize("when", ["before-build", "after-the-first-upload"])
def test_s3_server_gone_during_build_is_unavailable_and_records_nothing(
    when: str,
    s3: MotoServer,  # dummy AWS keys in the environment
    moto_server_factory: Callable[[], MotoServer],
    script_flow: ScriptFlow,
    sqlite_registry: FlowRegistry,
) -> None:
    server = moto_server_factory()
    endpoint = server.endpoint_url
    storage, flow = _several_flow_storage(server, script_flow)
    uploaded: list[str] = []
    if when == "before-build":
        server.stop()
    else:
        real_put = storage._put

        def put_then_crash(location: str, data: bytes) -> None:
            real_put(location, data)
            uploaded.append(location)
            server.kill()  # the server dies right after storing the first flow

        storage._put = put_then_crash  # type: ignore[method-assign]

    with pytest.raises(BackendUnavailableError) as caught:
        flow.register(registry=sqlite_registry)

    assert sqlite_registry.list_flows() == []  # a failed registration records nothing
    assert FlowRegistry(sqlite_registry.url).list_flows(all_versions=True) == []
    if when != "before-build":
        assert len(uploaded) == 1
    message = str(caught.value)
    assert "gave up after 3 attempt(s)" in message
    assert storage.bucket in message
    assert endpoint.removeprefix("http://") in message, f"the endpoint is not named: {message}"


# -- (b) 503 twice, then the request passes -----------------------------------------------------
def test_build_succeeds_after_two_503s(kit: Kit, script_flow: ScriptFlow) -> None:
    proxy = kit.proxy()
    storage = kit.storage()
    location = storage.add_flow(script_flow(FLOW_NAME))
    proxy.fail_next(503, times=2, method=kit.upload_method, path_contains=kit.upload_path(location))

    storage.build()

    uploads = [r for r in proxy.requests if kit.is_upload(r, location)]
    assert [(r.injected, r.status) for r in uploads[:2]] == [(True, 503), (True, 503)]
    assert len(uploads) == 3 and not uploads[2].injected and uploads[2].status in (200, 201)
    fresh = Storage.deserialize(storage.serialize())
    assert fresh.get_flow(FLOW_NAME, expected_sha256=storage.digests[FLOW_NAME]).name == FLOW_NAME


def test_get_flow_succeeds_after_two_503s(kit: Kit, script_flow: ScriptFlow) -> None:
    proxy = kit.proxy()
    storage = kit.storage()
    location = storage.add_flow(script_flow(FLOW_NAME))
    storage.build()
    proxy.fail_next(503, times=2, method="GET", path_contains=kit.object_path(location))

    assert storage.get_flow(FLOW_NAME).name == FLOW_NAME

    gets = [r for r in proxy.requests if kit.is_object_get(r, location)]
    assert [r.injected for r in gets] == [True, True, False]


def test_a_dropped_connection_is_retried(kit: Kit, script_flow: ScriptFlow) -> None:
    proxy = kit.proxy()
    storage = kit.storage()
    location = storage.add_flow(script_flow(FLOW_NAME))
    proxy.drop_next(1, method=kit.upload_method, path_contains=kit.upload_path(location))

    storage.build()

    assert len([r for r in proxy.requests if kit.is_upload(r, location)]) == 2
    assert kit.read(location)


def test_three_503s_exhaust_the_retries(kit: Kit, script_flow: ScriptFlow) -> None:
    proxy = kit.proxy()
    storage = kit.storage()
    location = storage.add_flow(script_flow(FLOW_NAME))
    proxy.fail_next(503, times=3, method=kit.upload_method)

    with pytest.raises(BackendUnavailableError, match="gave up after 3 attempt"):
        storage.build()
    assert location not in kit.names()


@pytest.mark.parametrize(("status", "error"), [(403, BackendAuthError), (404, FlowNotFoundError)])
def test_403_and_404_are_never_retried(
    kit: Kit, script_flow: ScriptFlow, status: int, error: type[Exception]
) -> None:
    proxy = kit.proxy()
    storage = kit.storage()
    location = storage.add_flow(script_flow(FLOW_NAME))
    storage.build()
    proxy.fail_next(status, times=3, method="GET", path_contains=kit.object_path(location))

    with pytest.raises(error):
        storage.get_flow(FLOW_NAME)
    assert len([r for r in proxy.requests if kit.is_object_get(r, location)]) == 1


# -- (c) a corrupted object ---------------------------------------------------------------------
@pytest.mark.parametrize("where", [0.25, 0.5, 0.9])
def test_a_corrupted_object_is_refused_before_unpickling(
    kit: Kit, script_flow: ScriptFlow, monkeypatch: pytest.MonkeyPatch, where: float
) -> None:
    storage = kit.storage()
    location = storage.add_flow(script_flow(FLOW_NAME))
    storage.build()
    data = bytearray(kit.read(location))
    data[int(len(data) * where)] ^= 0x01  # one flipped bit, written with the SDK
    kit.write(location, bytes(data))
    unpickled: list[Any] = []
    real_loads = pickle.loads

    def recording_loads(payload: bytes, *args: Any, **kwargs: Any) -> Any:
        unpickled.append(payload)
        return real_loads(payload, *args, **kwargs)

    monkeypatch.setattr(pickle, "loads", recording_loads)
    monkeypatch.setattr(cloudpickle, "loads", recording_loads)

    with pytest.raises(CorruptFlowError):
        Storage.deserialize(storage.serialize()).get_flow(FLOW_NAME)
    assert unpickled == []


# -- (d) HTTP requests per get_flow -------------------------------------------------------------
def test_exactly_one_object_get_per_get_flow(kit: Kit, script_flow: ScriptFlow) -> None:
    proxy = kit.proxy()
    storage = kit.storage()
    location = storage.add_flow(script_flow(FLOW_NAME))
    storage.build()
    fresh = Storage.deserialize(storage.serialize())  # as an agent loads it
    proxy.reset()

    for expected in (1, 2, 3):
        fresh.get_flow(FLOW_NAME)
        settle(proxy, quiet=0.1)
        gets = [r for r in proxy.requests if kit.is_object_get(r, location)]
        assert len(gets) == expected, [(r.method, r.path) for r in proxy.requests]


def test_get_flow_sends_no_request_but_the_object_get(kit: Kit, script_flow: ScriptFlow) -> None:
    """From a fresh storage (an agent's), one get_flow is one HTTP request in all."""
    proxy = kit.proxy()
    storage = kit.storage()
    location = storage.add_flow(script_flow(FLOW_NAME))
    storage.build()
    fresh = Storage.deserialize(storage.serialize())
    settle(proxy)
    proxy.reset()

    fresh.get_flow(FLOW_NAME)
    settle(proxy)  # requests an SDK sends from a background thread are counted too

    seen = [(r.method, r.path) for r in proxy.requests]
    assert len(seen) == 1 and kit.is_object_get(proxy.requests[0], location), seen
