"""Azure over Azurite, with the connection string in the environment or a secret."""

from __future__ import annotations

from functools import partial
from typing import Any

from prefect_storage.results import AzureResult
from prefect_storage.secrets import ENV_PREFIX
from prefect_storage.storage import Azure, Storage
from tests.contract.rigs import (
    FIXED_KEY,
    Rig,
    RigContext,
    RigSpec,
    flow_loader,
    script_kwargs,
)

AZURE_SECRET = "CONTRACT_AZURE_CONNECTION"
AZURE_BAD_SECRET = "CONTRACT_AZURE_BAD_CONNECTION"


def azure_rig(ctx: RigContext, *, script_mode: bool) -> Rig:
    """Azurite, which checks the shared-key signature of every request.

    Pickle mode finds the connection string in ``AZURE_STORAGE_CONNECTION_STRING``; script
    mode names a secret with ``connection_string_secret`` (set through the
    ``PREFECT__CONTEXT__SECRETS__<NAME>`` variable). ``break_credentials`` names a secret that
    holds the same endpoint with a wrong account key (Azurite answers 403).
    """
    from tests.servers.azurite import ACCOUNT_KEY, BAD_ACCOUNT_KEY

    server = ctx.fixture("azurite")
    proxy = ctx.fixture("fault_proxy")(server.url)
    script = ctx.write_flow_script()
    container = server.new_container()
    blobs = server.container_client(container)
    good = server.connection_string_for(proxy.url)
    bad = server.connection_string_for(proxy.url, key=BAD_ACCOUNT_KEY)
    env = {ENV_PREFIX + AZURE_BAD_SECRET: bad}
    if script_mode:
        ctx.monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
        env[ENV_PREFIX + AZURE_SECRET] = good
    else:
        env["AZURE_STORAGE_CONNECTION_STRING"] = good

    def make_storage(**kwargs: Any) -> Azure:
        if script_mode:
            # Both flows share the script's blob: overwrite=True, or the second upload of the
            # same script is refused (see tests/backends: the script is uploaded per flow).
            kwargs = script_kwargs(
                script,
                "blob_name",
                connection_string_secret=AZURE_SECRET,
                overwrite=True,
                **kwargs,
            )
        return Azure(container, **kwargs)

    def break_credentials(storage: Storage) -> Storage:
        assert isinstance(storage, Azure)
        kwargs: dict[str, Any] = {"connection_string_secret": AZURE_BAD_SECRET}
        if script_mode:
            kwargs = script_kwargs(script, "blob_name", overwrite=True, **kwargs)
        twin = Azure(container, **kwargs)
        twin.flows = dict(storage.flows)
        return twin

    return Rig(
        id=ctx.rig_id,
        required_fields=frozenset({"container"}),
        make_storage=make_storage,
        load_flow=flow_loader(script),
        script_mode=script_mode,
        paired_result=AzureResult,
        env=env,
        sensitive_values=(ACCOUNT_KEY, BAD_ACCOUNT_KEY),
        read_stored=lambda storage, location: blobs.download_blob(location).readall(),
        write_stored=lambda storage, location, data: blobs.upload_blob(
            location, data, overwrite=True
        ),
        remove_stored=lambda storage, location: blobs.delete_blob(location),
        break_credentials=break_credentials,
        fail_next_upload=lambda: proxy.fail_next(400, method="PUT", path_contains=f"/{container}/"),
        fixed_location=lambda: {"blob_name": FIXED_KEY},
    )


RIGS = [
    RigSpec("azure-pickle", partial(azure_rig, script_mode=False)),
    RigSpec("azure-script", partial(azure_rig, script_mode=True)),
]
