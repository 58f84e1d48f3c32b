"""How flows and storages become bytes and dicts, and come back.

* The **pickle envelope**: JSON naming its format, the flow, the Python/cloudpickle/
  prefect-storage versions and the SHA-256 of the pickled bytes. Every check runs
  *before* anything is unpickled.
* The **storage payload**: a JSON-compatible dict with ``type`` (the class name, resolved
  back only through :data:`prefect_storage.storage.BACKENDS`), ``__version__``, ``flows``,
  ``secrets`` and the fields each backend declares in ``serialized_fields``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import inspect
import json
import platform
import warnings
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .config import env_flag
from .exceptions import (
    CorruptFlowError,
    FlowDeserializationError,
    FlowVersionWarning,
    StorageConfigError,
)

if TYPE_CHECKING:
    from .engine.flow import Flow
    from .storage.base import Storage

__all__ = [
    "ENVELOPE_FORMAT",
    "flow_from_bytes_pickle",
    "flow_to_bytes_pickle",
    "sha256_hex",
    "storage_from_dict",
    "storage_to_dict",
]

ENVELOPE_FORMAT = "prefect-storage/flow-pickle/1"
"""The ``format`` field of every envelope this version writes (and the only one it reads)."""

STRICT_VERSIONS_ENV = "PREFECT_STORAGE_STRICT_VERSIONS"
"""When true, a Python/cloudpickle version mismatch refuses to unpickle instead of warning."""

PICKLE_PROTOCOL = 4


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _runtime_versions() -> dict[str, str]:
    import cloudpickle

    return {
        "python": platform.python_version(),
        "cloudpickle": cloudpickle.__version__,
        "prefect_storage": __version__,
    }


def flow_to_bytes_pickle(flow: Flow) -> bytes:
    """Pickle ``flow`` with cloudpickle into a self-describing, checksummed envelope."""
    import cloudpickle

    pickled = cloudpickle.dumps(flow, protocol=PICKLE_PROTOCOL)
    envelope = {
        "format": ENVELOPE_FORMAT,
        "flow_name": flow.name,
        "versions": _runtime_versions(),
        "sha256": sha256_hex(pickled),
        "flow": base64.b64encode(pickled).decode(),
    }
    return json.dumps(envelope).encode()


def flow_from_bytes_pickle(
    data: bytes,
    expected_sha256: str | None = None,
    *,
    strict: bool | None = None,
) -> Flow:
    """Check an envelope and unpickle its flow.

    Before unpickling: the format, the digest (``expected_sha256`` may be the SHA-256
    of ``data`` as stored, or of the pickled flow), and the versions it was written
    with. A version mismatch is a :class:`FlowVersionWarning`, or an error when
    ``strict`` (default: the ``PREFECT_STORAGE_STRICT_VERSIONS`` setting).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"`data` must be bytes, got {type(data).__name__}")
    data = bytes(data)
    envelope = _parse_envelope(data)
    pickled = _decode_payload(envelope)
    if expected_sha256 is not None and expected_sha256.lower() not in (
        sha256_hex(data),
        envelope["sha256"],
    ):
        raise CorruptFlowError(
            f"Digest mismatch for flow {envelope['flow_name']!r}: expected sha256 "
            f"{expected_sha256}, stored payload has {sha256_hex(data)}. The stored flow "
            "changed after it was registered; re-register it."
        )

    mismatches = _version_mismatches(envelope["versions"])
    if strict is None:
        strict = env_flag(STRICT_VERSIONS_ENV, False)
    if mismatches and strict:
        raise FlowDeserializationError(
            "Refusing to unpickle flow "
            f"{envelope['flow_name']!r}: it was built under other versions "
            f"({STRICT_VERSIONS_ENV} is set):\n" + "\n".join(mismatches)
        )
    if mismatches:
        warnings.warn(
            f"Flow {envelope['flow_name']!r} was built under other versions than this "
            "environment; loading may fail or behave differently:\n" + "\n".join(mismatches),
            FlowVersionWarning,
            stacklevel=2,
        )
    return _unpickle(pickled, mismatches, envelope["flow_name"])


def _parse_envelope(data: bytes) -> dict[str, Any]:
    try:
        envelope = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        if data[:1] == b"\x80":
            raise CorruptFlowError(
                "The stored flow is a bare pickle without a prefect-storage envelope, so it "
                "cannot be checked before unpickling; re-register the flow."
            ) from None
        raise CorruptFlowError(
            f"The stored flow is corrupted or truncated ({len(data)} bytes are not a "
            "valid envelope); re-register the flow."
        ) from None
    if not isinstance(envelope, dict):
        raise CorruptFlowError("The stored flow is corrupted: the envelope is not an object.")
    if envelope.get("format") != ENVELOPE_FORMAT:
        if "flow" in envelope and "prefect" in envelope.get("versions", {}):
            raise FlowDeserializationError(
                "This is a Prefect 1 flow pickle; it needs Prefect 1 to load. Re-register "
                "the flow with prefect-storage."
            )
        raise CorruptFlowError(
            f"Unknown flow envelope format {envelope.get('format')!r}; this version of "
            f"prefect-storage ({__version__}) reads {ENVELOPE_FORMAT!r}."
        )
    for field, kind in (("flow_name", str), ("versions", dict), ("sha256", str), ("flow", str)):
        if not isinstance(envelope.get(field), kind):
            raise CorruptFlowError(
                f"The stored flow is corrupted: envelope field {field!r} is missing or invalid."
            )
    return envelope


def _decode_payload(envelope: dict[str, Any]) -> bytes:
    try:
        pickled = base64.b64decode(envelope["flow"], validate=True)
    except (binascii.Error, ValueError):
        pickled = None
    # Re-encoding catches flips in base64 padding bits, which decode to the same bytes.
    if (
        pickled is None
        or base64.b64encode(pickled).decode() != envelope["flow"]
        or sha256_hex(pickled) != envelope["sha256"]
    ):
        raise CorruptFlowError(
            f"The stored flow {envelope['flow_name']!r} failed its SHA-256 check (recorded "
            f"{envelope['sha256']}); it is corrupted or was modified and was not unpickled; "
            "re-register the flow."
        )
    return pickled


def _version_mismatches(built: dict[str, Any]) -> list[str]:
    running = _runtime_versions()
    lines = []
    for name in sorted(running):
        built_version = built.get(name)
        if name == "python" and isinstance(built_version, str):
            # Pickles move between patch releases; only major.minor matters.
            same = built_version.split(".")[:2] == running[name].split(".")[:2]
        else:
            same = built_version == running[name]
        if not same:
            lines.append(
                f"  - {name}: (flow built with {built_version!r}, "
                f"currently running with {running[name]!r})"
            )
    return lines


def _unpickle(pickled: bytes, mismatches: list[str], flow_name: str) -> Flow:
    import cloudpickle

    from .engine.flow import Flow

    try:
        flow = cloudpickle.loads(pickled)
    except Exception as exc:
        lines = [f"An error occurred while unpickling the flow {flow_name!r}:", f"  {exc!r}"]
        if mismatches:
            lines.append(
                "This may be due to one of the following version mismatches between the "
                "flow build and execution environments:"
            )
            lines.extend(mismatches)
        if isinstance(exc, ImportError):
            lines.append(
                f"This {'also may' if mismatches else 'may'} be due to a missing Python "
                "module in your current environment. Please ensure you have all required "
                "flow dependencies installed."
            )
        raise FlowDeserializationError("\n".join(lines)) from exc
    if not isinstance(flow, Flow):
        raise CorruptFlowError(f"The stored object is a {type(flow).__name__}, not a Flow.")
    return flow


# -- storage <-> dict ---------------------------------------------------------------------
def storage_to_dict(storage: Storage) -> dict[str, Any]:
    """The JSON-compatible payload of ``storage``: names of secrets, never their values."""
    kind = type(storage).__name__
    from .storage import BACKENDS

    if BACKENDS.get(kind) is not type(storage):
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
    from .storage import BACKENDS

    if not isinstance(payload, dict):
        raise StorageConfigError(f"A storage payload must be a dict, got {type(payload).__name__}")
    kind = payload.get("type")
    cls = BACKENDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise StorageConfigError(
            f"Unknown storage type {kind!r} in payload; known types: {', '.join(sorted(BACKENDS))}."
        )
    flows = payload.get("flows", {})
    if not isinstance(flows, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in flows.items()
    ):
        raise StorageConfigError(f"{kind} payload field 'flows' must map flow names to strings.")

    parameters = inspect.signature(cls.__init__).parameters
    kwargs = {f: payload[f] for f in cls.serialized_fields if f in payload}
    for name, parameter in parameters.items():
        if name in ("self", "args", "kwargs") or parameter.default is not inspect.Parameter.empty:
            continue
        if name not in kwargs:
            raise StorageConfigError(f"{kind} payload is missing the required field {name!r}.")
    secrets = payload.get("secrets")
    storage = cls._from_payload(kwargs, secrets=list(secrets or []))
    storage.flows = dict(flows)
    return storage
