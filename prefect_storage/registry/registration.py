"""Registering a flow: store it with its storage, then record it in the flow registry."""

from __future__ import annotations

import json
import logging
import warnings
from typing import TYPE_CHECKING, Any

from ..engine.context import context
from ..engine.tasks import Parameter
from ..run_configs import UniversalRun
from . import FlowRecord, FlowRegistry

if TYPE_CHECKING:
    from ..engine.flow import Flow
    from ..storage import Storage

logger = logging.getLogger("prefect_storage.registry")


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
    paired result when the flow has none. A build that fails records nothing. Identical
    content re-uses the earlier upload only if it is still there, unchanged; otherwise
    the fresh upload is recorded as a new version.
    """
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
    prepare_flow(flow, labels=labels, build=build, stacklevel=4, **storage_kwargs)
    return record_flow(flow, registry, project_name=project_name)


def prepare_flow(
    flow: Flow,
    labels: list[str] | None = None,
    build: bool = True,
    stacklevel: int = 2,
    **storage_kwargs: Any,
) -> Storage:
    """Give ``flow`` its defaults (storage, run config, labels, result) and store it."""
    from ..storage import Local

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
            stacklevel=stacklevel,
        )
    else:
        storage.add_flow(flow)
    if build:
        storage.build()
    return storage


def record_fields(flow: Flow, project_name: str | None = None) -> dict[str, Any]:
    """What the registry records for a flow that :func:`prepare_flow` stored."""
    storage, run_config = flow.storage, flow.run_config
    assert storage is not None and run_config is not None  # prepare_flow sets them
    return {
        "name": flow.name,
        "storage": storage.serialize(),
        "sha256": storage.digests.get(flow.name),
        "labels": sorted(run_config.labels),
        "run_config": run_config.serialize(),
        "parameters": describe_parameters(flow),
        "project": project_name,
    }


def record_flow(
    flow: Flow,
    registry: FlowRegistry,
    project_name: str | None = None,
    fields: dict[str, Any] | None = None,
) -> FlowRecord:
    """Record a flow that :func:`prepare_flow` stored (``fields``: from :func:`record_fields`).

    When the registry already has identical content, the earlier upload is re-used (and
    the fresh one removed) only if its bytes still match the recorded SHA-256. An
    earlier upload that was deleted or damaged is not repaired in place: the fresh upload
    becomes a new version, so the history shows which version pointed where.
    """
    storage = flow.storage
    assert storage is not None  # prepare_flow sets it
    if fields is None:
        fields = record_fields(flow, project_name)
    record = registry.register_flow(**fields)
    fresh = storage.flows[flow.name]
    earlier = record.storage["flows"].get(flow.name)
    if record.created or earlier == fresh:
        return record
    if earlier is not None and storage._stored_digest(earlier) == record.sha256:
        # Identical content is already registered and intact: drop the fresh copy.
        storage._delete(fresh)
        storage.flows[flow.name] = earlier
        return record
    logger.warning(
        "Flow %r version %d points at %s, which is missing or no longer matches its "
        "sha256; recording the fresh upload at %s as a new version.",
        flow.name,
        record.version,
        earlier,
        fresh,
    )
    return registry.register_flow(**fields, reuse_identical=False)


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
