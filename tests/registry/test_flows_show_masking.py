"""``flows show`` masks every literal credential of a registered storage: a Webhook whose
requests carry them in every place requests takes them (URL userinfo and query, ``auth``,
``cookies``, credential headers, ``params``), registered through the real registry and
shown by the CLI run as a subprocess. ``${NAME}`` templates and secret names stay visible."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from prefect_storage.engine.flow import Flow
from prefect_storage.registry import FlowRegistry
from prefect_storage.registry.registration import register_flow
from prefect_storage.storage import Webhook
from tests.registry.conftest import CLI
from tests.servers.webhook import WebhookServer

SCRIPT = """
from prefect_storage import Flow, task

@task
def noop():
    return 1

with Flow("shown") as flow:
    noop()
"""


def _token(kind: str) -> str:
    return f"leak-{kind}-{uuid.uuid4().hex}"


def test_flows_show_masks_every_literal_webhook_credential(
    cli: CLI,
    registry: FlowRegistry,
    webhook_server: WebhookServer,
    load_flow: Callable[[str, str], Flow],
) -> None:
    tokens = {
        kind: _token(kind)
        for kind in (
            "url-password", "query-token", "auth-password", "cookie", "cookie-header",
            "x-auth-token", "x-api-key", "session-header", "param-sig",
        )
    }  # fmt: skip
    webhook_server.token = tokens["auth-password"]  # Basic auth with the literal pair works
    host = webhook_server.url.removeprefix("http://")
    url = f"http://robot:{tokens['url-password']}@{host}/flows/shown"
    build = {
        "url": f"{url}?private_token={tokens['query-token']}",
        "auth": (webhook_server.basic_user, tokens["auth-password"]),
        "cookies": {"sessionid": tokens["cookie"]},
        "headers": {
            "X-Auth-Token": tokens["x-auth-token"],
            "X-API-Key": tokens["x-api-key"],
            "Cookie": f"sid={tokens['cookie-header']}",
            "X-Session": tokens["session-header"],
            "Accept": "application/octet-stream",
        },
        "params": {"sig": tokens["param-sig"], "page": "1"},
    }
    get = {
        "url": f"http://{host}/flows/shown?private_token=${{QUERY_TOKEN}}",
        "auth": [webhook_server.basic_user, "${WH_PASSWORD}"],
        "headers": {"X-Auth-Token": "${X_AUTH}"},
    }
    flow = load_flow(SCRIPT, "shown")
    flow.storage = Webhook(
        build_request_kwargs=build,
        build_request_http_method="PUT",
        get_flow_request_kwargs=get,
        get_flow_request_http_method="GET",
        secrets=["WH_PASSWORD"],
    )
    register_flow(flow, registry=registry)
    assert list(webhook_server.blobs) == ["shown"]  # the literal credentials really worked
    stored = json.dumps(registry.get_flow("shown").storage)
    assert all(token in stored for token in tokens.values())  # kept: the build needs them

    text = cli("flows", "show", "shown")
    as_json = cli("flows", "show", "shown", "--json")
    for done in (text, as_json):
        assert done.returncode == 0, done.stderr
        leaks = [kind for kind, token in tokens.items() if token in done.stdout + done.stderr]
        assert leaks == []
    storage = json.loads(as_json.stdout)["storage"]
    shown_build, shown_get = storage["build_request_kwargs"], storage["get_flow_request_kwargs"]
    assert shown_build["url"] == f"http://robot:********@{host}/flows/shown?private_token=********"
    assert shown_build["auth"] == [webhook_server.basic_user, "********"]
    assert shown_build["cookies"] == {"sessionid": "********"}
    assert shown_build["headers"] == {
        "X-Auth-Token": "********",
        "X-API-Key": "********",
        "Cookie": "********",
        "X-Session": "********",
        "Accept": "application/octet-stream",
    }
    assert shown_build["params"] == {"sig": "********", "page": "1"}
    # Templates name secrets; they are shown as they are.
    assert shown_get == get
    assert storage["secrets"] == ["WH_PASSWORD"]
