"""Module storage: the flows of an importable module."""

from __future__ import annotations

import os
import uuid
from functools import partial

from prefect_storage.loading import extract_flow_from_module
from prefect_storage.storage import Module
from tests.contract.rigs import (
    Rig,
    RigContext,
    RigSpec,
)


def module_rig(ctx: RigContext) -> Rig:
    # A unique name per test: an earlier test's module must never be found in sys.modules.
    module = f"contract_flows_{uuid.uuid4().hex[:12]}"
    ctx.write_flow_script(f"{module}.py")
    ctx.monkeypatch.syspath_prepend(str(ctx.folder))
    pythonpath = os.pathsep.join(p for p in (str(ctx.folder), os.environ.get("PYTHONPATH")) if p)
    return Rig(
        id=ctx.rig_id,
        required_fields=frozenset({"module"}),
        make_storage=partial(Module, module),
        load_flow=lambda name: extract_flow_from_module(module, flow_name=name),
        stores_bytes=False,
        env={"PYTHONPATH": pythonpath},
    )


RIGS = [
    RigSpec("module", module_rig),
]
