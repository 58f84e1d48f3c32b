"""``prefect-storage register``: load flows from scripts or modules and register them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from ..exceptions import FlowLoadError
from .app import echo_json, main, one_line

if TYPE_CHECKING:
    from rich.progress import Progress

    from ..backends.base import Storage
    from ..engine.flow import Flow
    from ..registry import FlowRegistry


def load_flows(target: str) -> list[tuple[Flow, Storage]]:
    """The flows of a ``.py`` file or an importable module, each with its default storage."""
    from ..loading import flows_in_file, flows_in_importable
    from ..storage import Local, Module

    if target.endswith(".py") or os.path.isfile(target):
        path = os.path.abspath(target)
        flows = flows_in_file(target)  # errors name the script as the user typed it

        def default_storage() -> Storage:
            return Local(path=path, stored_as_script=True)
    else:
        flows = flows_in_importable(target)

        def default_storage() -> Storage:
            return Module(target)

    if not flows:
        raise FlowLoadError(f"No flows found in {target}.")
    return [(flow, flow.storage or default_storage()) for flow in flows.values()]


@main.command()
@click.argument("targets", nargs=-1, required=True, metavar="PATH_OR_MODULE...")
@click.option("-l", "--label", "labels", multiple=True, help="Extra label (repeatable).")
@click.option("--project", help="Project name recorded with the flows.")
@click.option("--json", "as_json", is_flag=True, help="Print the registered flows as JSON.")
def register(
    targets: tuple[str, ...], labels: tuple[str, ...], project: str | None, as_json: bool
) -> None:
    """Register every flow in the given scripts or modules.

    A flow without storage gets Local script storage (from a file) or Module storage.

    \b
    All or none: every script is loaded and every flow is stored before anything is
    recorded. If a script fails to load or a flow fails to store, nothing is recorded,
    what this command had uploaded is removed, and the exit code is 1. Should the
    registry itself fail part-way through recording, the error names the flows that
    were registered and those that were not (exit code 1).
    """
    from rich.progress import Progress

    from ..registry import FlowRegistry

    loaded = [pair for target in targets for pair in load_flows(target)]
    registry = FlowRegistry()
    registry.check()
    with Progress(transient=True, disable=as_json or len(loaded) < 2) as progress:
        stored = _store_all(loaded, labels, project, registry, progress)
        results = _record_all(stored, registry, progress)
    if as_json:
        echo_json(results)
        return
    for entry in results:
        status = "registered" if entry["created"] else "unchanged, kept"
        click.echo(
            f"{entry['name']}: {status} version {entry['version']} "
            f"({entry['storage']} at {entry['location']}, labels {entry['labels']})"
        )


def _store_all(
    loaded: list[tuple[Flow, Storage]],
    labels: tuple[str, ...],
    project: str | None,
    registry: FlowRegistry,
    progress: Progress,
) -> list[tuple[Flow, dict[str, Any]]]:
    """Store every flow and serialize its record; on any failure remove what was stored
    here and record nothing."""
    from ..registry.registration import prepare_flow, record_fields

    bar = progress.add_task("Storing flows", total=len(loaded))
    stored: list[tuple[Flow, dict[str, Any]]] = []
    uploaded: list[Flow] = []  # a failed build removes its own uploads; these are done
    flow: Flow | None = None
    try:
        for flow, storage in loaded:
            flow.storage = storage
            prepare_flow(flow, labels=list(labels))
            uploaded.append(flow)
            stored.append((flow, record_fields(flow, project)))
            progress.advance(bar)
    except BaseException as exc:
        removed = _remove_uploads(uploaded, registry)
        if not isinstance(exc, Exception) or flow is None:
            raise  # Ctrl-C: the uploads are removed, the interrupt stays an interrupt
        note = f" (removed what was stored for {_names(removed)})" if removed else ""
        raise click.ClickException(
            f"Nothing was registered: storing flow {flow.name!r} failed{note}: " + one_line(exc)
        ) from None
    return stored


def _record_all(
    stored: list[tuple[Flow, dict[str, Any]]], registry: FlowRegistry, progress: Progress
) -> list[dict[str, Any]]:
    from ..registry.registration import record_flow

    bar = progress.add_task("Registering flows", total=len(stored))
    results: list[dict[str, Any]] = []
    for index, (flow, fields) in enumerate(stored):
        try:
            record = record_flow(flow, registry, fields=fields)
        except Exception as exc:
            done = [r["name"] for r in results]
            missing = [f.name for f, _ in stored[index:]]
            raise click.ClickException(
                f"Registered {_names(done) if done else 'none'}; NOT registered "
                f"{_names(missing)}: recording {flow.name!r} failed: {one_line(exc)}"
            ) from None
        results.append(
            {
                "id": record.id,
                "name": record.name,
                "version": record.version,
                "created": record.created,
                "storage": record.storage["type"],
                "location": record.storage["flows"].get(record.name),
                "sha256": record.sha256,
                "labels": record.labels,
            }
        )
        progress.advance(bar)
    return results


def _remove_uploads(stored: list[Flow], registry: FlowRegistry) -> list[str]:
    """Delete the uploads of ``stored`` that no registered version points at."""
    from ..backends.base import BlobStorage

    removed = []
    registered: dict[str, set[str]] = {}
    try:
        for record in registry.list_flows(all_versions=True):
            registered.setdefault(record.name, set()).update(record.storage["flows"].values())
    except Exception:  # cannot tell what is registered: keep every upload
        return []
    for flow in stored:
        storage = flow.storage
        if not isinstance(storage, BlobStorage) or (
            storage.stored_as_script and storage.local_script_path is None
        ):
            continue  # nothing was uploaded: the script or module is the user's own
        location = storage.flows.get(flow.name)
        if location is None or location in registered.get(flow.name, ()):
            continue  # a fixed location an earlier version still uses
        storage._delete(location)
        removed.append(flow.name)
    return removed


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)
