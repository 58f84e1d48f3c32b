"""Bad input: each case is a typed error that names what was wrong and how to fix it."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from prefect_storage import Flow, task
from prefect_storage.exceptions import (
    BackendAuthError,
    BackendError,
    BackendUnavailableError,
    CorruptFlowError,
    FlowLoadError,
    FlowNameConflictError,
    FlowNotFoundError,
    FlowStorageError,
    SecretNotFoundError,
    StorageConfigError,
)
from prefect_storage.loading import extract_flow_from_file
from prefect_storage.retry import RetryPolicy
from prefect_storage.secrets import render_templates, set_secret
from prefect_storage.storage import Local, Module, Storage, Webhook
from tests.servers.webhook import WebhookServer


@task
def inc(x: int) -> int:
    return x + 1


def _flow(name: str) -> Flow:
    with Flow(name) as flow:
        inc(1)
    return flow


def _files(folder: Path) -> list[str]:
    """Every file below ``folder`` (hidden temporary files included)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _webhook(url: str, **overrides: Any) -> Webhook:
    arguments: dict[str, Any] = {
        "build_request_kwargs": {
            "url": url,
            "headers": {"Authorization": "Bearer ${WEBHOOK_TOKEN}"},
        },
        "build_request_http_method": "PUT",
        "get_flow_request_kwargs": {
            "url": url,
            "headers": {"Authorization": "Bearer ${WEBHOOK_TOKEN}"},
        },
        "get_flow_request_http_method": "GET",
    }
    arguments.update(overrides)
    return Webhook(**arguments)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- payloads -------------------------------------------------------------------------------
def test_unknown_storage_type_in_a_payload() -> None:
    payload = {"type": "Dropbox", "flows": {}, "secrets": []}
    with pytest.raises(StorageConfigError) as raised:
        Storage.deserialize(payload)
    message = str(raised.value)
    assert "'Dropbox'" in message
    assert "Local" in message and "Module" in message and "Webhook" in message  # valid choices


def test_a_payload_that_is_not_a_dict() -> None:
    with pytest.raises(StorageConfigError, match="dict"):
        Storage.deserialize(["Local"])  # type: ignore[arg-type]


# -- scripts --------------------------------------------------------------------------------
def test_script_with_a_syntax_error(tmp_path: Path) -> None:
    script = tmp_path / "flow.py"
    script.write_text("from prefect_storage import Flow\n\nflow = Flow('x'\nprint('unclosed')\n")
    storage = Local(path=str(script), stored_as_script=True)
    storage.add_flow(_flow("x"))
    with pytest.raises(FlowLoadError) as raised:
        storage.get_flow("x")
    message = str(raised.value)
    assert str(script) in message
    assert "syntax error" in message and "line 3" in message


def test_script_with_no_flow(tmp_path: Path) -> None:
    script = tmp_path / "empty_flow.py"
    script.write_text("x = 1\n")
    with pytest.raises(FlowLoadError, match="No flows found") as raised:
        extract_flow_from_file(file_path=str(script))
    assert str(script) in str(raised.value)  # which file had none


def test_script_without_the_requested_flow(tmp_path: Path) -> None:
    script = tmp_path / "two_flows.py"
    script.write_text("from prefect_storage import Flow\nb = Flow('beta')\na = Flow('alpha')\n")
    storage = Local(path=str(script), stored_as_script=True)
    storage.add_flow(_flow("gamma"))
    with pytest.raises(FlowLoadError) as raised:
        storage.get_flow("gamma")
    message = str(raised.value)
    assert "'gamma'" in message
    assert "- 'alpha'\n- 'beta'" in message  # the flows that can be asked for instead


def test_flow_name_not_in_storage() -> None:
    storage = Local()
    storage.add_flow(_flow("present"))
    with pytest.raises(FlowNotFoundError) as raised:
        storage.get_flow("absent")
    message = str(raised.value)
    assert "'absent'" in message and "'present'" in message
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, LookupError)
    assert "absent" not in storage and "present" in storage


def test_name_conflict_at_add_flow() -> None:
    storage = Module("pkg.flows")
    storage.add_flow(_flow("same"))
    with pytest.raises(FlowNameConflictError, match='name "same"') as raised:
        storage.add_flow(_flow("same"))
    assert "Name conflict" in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_tampered_pickle_one_flipped_byte() -> None:
    storage = Local()
    location = storage.add_flow(_flow("tampered"))
    data = bytearray(Path(location).read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the base64 pickle
    Path(location).write_bytes(bytes(data))
    with pytest.raises(CorruptFlowError) as raised:
        storage.get_flow("tampered")
    message = str(raised.value)
    assert "'tampered'" in message
    assert "re-register" in message  # how to fix it


def test_a_missing_pickle_file_names_the_location() -> None:
    storage = Local()
    location = storage.add_flow(_flow("deleted"))
    os.unlink(location)
    with pytest.raises(FlowNotFoundError) as raised:
        storage.get_flow("deleted")
    assert location in str(raised.value)


def test_unknown_template_name() -> None:
    with pytest.raises(SecretNotFoundError) as raised:
        render_templates({"url": "http://host/${NOT_DEFINED_ANYWHERE}"})
    message = str(raised.value)
    assert "'NOT_DEFINED_ANYWHERE'" in message
    assert "export NOT_DEFINED_ANYWHERE" in message or "secret set NOT_DEFINED_ANYWHERE" in message


# -- Webhook --------------------------------------------------------------------------------
@pytest.mark.parametrize("argument", ["build_request_http_method", "get_flow_request_http_method"])
@pytest.mark.parametrize("method", ["DELETE", "HEAD", "delete", "", None])
def test_webhook_http_method_not_allowed(argument: str, method: Any) -> None:
    with pytest.raises(StorageConfigError) as raised:
        _webhook("http://127.0.0.1:9/flows/x", **{argument: method})
    message = str(raised.value)
    assert argument in message
    assert "GET" in message and "PUT" in message  # the methods that are allowed
    assert isinstance(raised.value, RuntimeError)  # as the legacy Webhook raised


def test_webhook_without_a_url() -> None:
    with pytest.raises(StorageConfigError, match=r"get_flow_request_kwargs.*url"):
        _webhook("http://127.0.0.1:9/x", get_flow_request_kwargs={"headers": {}})


def test_webhook_server_error_is_a_backend_unavailable_error(
    webhook_server: WebhookServer,
) -> None:
    set_secret("WEBHOOK_TOKEN", webhook_server.token)
    url = f"{webhook_server.url}/flows/erroring"
    storage = _webhook(url)
    storage.retry_policy = RetryPolicy(max_attempts=3, base_delay=0.01)
    storage.add_flow(_flow("erroring"))
    webhook_server.fail_next(500, times=3)
    with pytest.raises(BackendError) as raised:
        storage.build()
    error = raised.value
    assert isinstance(error, BackendUnavailableError) and not isinstance(error, BackendAuthError)
    assert "500" in str(error) and url in str(error) and "'erroring'" in str(error)
    assert "gave up after 3 attempt(s)" in str(error)
    assert webhook_server.blobs == {}

    webhook_server.fail_next(503, times=2)  # a server that recovers: retried, then built
    storage.build()
    assert len(webhook_server.blobs) == 1
    webhook_server.fail_next(500, times=3)
    with pytest.raises(BackendError, match="500"):
        storage.get_flow("erroring")
    assert storage.get_flow("erroring").name == "erroring"


def test_webhook_client_errors_are_not_retried(webhook_server: WebhookServer) -> None:
    set_secret("WEBHOOK_TOKEN", webhook_server.token)
    storage = _webhook(f"{webhook_server.url}/flows/refused")
    storage.add_flow(_flow("refused"))
    webhook_server.fail_next(400, times=1)
    with pytest.raises(BackendError, match="400"):
        storage.build()
    assert len(webhook_server.requests) == 1


def test_webhook_wrong_token_is_an_auth_error(webhook_server: WebhookServer) -> None:
    set_secret("WEBHOOK_TOKEN", "not-the-servers-token")
    storage = _webhook(f"{webhook_server.url}/flows/unauthorized")
    storage.add_flow(_flow("unauthorized"))
    with pytest.raises(BackendAuthError) as raised:
        storage.build()
    message = str(raised.value)
    assert "401" in message and "credentials" in message
    assert isinstance(raised.value, PermissionError)
    assert webhook_server.blobs == {}


def test_webhook_unreachable_is_unavailable() -> None:
    set_secret("WEBHOOK_TOKEN", "token")
    url = f"http://127.0.0.1:{_closed_port()}/flows/nowhere"
    storage = _webhook(url, get_flow_request_kwargs={"url": url, "timeout": 2})
    storage.flows = {"nowhere": "nowhere"}
    with pytest.raises(BackendUnavailableError) as raised:
        storage.get_flow("nowhere")
    message = str(raised.value)
    assert url in message and "server is running" in message
    assert isinstance(raised.value, ConnectionError)


def test_webhook_missing_flow_is_not_found(webhook_server: WebhookServer) -> None:
    set_secret("WEBHOOK_TOKEN", webhook_server.token)
    storage = _webhook(f"{webhook_server.url}/flows/never-built")
    storage.flows = {"never built": "never built"}
    with pytest.raises(FlowNotFoundError, match="404"):
        storage.get_flow("never built")


# -- Local ----------------------------------------------------------------------------------
def test_local_script_mode_without_a_path_fails_at_add_flow() -> None:
    storage = Local(stored_as_script=True)
    with pytest.raises(StorageConfigError, match="`path`") as raised:
        storage.add_flow(_flow("pathless"))
    assert ".py" in str(raised.value)
    assert storage.flows == {}


@pytest.mark.parametrize("argument", ["labels", "secrets"])
@pytest.mark.parametrize("value", ["a", ["ok", 3], 5])
def test_bad_constructor_types_name_the_argument(argument: str, value: Any) -> None:
    for make in (Local, lambda **kw: Module("pkg.mod", **kw)):
        with pytest.raises(TypeError, match=f"`{argument}`"):
            make(**{argument: value})


def test_add_flow_needs_a_flow() -> None:
    with pytest.raises(TypeError, match="Flow"):
        Local().add_flow("my flow")  # type: ignore[arg-type]


def test_a_flow_that_cannot_be_pickled_leaves_nothing_behind(tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    storage = Local(directory=str(folder))
    lock = threading.Lock()

    @task
    def locked() -> bool:
        with lock:
            return True

    with Flow("unpicklable") as flow:
        locked()

    with pytest.raises((TypeError, FlowStorageError)) as raised:
        storage.add_flow(flow)
        storage.build()
    assert "lock" in str(raised.value)
    assert _files(folder) == []  # no pickle and no temporary file
    # Nothing recorded either: the failed flow is not "in" the storage, and once fixed it can
    # be added under the same name.
    assert "unpicklable" not in storage
    assert storage.serialize()["flows"] == {}
    with Flow("unpicklable") as fixed:
        inc(1)
    location = storage.add_flow(fixed)
    assert Path(location).is_file()
    assert storage.get_flow("unpicklable").run().is_successful()


def test_a_failed_local_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "flows"
    storage = Local(directory=str(folder))

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(BackendError, match="No space left") as raised:
        storage.add_flow(_flow("disk full"))
    monkeypatch.undo()
    assert str(folder) in str(raised.value)  # names the path
    assert _files(folder) == []
    assert "disk full" not in storage  # nothing recorded for a flow that was not written
