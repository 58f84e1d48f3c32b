"""Webhook storage: our HTTP blob server, with a bearer token in a ``${NAME}`` template."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from prefect_storage.storage import Storage, Webhook
from tests.contract.rigs import (
    Rig,
    RigContext,
    RigSpec,
    flow_loader,
)

TOKEN_ENV = "CONTRACT_TOKEN"
"""Holds the server's token; Webhook headers name it as a ``${CONTRACT_TOKEN}`` template."""
BAD_TOKEN_ENV = "CONTRACT_BAD_TOKEN"
"""Holds a token the server refuses (``break_credentials``)."""


def webhook_rig(ctx: RigContext, *, script_mode: bool) -> Rig:
    server = ctx.fixture("webhook_server")
    script = ctx.write_flow_script()
    ctx.monkeypatch.setenv(BAD_TOKEN_ENV, "not-the-token")

    def webhook(url: str, token_env: str, **kwargs: Any) -> Webhook:
        request = {"url": url, "headers": {"Authorization": f"Bearer ${{{token_env}}}"}}
        if script_mode:
            kwargs = {"stored_as_script": True, "flow_script_path": str(script), **kwargs}
        return Webhook(
            build_request_kwargs=request,
            build_request_http_method="PUT",
            get_flow_request_kwargs=request,
            get_flow_request_http_method="GET",
            **kwargs,
        )

    def make_storage(**kwargs: Any) -> Webhook:
        return webhook(f"{server.url}/flows/{uuid.uuid4().hex}", TOKEN_ENV, **kwargs)

    def blob_id(storage: Storage) -> str:
        assert isinstance(storage, Webhook)
        return storage.get_flow_request_kwargs["url"].rsplit("/", 1)[1]

    def write(storage: Storage, location: str, data: bytes) -> None:
        server.blobs[blob_id(storage)] = data

    def break_credentials(storage: Storage) -> Storage:
        assert isinstance(storage, Webhook)
        broken = webhook(storage.build_request_kwargs["url"], BAD_TOKEN_ENV)
        broken.flows = dict(storage.flows)
        return broken

    return Rig(
        id=ctx.rig_id,
        required_fields=frozenset(
            {
                "build_request_kwargs",
                "build_request_http_method",
                "get_flow_request_kwargs",
                "get_flow_request_http_method",
            }
        ),
        make_storage=make_storage,
        load_flow=flow_loader(script),
        script_mode=script_mode,
        single_flow=True,
        env={TOKEN_ENV: server.token},
        sensitive_values=(server.token,),
        read_stored=lambda storage, location: server.blobs[blob_id(storage)],
        write_stored=write,
        remove_stored=lambda storage, location: server.blobs.pop(blob_id(storage)),
        break_credentials=break_credentials,
        fail_next_upload=lambda: server.fail_next(400),
    )


RIGS = [
    RigSpec("webhook-pickle", partial(webhook_rig, script_mode=False)),
    RigSpec("webhook-script", partial(webhook_rig, script_mode=True)),
]
