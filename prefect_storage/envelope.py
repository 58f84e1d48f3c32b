"""How a flow becomes bytes and comes back: the pickle envelope.

The **pickle envelope** (format 2): a magic line carrying the SHA-256 of the header, one
  JSON header line (format, flow name, Python/cloudpickle/prefect-storage versions, SHA-256
  and length of the pickle), then the raw cloudpickle bytes::

      prefect-storage-flow/2 <sha256 of the header line>\n
      {"flow_name": ..., "format": ..., "length": ..., "sha256": ..., "versions": ...}\n
      <length bytes of pickle>

  Every check (header digest, format, flow name, body digest and length, versions) runs
  *before* anything is unpickled. Format 1 (JSON with the pickle in base64) is still read.
  :func:`write_flow_envelope` and :func:`read_flow_envelope` stream through files, so a
  large flow is never held as several copies.

It imports no backend: a storage's own payload is :mod:`prefect_storage.backends.payload`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import platform
import tempfile
import typing
import warnings
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from ._version import __version__
from .config import env_flag
from .exceptions import (
    CorruptFlowError,
    FlowDeserializationError,
    FlowLoadError,
    FlowVersionWarning,
)

if TYPE_CHECKING:
    from .engine.flow import Flow

__all__ = [
    "ENVELOPE_FORMAT",
    "ENVELOPE_FORMAT_V1",
    "flow_from_bytes_pickle",
    "flow_to_bytes_pickle",
    "read_flow_envelope",
    "sha256_hex",
    "write_flow_envelope",
]

ENVELOPE_FORMAT = "prefect-storage/flow-pickle/2"
"""The ``format`` field of every envelope this version writes."""

ENVELOPE_FORMAT_V1 = "prefect-storage/flow-pickle/1"
"""The JSON + base64 envelope of earlier versions: still read, never written."""

ENVELOPE_MAGIC = b"prefect-storage-flow/2 "
"""How a format 2 envelope starts; the SHA-256 (hex) of its header line follows."""

MAX_HEADER_BYTES = 1 << 20
"""A longer header line is corruption (flow names and versions are short)."""

CHUNK_BYTES = 1 << 20
"""Bytes hashed or copied at a time when streaming an envelope."""

STRICT_VERSIONS_ENV = "PREFECT_STORAGE_STRICT_VERSIONS"
"""When true, a Python/cloudpickle version mismatch refuses to unpickle instead of warning."""

PICKLE_PROTOCOL = 4

_MAGIC_LINE_BYTES = len(ENVELOPE_MAGIC) + 64 + 1


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _runtime_versions() -> dict[str, str]:
    import cloudpickle

    return {
        "python": platform.python_version(),
        "cloudpickle": cloudpickle.__version__,
        "prefect_storage": __version__,
    }


# -- writing --------------------------------------------------------------------------------
class _HashingWriter:
    """A write-only file that hashes and counts what passes through it to ``file``."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.hasher = hashlib.sha256()
        self.length = 0

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        self.length += len(data)
        self.file.write(data)
        return len(data)


def _header_lines(flow_name: str, sha256: str, length: int) -> bytes:
    header = {
        "format": ENVELOPE_FORMAT,
        "flow_name": flow_name,
        "versions": _runtime_versions(),
        "sha256": sha256,
        "length": length,
    }
    # Sorted keys, no spaces: identical flows give identical envelopes.
    line = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return ENVELOPE_MAGIC + sha256_hex(line).encode() + b"\n" + line + b"\n"


def write_flow_envelope(flow: Flow, file: IO[bytes], *, tmp_dir: str | None = None) -> str:
    """Pickle ``flow`` into an envelope written to ``file``; return the envelope's SHA-256.

    The pickle streams through a hashing writer into a temporary file (in ``tmp_dir``,
    default the system's), then header and body are copied to ``file`` in chunks: the
    flow is never held in memory as bytes.
    """
    import cloudpickle

    with tempfile.TemporaryFile(prefix=".prefect-storage-pickle-", dir=tmp_dir) as body:
        writer = _HashingWriter(body)
        cloudpickle.dump(flow, writer, protocol=PICKLE_PROTOCOL)
        head = _header_lines(flow.name, writer.hasher.hexdigest(), writer.length)
        whole = hashlib.sha256(head)
        file.write(head)
        body.seek(0)
        for chunk in _chunks(body, writer.length):
            whole.update(chunk)
            file.write(chunk)
    return whole.hexdigest()


def flow_to_bytes_pickle(flow: Flow) -> bytes:
    """Pickle ``flow`` with cloudpickle into a self-describing, checksummed envelope."""
    with tempfile.TemporaryFile(prefix=".prefect-storage-envelope-") as file:
        write_flow_envelope(flow, file)
        file.seek(0)
        return file.read()


def _chunks(file: IO[bytes], length: int) -> typing.Iterator[memoryview]:
    """Up to ``length`` bytes of ``file``, as views of one reused buffer."""
    buffer = bytearray(min(CHUNK_BYTES, max(length, 1)))
    view = memoryview(buffer)
    left = length
    while left > 0:
        got = file.readinto(view[: min(left, len(buffer))])  # type: ignore[attr-defined]
        if not got:
            return
        left -= got
        yield view[:got]


# -- reading --------------------------------------------------------------------------------
@dataclass
class _Header:
    """A checked envelope header: what it says, and where its pickle is."""

    format: str
    flow_name: str
    versions: dict[str, Any]
    sha256: str
    length: int
    head: bytes = b""
    """The magic and header lines as stored (format 2); for the whole envelope's digest."""
    pickled: bytes | None = None
    """Format 1 only: the decoded pickle (checked against ``sha256``)."""


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
    # A BytesIO over bytes shares their buffer: reading it copies nothing.
    return read_flow_envelope(io.BytesIO(data), expected_sha256, strict=strict, _stacklevel=3)


def read_flow_envelope(
    file: IO[bytes],
    expected_sha256: str | None = None,
    *,
    flow_name: str | None = None,
    source: str | None = None,
    strict: bool | None = None,
    _stacklevel: int = 2,
) -> Flow:
    """Check the envelope read from ``file`` (binary, seekable) and unpickle its flow.

    The checks of :func:`flow_from_bytes_pickle`, and with ``flow_name`` the name the
    header records, all before unpickling; the body is hashed in chunks, then unpickled
    straight from ``file``. ``source`` (where the envelope came from) is named in errors.
    """
    expected = expected_sha256.lower() if expected_sha256 is not None else None
    start = file.tell()
    try:
        header = _read_header(file)
    except CorruptFlowError:
        if expected is not None:
            # Against a registered digest, say that the stored flow changed since.
            file.seek(start)
            whole = hashlib.sha256()
            while chunk := file.read(CHUNK_BYTES):
                whole.update(chunk)
            _check_expected(expected, whole.hexdigest(), None, flow_name, source)
        raise
    if flow_name is not None and header.flow_name != flow_name:
        where = f"at {source!r} " if source else ""
        raise FlowLoadError(
            f"The flow stored {where}is named {header.flow_name!r}, not {flow_name!r}; it was "
            "overwritten by another flow. Re-register it."
        )
    body_start = file.tell()
    _check_body(file, header, expected, source)
    mismatches = _check_versions(header, strict, _stacklevel + 1)
    if header.pickled is not None:
        return _unpickle(io.BytesIO(header.pickled), mismatches, header.flow_name)
    file.seek(body_start)
    return _unpickle(file, mismatches, header.flow_name)


def _read_header(file: IO[bytes]) -> _Header:
    first = file.read(1)
    file.seek(-len(first), io.SEEK_CUR)
    if first == b"{":
        return _v1_header(file.read())
    magic = file.readline(_MAGIC_LINE_BYTES)
    line = file.readline(MAX_HEADER_BYTES)
    if not magic.startswith(ENVELOPE_MAGIC):
        if first == b"\x80":
            raise CorruptFlowError(
                "The stored flow is a bare pickle without a prefect-storage envelope, so it "
                "cannot be checked before unpickling; re-register the flow."
            )
        raise CorruptFlowError(
            "The stored flow is corrupted or truncated (it does not start like a "
            "prefect-storage envelope); re-register the flow."
        )
    recorded = magic[len(ENVELOPE_MAGIC) :].strip()
    if not magic.endswith(b"\n") or not line.endswith(b"\n"):
        raise CorruptFlowError(
            "The stored flow is corrupted or truncated (it ends inside its envelope header); "
            "re-register the flow."
        )
    if len(magic) != _MAGIC_LINE_BYTES or sha256_hex(line[:-1]).encode() != recorded:
        raise CorruptFlowError(
            "The stored flow's envelope header is corrupted or truncated (it failed its "
            "SHA-256 check); it was not unpickled; re-register the flow."
        )
    try:
        fields = json.loads(line)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        raise CorruptFlowError("The stored flow is corrupted: the envelope header is not JSON.")
    if fields.get("format") != ENVELOPE_FORMAT:
        raise CorruptFlowError(
            f"Unknown flow envelope format {fields.get('format')!r}; this version of "
            f"prefect-storage ({__version__}) reads {ENVELOPE_FORMAT!r} and "
            f"{ENVELOPE_FORMAT_V1!r}."
        )
    _check_fields(fields, ("flow_name", str), ("versions", dict), ("sha256", str), ("length", int))
    return _Header(
        format=ENVELOPE_FORMAT,
        flow_name=fields["flow_name"],
        versions=fields["versions"],
        sha256=fields["sha256"],
        length=fields["length"],
        head=magic + line,
    )


def _check_fields(fields: dict[str, Any], *expected: tuple[str, type]) -> None:
    for field, kind in expected:
        value = fields.get(field)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CorruptFlowError(
                f"The stored flow is corrupted: envelope field {field!r} is missing or invalid."
            )


def _v1_header(data: bytes) -> _Header:
    """A format 1 envelope (JSON, the pickle in base64), checked and decoded."""
    try:
        envelope = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CorruptFlowError(
            f"The stored flow is corrupted or truncated ({len(data)} bytes are not a "
            "valid envelope); re-register the flow."
        ) from None
    if not isinstance(envelope, dict):
        raise CorruptFlowError("The stored flow is corrupted: the envelope is not an object.")
    if envelope.get("format") != ENVELOPE_FORMAT_V1:
        if "flow" in envelope and "prefect" in envelope.get("versions", {}):
            raise FlowDeserializationError(
                "This is a Prefect 1 flow pickle; it needs Prefect 1 to load. Re-register "
                "the flow with prefect-storage."
            )
        raise CorruptFlowError(
            f"Unknown flow envelope format {envelope.get('format')!r}; this version of "
            f"prefect-storage ({__version__}) reads {ENVELOPE_FORMAT!r} and "
            f"{ENVELOPE_FORMAT_V1!r}."
        )
    _check_fields(envelope, ("flow_name", str), ("versions", dict), ("sha256", str), ("flow", str))
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
    return _Header(
        format=ENVELOPE_FORMAT_V1,
        flow_name=envelope["flow_name"],
        versions=envelope["versions"],
        sha256=envelope["sha256"],
        length=len(pickled),
        head=data,  # the whole envelope: its digest is the stored bytes' digest
        pickled=pickled,
    )


def _check_body(file: IO[bytes], header: _Header, expected: str | None, source: str | None) -> None:
    """Hash the body in chunks: against the expected digest if any, then its own."""
    whole = hashlib.sha256(header.head)
    if header.pickled is not None:  # format 1: checked when its header was read
        _check_expected(expected, whole.hexdigest(), header.sha256, header.flow_name, source)
        return
    body = hashlib.sha256()
    # The whole envelope is hashed only when the expected digest is not the pickle's.
    track_whole = expected is not None and expected != header.sha256
    read = 0
    for chunk in _chunks(file, header.length):
        body.update(chunk)
        if track_whole:
            whole.update(chunk)
        read += len(chunk)
    trailing = False
    while rest := file.read(CHUNK_BYTES):
        trailing = True
        whole.update(rest)
    if track_whole:
        _check_expected(expected, whole.hexdigest(), None, header.flow_name, source)
    if read < header.length:
        raise CorruptFlowError(
            f"The stored flow {header.flow_name!r} is truncated ({read} of {header.length} "
            "pickle bytes are there); it was not unpickled; re-register the flow."
        )
    if trailing or body.hexdigest() != header.sha256:
        raise CorruptFlowError(
            f"The stored flow {header.flow_name!r} failed its SHA-256 check (recorded "
            f"{header.sha256}); it is corrupted or was modified and was not unpickled; "
            "re-register the flow."
        )


def _check_expected(
    expected: str | None,
    whole: str,
    pickled: str | None,
    flow_name: str | None,
    source: str | None,
) -> None:
    """Refuse unless ``expected`` is the stored bytes' digest (or the pickle's)."""
    if expected is None or expected in (whole, pickled):
        return
    flow = f"flow {flow_name!r}" if flow_name else "the flow"
    where = f" at {source!r}" if source else ""
    raise CorruptFlowError(
        f"Digest mismatch for {flow}{where}: registered sha256 {expected}, stored {whole}. "
        "The stored flow changed after it was registered; re-register it."
    )


def _check_versions(header: _Header, strict: bool | None, stacklevel: int) -> list[str]:
    mismatches = _version_mismatches(header.versions)
    if strict is None:
        strict = env_flag(STRICT_VERSIONS_ENV, False)
    if mismatches and strict:
        raise FlowDeserializationError(
            "Refusing to unpickle flow "
            f"{header.flow_name!r}: it was built under other versions "
            f"({STRICT_VERSIONS_ENV} is set):\n" + "\n".join(mismatches)
        )
    if mismatches:
        warnings.warn(
            f"Flow {header.flow_name!r} was built under other versions than this "
            "environment; loading may fail or behave differently:\n" + "\n".join(mismatches),
            FlowVersionWarning,
            stacklevel=stacklevel + 1,
        )
    return mismatches


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


def _unpickle(file: IO[bytes], mismatches: list[str], flow_name: str) -> Flow:
    import cloudpickle

    from .engine.flow import Flow

    try:
        flow = cloudpickle.load(file)
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
