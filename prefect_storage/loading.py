"""Load flows from Python source (script mode) and from importable modules (``Module``)."""

from __future__ import annotations

import importlib
import os
import sys
from operator import attrgetter

from .engine.context import context
from .engine.flow import Flow
from .engine.tasks import Task
from .exceptions import FlowLoadError, NotAFlowError

__all__ = [
    "extract_flow_from_file",
    "extract_flow_from_module",
    "flows_in_file",
    "flows_in_importable",
]


def extract_flow_from_file(
    file_path: str | os.PathLike[str] | None = None,
    file_contents: str | bytes | None = None,
    flow_name: str | None = None,
) -> Flow:
    """Execute a flow script in a fresh namespace and return the flow named ``flow_name``.

    With ``file_path`` the script sees its own ``__file__`` and its folder is importable.
    Without ``flow_name`` the first flow defined wins. ``if __name__ == "__main__":``
    blocks do not run, and ``flow.run()`` calls in the script are skipped.
    """
    if file_path is not None and file_contents is not None:
        raise ValueError("Provide either `file_path` or `file_contents` but not both.")
    if file_path is None and file_contents is None:
        raise ValueError("Provide either `file_path` or `file_contents`.")
    if file_contents is not None and not isinstance(file_contents, (str, bytes)):
        raise TypeError("`file_contents` must be string or bytes.")
    if file_path is not None:
        return _pick(flows_in_file(file_path), flow_name, f"file {os.path.abspath(file_path)}")
    assert file_contents is not None
    return run_flow_script(file_contents, None, flow_name)


def run_flow_script(source: str | bytes, file_path: str | None, flow_name: str | None) -> Flow:
    """Execute ``source`` (from ``file_path`` if known) and pick the flow by name."""
    where = f"file {file_path}" if file_path else "file"
    return _pick(flows_in_script(source, file_path), flow_name, where)


def flows_in_file(path: str | os.PathLike[str]) -> dict[str, Flow]:
    """Execute the flow script at ``path``; its top-level flows by name, in definition order."""
    file_path = os.path.abspath(os.fspath(path))
    try:
        with open(file_path, "rb") as file:
            source = file.read()
    except OSError as exc:
        # Named as the user gave it (the CLI's argument, or the API's `file_path`).
        raise FlowLoadError(f"Cannot read flow script {os.fspath(path)}: {exc.strerror}") from exc
    return flows_in_script(source, file_path)


def flows_in_script(source: str | bytes, file_path: str | None) -> dict[str, Flow]:
    """Execute a flow script; its top-level flows by name, in definition order."""
    label = file_path or "<flow script>"
    try:
        code = compile(source, label, "exec")
    except (SyntaxError, ValueError) as exc:
        where = f"{label}, line {exc.lineno}" if isinstance(exc, SyntaxError) else label
        raise FlowLoadError(f"The flow script has a syntax error ({where}): {exc}") from exc

    # Not "__main__", so main-guards stay asleep; not importable, so cloudpickle
    # pickles the script's functions by value.
    namespace: dict[str, object] = {"__name__": "__prefect_storage_flow__"}
    if file_path:
        namespace["__file__"] = file_path
        folder = os.path.dirname(file_path)
        if folder not in sys.path:
            sys.path.insert(0, folder)
    with context(loading_flow=True, local_script_path=file_path):
        try:
            exec(code, namespace)
        except (SystemExit, Exception) as exc:
            raise _load_error(f"The flow script {label}", exc) from exc
    return {value.name: value for value in namespace.values() if isinstance(value, Flow)}


def _load_error(what: str, exc: BaseException) -> FlowLoadError:
    """What a flow file did wrong while it was executed for its flows; a ``sys.exit()``
    would otherwise end the loading process silently."""
    if isinstance(exc, SystemExit):
        return FlowLoadError(
            f"{what} called sys.exit({exc.code!r}) while being loaded; a flow file must not "
            'exit at import (move that call under `if __name__ == "__main__":`).'
        )
    return FlowLoadError(f"{what} raised {type(exc).__name__} while loading: {exc}")


def import_flow_module(module_name: str, flow_name: str | None = None) -> object:
    """Import ``module_name`` for its flows; a failing import is a :class:`FlowLoadError`."""
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise FlowLoadError(
            f"Cannot import module {module_name!r} for flow {flow_name or module_name!r}: "
            f"{exc}. Make sure it is installed or on PYTHONPATH where the flow runs."
        ) from exc
    except (SystemExit, Exception) as exc:
        raise _load_error(f"The flow module {module_name!r}", exc) from exc


def flows_in_importable(module_name: str) -> dict[str, Flow]:
    """Import ``module_name`` as a flow file is loaded (its ``flow.run()`` calls skipped);
    the flows among its attributes, by name."""
    with context(loading_flow=True):
        module = import_flow_module(module_name)
    return flows_in_module(module)


def _pick(flows: dict[str, Flow], flow_name: str | None, where: str) -> Flow:
    if not flows:
        raise FlowLoadError(f"No flows found in {where}.")
    if flow_name is None:
        return next(iter(flows.values()))
    if flow_name not in flows:
        found = "\n".join(f"- {name!r}" for name in sorted(flows))
        raise FlowLoadError(f"Flow {flow_name!r} not found in {where}. Found flows:\n{found}")
    return flows[flow_name]


def extract_flow_from_module(module_str: str, flow_name: str | None = None) -> Flow:
    """Import ``"pkg.mod"`` or ``"pkg.mod:attr.path"`` and return its flow.

    A callable attribute is called with no arguments (flow factories). Without an
    attribute, the module's flows are searched by ``flow_name``.
    """
    module_name, _, attribute = module_str.partition(":")
    module = import_flow_module(module_name, flow_name or module_str)

    if attribute:
        try:
            found = attrgetter(attribute)(module)
        except AttributeError:
            raise FlowLoadError(f"Failed to find flow at {module_str!r}") from None
        if isinstance(found, Task):
            raise NotAFlowError(f"Object at {module_str!r} is a Task not a `Flow`")
        if callable(found) and not isinstance(found, Flow):
            try:
                found = found()
            except Exception as exc:  # a flow factory that fails, or needs arguments
                raise FlowLoadError(
                    f"Calling {module_str!r} to make the flow raised {type(exc).__name__}: {exc}"
                ) from exc
        if not isinstance(found, Flow):
            raise NotAFlowError(f"Object at {module_str!r} is a {type(found)} not a `Flow`")
        if flow_name is not None and found.name != flow_name:
            raise FlowLoadError(
                f"Flow at {module_str!r} is named {found.name!r}, expected {flow_name!r}"
            )
        return found

    flows = flows_in_module(module)
    if flow_name is None and len(flows) > 1:
        raise FlowLoadError(
            f"Multiple flows found in {module_str!r}, please provide `flow_name` to select one."
        )
    return _pick(flows, flow_name, repr(module_str))


def flows_in_module(module: object) -> dict[str, Flow]:
    """The flows among a module's attributes, by name."""
    flows = {}
    for name in dir(module):
        value = getattr(module, name)
        if isinstance(value, Flow):
            flows[value.name] = value
    return flows
