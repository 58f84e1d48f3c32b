"""A storage as a JSON payload: its ``type``, its flows, its secret names and the
constructor arguments it declares in ``serialized_fields``. ``type`` is resolved only
through the backend table, never by importing a dotted path from the payload."""

from __future__ import annotations

import inspect
import json
import sys
import types
import typing
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..exceptions import FlowStorageError, StorageConfigError, StorageTypeError
from . import BACKEND_PATHS, backend_class

if TYPE_CHECKING:
    from .base import Storage


def storage_to_dict(storage: Storage) -> dict[str, Any]:
    """The JSON-compatible payload of ``storage``: names of secrets, never their values."""
    kind = type(storage).__name__
    if kind not in BACKEND_PATHS or backend_class(kind) is not type(storage):
        raise StorageConfigError(
            f"Cannot serialize {kind}: only the storage classes in "
            "prefect_storage.storage.BACKENDS can be serialized."
        )
    payload: dict[str, Any] = {
        "type": kind,
        "__version__": __version__,
        "flows": dict(storage.flows),
        "secrets": list(storage.secrets),
    }
    for field in storage.serialized_fields:
        value = getattr(storage, field)
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise StorageConfigError(
                f"{kind}.{field} must be JSON compatible to be serialized; "
                f"got a {type(value).__name__}."
            ) from None
        payload[field] = value
    return payload


def storage_from_dict(payload: dict[str, Any]) -> Storage:
    """Rebuild a storage by calling its constructor; unknown keys are ignored."""
    if not isinstance(payload, dict):
        raise StorageConfigError(f"A storage payload must be a dict, got {type(payload).__name__}")
    kind = payload.get("type")
    if not isinstance(kind, str) or kind not in BACKEND_PATHS:
        raise StorageConfigError(
            f"Unknown storage type {kind!r} in payload; known types: "
            f"{', '.join(sorted(BACKEND_PATHS))}."
        )
    cls = backend_class(kind)
    flows = payload.get("flows", {})
    if not isinstance(flows, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in flows.items()
    ):
        raise StorageConfigError(
            f"{kind} payload field 'flows' must be a dict mapping flow names to str locations, "
            f"got {_describe(flows)}."
        )
    secrets = payload.get("secrets")
    if secrets is not None and (
        not isinstance(secrets, list) or not all(isinstance(s, str) for s in secrets)
    ):
        # A bare string would otherwise become a list of its characters.
        raise StorageConfigError(
            f"{kind} payload field 'secrets' must be a list of secret names (str), "
            f"got {_describe(secrets)}."
        )

    parameters = inspect.signature(cls.__init__).parameters
    kwargs = {f: payload[f] for f in cls.serialized_fields if f in payload}
    for name, parameter in parameters.items():
        if name in ("self", "args", "kwargs") or parameter.default is not inspect.Parameter.empty:
            continue
        if name not in kwargs:
            raise StorageConfigError(f"{kind} payload is missing the required field {name!r}.")
    for name, value in kwargs.items():
        if name in parameters:
            _check_field_type(cls, str(kind), name, value, parameters[name].annotation)
    try:
        storage = cls._from_payload(kwargs, secrets=list(secrets or []))
    except FlowStorageError:
        raise
    except (TypeError, ValueError) as exc:
        # A JSON value the constructor still refuses: typed, and still the built-in it was.
        error = StorageTypeError if isinstance(exc, TypeError) else StorageConfigError
        raise error(f"{kind} payload refused: {exc}") from exc
    storage.flows = dict(flows)
    return storage


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _check_field_type(
    cls: type[Storage], kind: str, name: str, value: Any, annotation: Any
) -> None:
    """Refuse a payload field whose JSON type does not fit the constructor's annotation."""
    if isinstance(annotation, str):
        module = sys.modules.get(cls.__init__.__module__)
        try:
            # Our own annotations (postponed strings), in their module: never user input.
            annotation = eval(annotation, vars(module) if module else {})
        except Exception:  # a name only imported for type checking: nothing to check
            return
    if annotation is inspect.Parameter.empty or _fits(value, annotation):
        return
    raise StorageConfigError(
        f"{kind} payload field {name!r} must be {_type_name(annotation)}, got {_describe(value)}."
    )


def _fits(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in typing.get_args(annotation))
    if annotation is None or annotation is type(None):
        return value is None
    if annotation is Any or origin is typing.Literal:
        return True
    kind = origin or annotation
    if not isinstance(kind, type):
        return True
    if kind is bool:
        return isinstance(value, bool)
    if kind in (int, float) and isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, (int, float))
    if kind in (list, tuple, set, frozenset):
        args = typing.get_args(annotation)
        return isinstance(value, (list, tuple)) and (
            not args or all(_fits(v, args[0]) for v in value)
        )
    if kind is dict:
        args = typing.get_args(annotation)
        return isinstance(value, dict) and (
            not args or all(_fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items())
        )
    if kind.__module__ not in ("builtins", "collections.abc"):
        return True  # a class of ours (a Result, ...): never a JSON value to check
    return isinstance(value, kind)


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if annotation is None or annotation is type(None):
        return "None"
    args = typing.get_args(annotation)
    name = getattr(origin or annotation, "__name__", str(annotation))
    if args:
        return f"{name} of {', '.join(_type_name(a) for a in args)}"
    return str(name)
