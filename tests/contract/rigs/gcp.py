"""GCS over the Google Cloud Storage emulator."""

from __future__ import annotations

from functools import partial
from typing import Any

from prefect_storage.results import GCSResult
from prefect_storage.storage import GCS
from tests.contract.rigs import (
    FIXED_KEY,
    Rig,
    RigContext,
    RigSpec,
    flow_loader,
    script_kwargs,
)


def gcs_rig(ctx: RigContext, *, script_mode: bool) -> Rig:
    """gcp-storage-emulator: it checks no credentials (there is nothing to break)."""
    server = ctx.fixture("gcs")
    proxy = ctx.fixture("fault_proxy")(server.endpoint)
    script = ctx.write_flow_script()
    bucket = server.new_bucket()
    blobs = server.client().bucket(bucket)

    def make_storage(**kwargs: Any) -> GCS:
        if script_mode:
            kwargs = script_kwargs(script, "key", **kwargs)
        return GCS(bucket, project="test", **kwargs)

    return Rig(
        id=ctx.rig_id,
        required_fields=frozenset({"bucket"}),
        make_storage=make_storage,
        load_flow=flow_loader(script),
        script_mode=script_mode,
        paired_result=GCSResult,
        env={"STORAGE_EMULATOR_HOST": proxy.url},
        read_stored=lambda storage, location: blobs.blob(location).download_as_bytes(),
        write_stored=lambda storage, location, data: blobs.blob(location).upload_from_string(data),
        remove_stored=lambda storage, location: blobs.blob(location).delete(),
        fail_next_upload=lambda: proxy.fail_next(
            400, method="POST", path_contains=f"/upload/storage/v1/b/{bucket}/o"
        ),
        fixed_location=lambda: {"key": FIXED_KEY},
    )


RIGS = [
    RigSpec("gcs-pickle", partial(gcs_rig, script_mode=False)),
    RigSpec("gcs-script", partial(gcs_rig, script_mode=True)),
]
