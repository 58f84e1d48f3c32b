"""``prefect-storage register``: load flows from scripts or modules and register them."""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

import click

from ..exceptions import FlowLoadError
from . import echo_json, main

if TYPE_CHECKING:
    from ..engine.flow import Flow
    from ..storage import Storage


def load_flows(target: str) -> list[tuple[Flow, Storage]]:
    """The flows of a ``.py`` file or an importable module, each with its default storage."""
    from ..engine.context import context
    from ..loading import flows_in_module, flows_in_script
    from ..storage import Local, Module

    if target.endswith(".py") or os.path.isfile(target):
        path = os.path.abspath(target)
        try:
            with open(path, "rb") as file:
                source = file.read()
        except OSError as exc:
            raise FlowLoadError(f"Cannot read {target}: {exc.strerror}") from None
        flows = flows_in_script(source, path)

        def default_storage() -> Storage:
            return Local(path=path, stored_as_script=True)
    else:
        with context(loading_flow=True):
            try:
                module = importlib.import_module(target)
            except ImportError as exc:
                raise FlowLoadError(f"Cannot import {target!r}: {exc}") from None
        flows = flows_in_module(module)

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
    """
    from rich.progress import Progress

    from ..registry import FlowRegistry
    from ..registry.registration import register_flow

    loaded = [pair for target in targets for pair in load_flows(target)]
    registry = FlowRegistry()
    registry.check()
    results: list[dict[str, Any]] = []
    with Progress(transient=True, disable=as_json or len(loaded) < 2) as progress:
        bar = progress.add_task("Registering flows", total=len(loaded))
        for flow, storage in loaded:
            flow.storage = storage
            record = register_flow(
                flow, project_name=project, labels=list(labels), registry=registry
            )
            assert record is not None  # only None while a flow file is loading
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
    if as_json:
        echo_json(results)
        return
    for entry in results:
        status = "registered" if entry["created"] else "unchanged, kept"
        click.echo(
            f"{entry['name']}: {status} version {entry['version']} "
            f"({entry['storage']} at {entry['location']}, labels {entry['labels']})"
        )
