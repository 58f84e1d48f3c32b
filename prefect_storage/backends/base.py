"""The ``Storage`` contract, written once for every backend.

A backend says *where* a flow goes (``_location_for``) and how a flow comes back
(``_load_flow``). Backends that keep flows as bytes (an envelope in pickle mode, the
source in script mode) derive from :class:`BlobStorage` and only make their transport
(``_make_transport``), which moves the bytes; a backend that can stream a pickle
overrides ``_store_pickle``. Keys, envelopes, digests, script execution, name checks and
error wording live here.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any, ClassVar

from ..envelope import CHUNK_BYTES, read_flow_envelope, sha256_hex, write_flow_envelope
from ..exceptions import (
    CorruptFlowError,
    FlowLoadError,
    FlowNameConflictError,
    FlowNotFoundError,
    StorageConfigError,
)
from ..retry import DEFAULT_RETRY_POLICY, RetryPolicy
from .payload import storage_from_dict, storage_to_dict
from .transport import EMPTY, TransportT, UsesTransport

if TYPE_CHECKING:
    from ..engine.flow import Flow
    from .result import Result


class Storage(ABC):
    """Where flows are kept between registration and run time.

    ``flows`` maps each flow name to its location and is serialized; the flow objects
    themselves are kept in memory only until :meth:`build` stores them.
    """

    serialized_fields: ClassVar[tuple[str, ...]] = ()
    """Constructor arguments that ``serialize()`` records and ``deserialize()`` passes back."""

    runs_in_image: ClassVar[bool] = False
    """Whether the flows live inside an image, so only a Docker agent can run them."""

    _transient: ClassVar[tuple[str, ...]] = ("_flows", "flows", "digests")
    """Attributes left out when a storage is pickled along with a flow: clients, sibling
    flows, and where flows were put (so identical flows pickle to identical bytes)."""

    def __init__(
        self,
        result: Result | None = None,
        secrets: list[str] | None = None,
        labels: list[str] | None = None,
        add_default_labels: bool | None = None,
        stored_as_script: bool = False,
    ) -> None:
        self.secrets = _list_of_str(secrets, "secrets")
        self._labels = _list_of_str(labels, "labels")
        self.add_default_labels = True if add_default_labels is None else bool(add_default_labels)
        self.stored_as_script = bool(stored_as_script)
        self.result = result
        self.flows: dict[str, str] = {}
        self._flows: dict[str, Flow] = {}
        self.digests: dict[str, str | None] = {}
        """SHA-256 of what :meth:`build` stored, per flow name (for the flow registry)."""

    @classmethod
    def _from_payload(cls, fields: dict[str, Any], secrets: list[str]) -> Storage:
        """Construct from serialized fields (``Local`` overrides it to skip validation)."""
        return cls(**fields, secrets=secrets)

    # -- identity ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def logger(self) -> logging.Logger:
        return logging.getLogger(f"prefect_storage.storage.{type(self).__name__}")

    @property
    def default_labels(self) -> list[str]:
        return []

    @property
    def labels(self) -> list[str]:
        """The user's labels, plus ``default_labels`` unless ``add_default_labels=False``."""
        if not self.add_default_labels:
            return list(self._labels)
        return sorted(set(self._labels) | set(self.default_labels))

    def __repr__(self) -> str:
        return f"<Storage: {type(self).__name__}>"  # never a property that may raise

    def __contains__(self, obj: object) -> bool:
        return isinstance(obj, str) and obj in self.flows

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._transient}

    def __copy__(self) -> Storage:
        # Not via __getstate__, which is for pickles: a copy keeps its flows and clients.
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for name in self._transient:
            self.__dict__.setdefault(name, None)
        self._flows, self.flows, self.digests = {}, {}, {}

    # -- the user API --------------------------------------------------------------------
    def add_flow(self, flow: Flow) -> str:
        """Add ``flow`` and return its location; :meth:`build` stores it."""
        from ..engine.flow import Flow

        if not isinstance(flow, Flow):
            raise TypeError(f"`flow` must be a Flow, got {type(flow).__name__}")
        if flow.name in self.flows:
            raise FlowNameConflictError(
                f'Name conflict: Flow with the name "{flow.name}" is already present in '
                "this storage."
            )
        location = self._location_for(flow)
        if self._one_flow_per_location and location in self.flows.values():
            other = next(name for name, loc in self.flows.items() if loc == location)
            raise StorageConfigError(
                f"Flows {other!r} and {flow.name!r} would both be pickled to {location!r}, "
                "and the second would overwrite the first. Use a storage per flow, or drop "
                "the fixed key/path so each flow gets its own."
            )
        self.flows[flow.name] = location
        self._flows[flow.name] = flow
        return location

    def build(self) -> Storage:
        """Store every added flow; returns ``self``."""
        warn_missing_results(self._flows.values())
        previous = dict(self.digests)
        try:
            self._store_flows()
        except BaseException:
            self.digests = previous  # what a failed build stored was removed, or never counts
            raise
        return self

    def get_flow(self, flow_name: str, *, expected_sha256: str | None = None) -> Flow:
        """Load the flow named ``flow_name`` from where :meth:`build` stored it.

        With ``expected_sha256`` (the digest recorded at registration) a stored flow that
        changed since is refused before it is loaded.
        """
        if flow_name not in self.flows:
            known = ", ".join(repr(n) for n in sorted(self.flows)) or "none"
            raise FlowNotFoundError(
                f"Flow {flow_name!r} is not contained in this {type(self).__name__} storage "
                f"(flows: {known})."
            )
        flow = self._load_flow(flow_name, self.flows[flow_name], expected_sha256)
        if flow.name != flow_name:
            raise FlowLoadError(
                f"The flow stored at {self.flows[flow_name]!r} is named {flow.name!r}, "
                f"not {flow_name!r}; it was overwritten by another flow. Re-register it."
            )
        return flow

    def serialize(self) -> dict[str, Any]:
        """A JSON-compatible dict of this storage: secret names, never secret values."""
        return storage_to_dict(self)

    @staticmethod
    def deserialize(payload: dict[str, Any]) -> Storage:
        """Rebuild a storage from :meth:`serialize`'s payload."""
        return storage_from_dict(payload)

    # -- the backend hooks ---------------------------------------------------------------
    @property
    def _one_flow_per_location(self) -> bool:
        """Whether two flows at one location would overwrite each other."""
        return False

    @abstractmethod
    def _location_for(self, flow: Flow) -> str:
        """Where ``flow`` will live (a path, a key, a module, ...)."""

    @abstractmethod
    def _load_flow(self, flow_name: str, location: str, expected_sha256: str | None) -> Flow:
        """Load the flow stored at ``location``."""

    @abstractmethod
    def _store_flows(self, names: Iterable[str] | None = None) -> None:
        """Store the added flows (all of them, or only ``names``)."""

    def _stored_digest(self, location: str) -> str | None:
        """SHA-256 of what is stored at ``location`` now (None: nothing, or not bytes).

        Registration asks this before re-using an earlier upload of identical content.
        """
        return None


class BlobStorage(Storage, UsesTransport[TransportT]):
    """A storage that keeps each flow as bytes: an envelope, or the script's source."""

    local_script_path: str | None = None
    """A script to upload in script mode; without one the script must already be there."""

    retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY
    """Retries for this storage's transfers (set per instance to tune; not serialized)."""

    upload_options: Any = EMPTY
    """Backend-specific upload arguments (S3's ``ACL``, ...), passed to the transport."""

    overwrite: bool = True
    """Whether an upload may replace what is stored (Azure's ``overwrite``)."""

    _script_path_argument: ClassVar[str] = "local_script_path"
    """The constructor argument that sets ``local_script_path`` (named in errors)."""

    @property
    def client(self) -> Any:
        """The backend's SDK client, made on first use (and never pickled)."""
        return self.transport.client

    def _put(self, location: str, data: bytes) -> None:
        """Store ``data`` at ``location``, replacing what is there (unless not ``overwrite``)."""
        self.transport.put(
            location,
            data,
            retry=self.retry_policy,
            overwrite=self.overwrite,
            options=self.upload_options,
        )

    def _delete(self, location: str) -> None:
        """Remove what a failed build stored (best effort)."""
        self.transport.delete(location, retry=self.retry_policy, best_effort=True)

    @property
    def _one_flow_per_location(self) -> bool:
        # A script holds many flows; a pickle holds exactly one.
        return not self.stored_as_script

    def _script_file(self, location: str) -> str | None:
        """A local path for ``location`` when the script is a file here (sets ``__file__``)."""
        return None

    def _script_bytes(self) -> bytes | None:
        """The script to upload in script mode (None: it is already in place)."""
        if self.local_script_path is None:
            return None
        try:
            with open(self.local_script_path, "rb") as file:
                return file.read()
        except OSError as exc:
            raise StorageConfigError(
                f"Cannot read the flow script {self.local_script_path!r} "
                f"(`{self._script_path_argument}`): {exc.strerror}"
            ) from None

    def _store_flows(self, names: Iterable[str] | None = None) -> None:
        stored: dict[str, str | None] = {}  # location -> digest, once per location
        try:
            for name in self._flows if names is None else names:
                flow, location = self._flows[name], self.flows[name]
                if location not in stored:
                    stored[location] = self._store_one(name, flow, location)
                self.digests[name] = stored[location]
        except BaseException:
            for location in stored:
                self._delete(location)
            raise

    def _store_one(self, name: str, flow: Flow, location: str) -> str | None:
        """Store one flow (or one script shared by several); return the stored digest."""
        if not self.stored_as_script:
            return self._store_pickle(name, flow, location)
        data = self._script_bytes()
        if data is None:
            # The script is already in place: record what is there.
            return self._digest_of(location)
        self._upload(name, location, data)
        return sha256_hex(data)

    def _store_pickle(self, name: str, flow: Flow, location: str) -> str:
        """Pickle ``flow`` into an envelope at ``location``; return the envelope's digest.

        The envelope is written to a temporary file and uploaded as one ``bytes``: the
        only copy of the pickle in memory (no base64, no joined header and body).
        """
        with tempfile.TemporaryFile(prefix=".prefect-storage-envelope-") as file:
            digest = write_flow_envelope(flow, file)
            file.seek(0)
            data = file.read()
        self._upload(name, location, data)
        return digest

    def _upload(self, name: str, location: str, data: bytes) -> None:
        self.logger.info("Uploading flow %r to %s", name, self.transport.url(location))
        self._put(location, data)

    def _fetch(self, location: str) -> bytes:
        self.logger.info("Downloading flow from %s", self.transport.url(location))
        return self.transport.get(location, retry=self.retry_policy)

    def _open(self, location: str) -> IO[bytes]:
        """What is stored at ``location`` as a binary file (streamed where the backend can)."""
        self.logger.info("Downloading flow from %s", self.transport.url(location))
        return self.transport.open(location, retry=self.retry_policy)

    def _stored_digest(self, location: str) -> str | None:
        try:
            with self._open(location) as file:
                hasher = hashlib.sha256()
                while chunk := file.read(CHUNK_BYTES):
                    hasher.update(chunk)
        except FlowNotFoundError:
            return None
        return hasher.hexdigest()

    def _digest_of(self, location: str) -> str | None:
        """Digest of a script already in place (which must exist by build time)."""
        return sha256_hex(self._fetch(location))

    def _load_flow(self, flow_name: str, location: str, expected_sha256: str | None) -> Flow:
        if self.stored_as_script:
            return self._load_script(flow_name, location, expected_sha256)
        with self._open(location) as file:
            # The header names the flow: another flow at this location is refused unread.
            return read_flow_envelope(file, expected_sha256, flow_name=flow_name, source=location)

    def _load_script(self, flow_name: str, location: str, expected_sha256: str | None) -> Flow:
        from ..loading import run_flow_script

        data = self._fetch(location)
        if expected_sha256 is not None and sha256_hex(data) != expected_sha256.lower():
            raise CorruptFlowError(
                f"Digest mismatch for flow {flow_name!r} at {location!r}: registered sha256 "
                f"{expected_sha256}, stored {sha256_hex(data)}. The stored flow changed "
                "after registration; re-register it."
            )
        return run_flow_script(data, self._script_file(location), flow_name)


def _list_of_str(value: list[str] | None, argument: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple, set)) or not all(isinstance(i, str) for i in value):
        raise TypeError(f"`{argument}` must be a list of str, got {value!r}")
    return list(value)


def warn_missing_results(flows: Any) -> None:
    """Warn (never fail) when retried tasks cannot re-read their upstream results."""
    for flow in flows:
        if flow.result is not None:
            continue
        for edge in flow.edges:
            task = edge.downstream
            if edge.key is not None and task.max_retries > 0 and edge.upstream.result is None:
                warnings.warn(
                    f"Task {task.name!r} has retry settings but some upstream dependencies "
                    "do not have result types.",
                    UserWarning,
                    stacklevel=3,
                )
                break
