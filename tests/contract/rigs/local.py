"""Local storage: pickles under a folder, or a script where it lies."""

from __future__ import annotations

import socket
from functools import partial

from prefect_storage.results import LocalResult
from prefect_storage.storage import Local
from tests.contract.rigs import (
    Rig,
    RigContext,
    RigSpec,
    flow_loader,
    read_file,
    remove_file,
    write_file,
)


def local_rig(ctx: RigContext, *, script_mode: bool) -> Rig:
    script = ctx.write_flow_script()
    make_storage = partial(Local, path=str(script), stored_as_script=True) if script_mode else Local
    return Rig(
        id=ctx.rig_id,
        make_storage=make_storage,
        load_flow=flow_loader(script),
        script_mode=script_mode,
        paired_result=LocalResult,
        default_labels=lambda: [socket.gethostname()],
        read_stored=read_file,
        write_stored=write_file,
        remove_stored=remove_file,
        fixed_location=lambda: {"path": str(ctx.folder / "fixed" / "one.flow")},
    )


RIGS = [
    RigSpec("local-pickle", partial(local_rig, script_mode=False)),
    RigSpec("local-script", partial(local_rig, script_mode=True)),
]
