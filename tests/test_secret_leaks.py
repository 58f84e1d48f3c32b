"""No secret value ever appears in a payload, repr, log line, error message or stored file.

Each test plants unique tokens as secret values in every place a secret can go, exercises
build / get_flow / serialize / run / the error paths with logging at DEBUG, then searches
everything observable for the tokens.
"""

from __future__ import annotations

import json
import logging
import socket
import traceback
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from prefect_storage import Flow, context, task
from prefect_storage.exceptions import (
    BackendAuthError,
    BackendError,
    BackendUnavailableError,
    FlowStorageError,
    SecretNotFoundError,
)
from prefect_storage.retry import RetryPolicy
from prefect_storage.secrets import ENV_PREFIX, Secret, resolve_secrets, set_secret
from prefect_storage.storage import Local, Storage, Webhook
from tests.servers.webhook import WebhookServer

SECRET_NAMES = ("CTX_SECRET", "ENV_SECRET", "FILE_SECRET", "STORE_SECRET")
"""Secrets named in ``storage.secrets``, one per source (context, env x2, secrets file)."""


def _token(kind: str) -> str:
    return f"leak-{kind.lower()}-{uuid.uuid4().hex}"


@task
def uses_secrets() -> int:
    """Reads every secret at run time; returns only a number derived from them."""
    return sum(len(str(Secret(name).get())) for name in SECRET_NAMES)


def _flow(name: str) -> Flow:
    with Flow(name) as flow:
        uses_secrets()
    return flow


def _error_texts(exc: BaseException) -> dict[str, str | bytes]:
    name = type(exc).__name__
    return {
        f"str({name})": str(exc),
        f"repr({name})": repr(exc),
        f"traceback of {name}": "".join(traceback.format_exception(exc)),
    }


def _home_files(home: Path) -> dict[str, bytes]:
    """Every file under home except the secrets file itself."""
    return {
        str(p.relative_to(home)): p.read_bytes()
        for p in home.rglob("*")
        if p.is_file() and p.name != "secrets.toml"
    }


def _assert_absent(tokens: Iterable[str], where: dict[str, str | bytes]) -> None:
    leaks = []
    for token in tokens:
        for label, text in where.items():
            needle: str | bytes = token.encode() if isinstance(text, bytes) else token
            at = text.find(needle)  # type: ignore[arg-type]
            if at >= 0:
                before = text[max(0, at - 60) : at]
                leaks.append(f"{token[:12]}... in {label}, after {before!r}")
    assert leaks == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch, webhook_server: WebhookServer) -> dict[str, str]:
    """Unique tokens planted as secret values in every place a secret can go."""
    tokens = {kind: _token(kind) for kind in ("CTX", "ENV", "FILE", "STORE", "URL", "PARAM")}
    tokens["HEADER"] = webhook_server.token  # the server's bearer token, via ${WH_TOKEN}
    monkeypatch.setenv(ENV_PREFIX + "ENV_SECRET", tokens["ENV"])
    monkeypatch.setenv(ENV_PREFIX + "STORE_SECRET", tokens["STORE"])
    set_secret("FILE_SECRET", tokens["FILE"])
    set_secret("WH_TOKEN", tokens["HEADER"])
    set_secret("WH_FLOW_ID", tokens["URL"])
    return tokens


def _webhook(server_url: str, **overrides: Any) -> Webhook:
    request = {
        "url": server_url + "/flows/${WH_FLOW_ID}",
        "headers": {"Authorization": "Bearer ${WH_TOKEN}"},
        "params": {"sig": "${WH_SIG}"},
    }
    arguments: dict[str, Any] = {
        "build_request_kwargs": dict(request),
        "build_request_http_method": "PUT",
        "get_flow_request_kwargs": dict(request),
        "get_flow_request_http_method": "GET",
        "secrets": [*SECRET_NAMES, "WH_SIG"],
    }
    arguments.update(overrides)
    return Webhook(**arguments)


def test_no_secret_leaks_through_build_load_run_and_errors(
    planted: dict[str, str],
    webhook_server: WebhookServer,
    home: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    observed: dict[str, str | bytes] = {}
    run_context = {"CTX_SECRET": planted["CTX"], "WH_SIG": planted["PARAM"]}

    with context(secrets=run_context):
        # Webhook: templates in URL, params and headers; storage.secrets from every source.
        webhook = _webhook(webhook_server.url)
        webhook_flow = _flow("webhook flow")
        webhook_flow.storage = webhook
        webhook.add_flow(webhook_flow)
        webhook.build()
        assert webhook_server.blobs, "the flow was not uploaded"
        assert list(webhook_server.blobs) == [planted["URL"]]  # the templates were rendered
        # Local: a pickled flow under home whose storage names the secrets.
        local = Local(secrets=list(SECRET_NAMES))
        local_flow = _flow("local flow")
        local_flow.storage = local
        local_flow.result = local.result
        local.add_flow(local_flow)
        local.build()

        # The executing side: rebuild from the payload, resolve secrets, load, run.
        expected_total = sum(len(planted[k]) for k in ("CTX", "ENV", "FILE", "STORE"))
        for storage, name in ((webhook, "webhook flow"), (local, "local flow")):
            payload = json.dumps(storage.serialize())
            observed[f"serialize() of {name}"] = payload
            observed[f"repr() of {name} storage"] = repr(storage)
            rebuilt = Storage.deserialize(json.loads(payload))
            with context(secrets={**run_context, **resolve_secrets(rebuilt.secrets)}):
                loaded = rebuilt.get_flow(name)
                state = loaded.run()
            assert state.is_successful()
            assert [s.result for s in state.result.values()] == [expected_total]
            observed[f"repr() of {name}"] = repr(loaded)
            observed[f"repr() of {name} state"] = repr(state) + repr(list(state.result.values()))

        # Error paths.
        errors: list[BaseException] = []
        webhook_server.token = "the-server-now-wants-another-token"
        with pytest.raises(BackendAuthError) as auth:
            webhook.get_flow("webhook flow")
        errors.append(auth.value)
        webhook_server.token = planted["HEADER"]

        webhook.retry_policy = RetryPolicy(max_attempts=2, base_delay=0.01)
        webhook_server.fail_next(500, times=2)  # retried once (a logged warning), then raised
        with pytest.raises(BackendError) as server_error:
            webhook.get_flow("webhook flow")
        errors.append(server_error.value)

        missing = _webhook(
            webhook_server.url,
            get_flow_request_kwargs={
                "url": webhook_server.url + "/flows/${WH_FLOW_ID}",
                "headers": {"Authorization": "Bearer ${WH_TOKEN}", "X-Other": "${NOT_SET}"},
            },
        )
        missing.flows = {"webhook flow": "webhook flow"}
        with pytest.raises(SecretNotFoundError) as not_found:
            missing.get_flow("webhook flow")
        errors.append(not_found.value)

        unreachable = _webhook(f"http://127.0.0.1:{_closed_port()}")
        unreachable.flows = {"webhook flow": "webhook flow"}
        with pytest.raises(BackendUnavailableError) as unavailable:
            unreachable.get_flow("webhook flow")
        errors.append(unavailable.value)

    for error in errors:
        observed.update(_error_texts(error))
    observed["repr() of the webhook flow"] = repr(webhook_flow)
    observed["captured logs"] = caplog.text
    observed["captured log records"] = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
    )
    for label, data in _home_files(home).items():
        observed[f"home file {label}"] = data
    for flow_id, data in webhook_server.blobs.items():
        observed[f"stored envelope {flow_id[:12]}"] = data

    assert any(label.startswith("home file flows/") for label in observed)  # searched the pickle
    assert caplog.records, "nothing was logged: the log check would be vacuous"
    _assert_absent(planted.values(), observed)


def test_no_leak_when_the_webhook_rejects_the_token(
    planted: dict[str, str], webhook_server: WebhookServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    webhook_server.token = "the-token-the-server-really-wants"
    storage = _webhook(webhook_server.url)
    storage.add_flow(_flow("rejected"))
    with context(secrets={"WH_SIG": planted["PARAM"]}), pytest.raises(BackendAuthError) as raised:
        storage.build()
    assert "401" in str(raised.value)
    observed = _error_texts(raised.value)
    observed["logs"] = caplog.text
    _assert_absent(planted.values(), observed)


def test_no_leak_from_a_corrupt_secrets_file(home: Path) -> None:
    token = _token("toml")
    home.mkdir(parents=True, exist_ok=True)
    (home / "secrets.toml").write_text(f'[secrets]\nGOOD = "x"\nBAD = "{token}\n')
    with pytest.raises(FlowStorageError) as raised:
        Secret("GOOD").get()
    _assert_absent([token], _error_texts(raised.value))


def test_no_leak_from_a_missing_secret_among_set_ones(planted: dict[str, str]) -> None:
    with (
        context(secrets={"CTX_SECRET": planted["CTX"]}),
        pytest.raises(SecretNotFoundError) as raised,
    ):
        resolve_secrets([*SECRET_NAMES, "NEVER_SET"])
    assert "NEVER_SET" in str(raised.value)
    _assert_absent(planted.values(), _error_texts(raised.value))


# -- Webhook: (user, password) auth and literal credentials in URLs ------------------------------
@task
def answer() -> int:
    return 42


def _answer_flow(name: str) -> Flow:
    with Flow(name) as flow:
        answer()
    return flow


def _auth_webhook(url: str, auth: Any) -> Webhook:
    return Webhook(
        build_request_kwargs={"url": url, "auth": auth},
        build_request_http_method="PUT",
        get_flow_request_kwargs={"url": url, "auth": auth},
        get_flow_request_http_method="GET",
    )


@pytest.mark.parametrize("template", [True, False], ids=["template", "literal"])
def test_webhook_auth_pair_survives_the_json_round_trip_an_agent_does(
    webhook_server: WebhookServer, template: bool
) -> None:
    password = _token("basic")
    webhook_server.token = password  # Basic auth as webhook_server.basic_user with it
    set_secret("WH_PASSWORD", password)
    auth = (webhook_server.basic_user, "${WH_PASSWORD}" if template else password)
    storage = _auth_webhook(webhook_server.url + "/flows/basic", auth)
    storage.add_flow(_answer_flow("basic"))
    storage.build()
    assert list(webhook_server.blobs) == ["basic"]

    payload = json.loads(json.dumps(storage.serialize()))  # what the agent's process gets
    assert isinstance(payload["get_flow_request_kwargs"]["auth"], list)
    rebuilt = Storage.deserialize(payload)
    state = rebuilt.get_flow("basic").run()
    assert state.is_successful()
    assert [s.result for s in state.result.values()] == [42]
    get = webhook_server.requests[-1]
    assert get.method == "GET" and get.headers["Authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    "auth", ["user:password", ("user",), ("user", "a", "b"), ("user", 3), {"user": "x"}]
)
def test_webhook_auth_that_requests_cannot_use_is_refused_at_construction(auth: Any) -> None:
    with pytest.raises(TypeError, match=r"`build_request_kwargs\['auth'\]`.*\$\{PASSWORD\}"):
        _auth_webhook("http://127.0.0.1:9/flows/x", auth)
    payload = _auth_webhook("http://127.0.0.1:9/flows/x", ("u", "p")).serialize()
    payload["get_flow_request_kwargs"]["auth"] = auth
    with pytest.raises(TypeError, match=r"`get_flow_request_kwargs\['auth'\]`"):
        Storage.deserialize(json.loads(json.dumps(payload)))


def test_no_leak_of_literal_credentials_in_a_webhook_url(
    webhook_server: WebhookServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Legacy requests put credentials in the URL itself (userinfo, a signed query); they
    are masked in warnings, errors and DEBUG logs (urllib3 logs the request target)."""
    caplog.set_level(logging.DEBUG)
    tokens = {kind: _token(kind) for kind in ("userinfo", "signature", "access-token")}
    url = f"{webhook_server.url}/flows/signed?X-Amz-Signature={tokens['signature']}"
    storage = Webhook(
        build_request_kwargs={"url": url, "headers": {"Authorization": "Bearer ${WH_TOKEN}"}},
        build_request_http_method="PUT",
        get_flow_request_kwargs={
            "url": url + f"&access_token={tokens['access-token']}",
            "headers": {"Authorization": "Bearer ${WH_TOKEN}"},
        },
        get_flow_request_http_method="GET",
    )
    storage.retry_policy = RetryPolicy(max_attempts=2, base_delay=0.01)
    errors: list[BaseException] = []
    with context(secrets={"WH_TOKEN": webhook_server.token}):
        storage.add_flow(_answer_flow("signed"))
        storage.build()
        webhook_server.fail_next(503, times=2)  # retried once (a logged warning), then raised
        with pytest.raises(BackendUnavailableError) as unavailable:
            storage.get_flow("signed")
        errors.append(unavailable.value)
        # requests turns URL userinfo into Basic auth, so this one meets a closed port.
        unreachable = _auth_webhook(
            f"http://robot:{tokens['userinfo']}@127.0.0.1:{_closed_port()}/flows/x", None
        )
        unreachable.retry_policy = storage.retry_policy
        unreachable.flows = {"x": "x"}
        with pytest.raises(BackendUnavailableError) as closed:
            unreachable.get_flow("x")
        errors.append(closed.value)
    assert "X-Amz-Signature=***" in str(unavailable.value)
    assert "robot:***@" in str(closed.value)
    assert any("attempt 1 of 2" in r.getMessage() for r in caplog.records)
    assert any(tokens["signature"] in r.path for r in webhook_server.requests)  # it was sent
    assert any("X-Amz-Signature" in r.getMessage() for r in caplog.records if r.levelno == 10)
    observed: dict[str, str | bytes] = {"logs": caplog.text}
    for error in errors:
        observed.update(_error_texts(error))
    _assert_absent(tokens.values(), observed)


# -- credentials inside URLs, wherever text leaves us ---------------------------------------------
@pytest.mark.parametrize(
    "text, redacted",
    [
        (
            "Fetching ssh://user:TOKEN@127.0.0.1:22/r.git",
            "Fetching ssh://user:***@127.0.0.1:22/r.git",
        ),
        ("git+ssh://git:TOKEN@host/r.git", "git+ssh://git:***@host/r.git"),
        ("https://oauth2:TOKEN@gitlab.example/r.git", "https://oauth2:***@gitlab.example/r.git"),
        ("https://TOKEN@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("'https://h/r.git?private_token=TOKEN/': 503", "'https://h/r.git?private_token=***': 503"),
        (
            '127.0.0.1:80 "GET /k?X-Amz-Credential=TOKEN&X-Amz-Signature=TOKEN&n=1 HTTP/1.1"',
            '127.0.0.1:80 "GET /k?X-Amz-Credential=***&X-Amz-Signature=***&n=1 HTTP/1.1"',
        ),
        ("https://a.blob/c?sv=2021&sig=TOKEN;x", "https://a.blob/c?sv=2021&sig=***;x"),
        ("https://h/cb?code=TOKEN&state=s", "https://h/cb?code=***&state=s"),
        ("https://u:${PASSWORD}@h/?token=${TOKEN}", "https://u:${PASSWORD}@h/?token=${TOKEN}"),
        ("nothing to see: a@b.c, x=1", "nothing to see: a@b.c, x=1"),
    ],
)
def test_redact_urls_masks_credentials_in_every_url_form(text: str, redacted: str) -> None:
    from prefect_storage.secrets import redact_urls

    assert redact_urls(text) == redacted


def test_run_logs_mask_credentials_in_urls_a_flow_logs(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The registry's log handler masks URL credentials in every record of a run."""
    from prefect_storage.agents import LocalAgent
    from prefect_storage.loading import flows_in_script
    from prefect_storage.registry import REGISTRY_URL_ENV, FlowRegistry, RunState

    monkeypatch.delenv(REGISTRY_URL_ENV, raising=False)
    token = _token("logged")
    set_secret("API_TOKEN", token)
    script = tmp_path / "logs_a_url.py"
    script.write_text(
        "from prefect_storage import Flow, context, task\n"
        "from prefect_storage.secrets import Secret\n\n"
        "@task\n"
        "def call():\n"
        "    url = 'https://api.example/v1?access_token=' + Secret('API_TOKEN').get()\n"
        "    context['logger'].info('calling %s', url)\n"
        "    return 1\n\n"
        "with Flow('logs-a-url') as flow:\n"
        "    call()\n"
    )
    flow = flows_in_script(script.read_bytes(), str(script))["logs-a-url"]
    flow.storage = Local(directory=str(tmp_path / "flows"), add_default_labels=False)
    registry = FlowRegistry()
    flow.register(labels=["redact"], registry=registry)
    run = registry.create_flow_run("logs-a-url")
    assert LocalAgent(hostname_label=False, labels=["redact"], registry=registry).run_once() == [
        run.id
    ]
    assert registry.get_flow_run(run.id).state == RunState.SUCCESS
    messages = [entry["message"] for entry in registry.get_logs(run.id)]
    assert "calling https://api.example/v1?access_token=***" in messages
    _assert_absent([token], {"run logs": "\n".join(messages), **_home_files(home)})
