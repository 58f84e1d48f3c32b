"""Registering a flow: store it with its storage, then record it in the flow registry."""

from __future__ import annotations

import json
import warnings
from typing import TYPE_CHECKING, Any

from ..engine.context import context
from ..engine.tasks import Parameter
from ..run_configs import UniversalRun
from . import FlowRecord, FlowRegistry

if TYPE_CHECKING:
    from ..engine.flow import Flow


def register_flow(
    flow: Flow,
    project_name: str | None = None,
    labels: list[str] | None = None,
    build: bool = True,
    registry: FlowRegistry | str | None = None,
    **storage_kwargs: Any,
) -> FlowRecord | None:
    """Store ``flow`` and record it; the record's ``created`` is False for identical content.

    Follows Prefect 1: default ``Local`` storage (built from ``storage_kwargs``), default
    ``UniversalRun``, the storage's labels added to the run config's, the storage's
    paired result when the flow has none. A build that fails records nothing.
    """
    from ..storage import Local

    if context.get("loading_flow"):
        warnings.warn(
            "Attempting to call `flow.register` during execution of flow file will lead to "
            "unexpected results.",
            stacklevel=3,
        )
        return None
    if not isinstance(registry, FlowRegistry):
        registry = FlowRegistry(registry)
    registry.check()  # an unreachable registry fails before anything is uploaded

    if flow.storage is None:
        flow.storage = Local(**storage_kwargs)
    storage = flow.storage
    if flow.run_config is None:
        flow.run_config = UniversalRun()
    flow.run_config.labels.update(storage.labels)
    flow.run_config.labels.update(labels or ())
    if not flow.result:
        flow.result = storage.result

    if flow.name in storage:
        warnings.warn(
            "A flow with the same name is already contained in storage; if you changed your "
            "Flow since the last build, you might experience unexpected issues and should "
            "re-create your storage object.",
            stacklevel=3,
        )
    else:
        storage.add_flow(flow)
    if build:
        storage.build()

    record = registry.register_flow(
        name=flow.name,
        storage=storage.serialize(),
        sha256=storage.digests.get(flow.name),
        labels=sorted(flow.run_config.labels),
        run_config=flow.run_config.serialize(),
        parameters=describe_parameters(flow),
        project=project_name,
    )
    registered_location = record.storage["flows"].get(flow.name)
    if not record.created and registered_location != storage.flows[flow.name]:
        # Identical content is already registered: drop the fresh copy, point at the old.
        storage._delete(storage.flows[flow.name])
        storage.flows[flow.name] = registered_location
    return record


def describe_parameters(flow: Flow) -> list[dict[str, Any]]:
    """Name, required flag and (JSON-compatible) default of each parameter."""
    described = []
    for parameter in sorted(flow.parameters(), key=lambda p: p.name):
        assert isinstance(parameter, Parameter)
        default = parameter.default
        try:
            json.dumps(default)
        except (TypeError, ValueError):
            default = repr(default)
        described.append(
            {"name": parameter.name, "required": parameter.required, "default": default}
        )
    return described
