"""``Local``: flows as files on this machine (pickle envelopes, or scripts in place)."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ...config import home_dir
from ...envelope import write_flow_envelope
from ...exceptions import StorageConfigError
from ...keys import timestamp_key
from ..base import BlobStorage, Storage
from .result import LocalResult
from .transport import LocalFiles

if TYPE_CHECKING:
    from ...engine.flow import Flow

_DOTTED_NAME = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*(:[\w.]+)?$")


class Local(BlobStorage[LocalFiles]):
    """Store flows under ``directory`` (default ``<home>/flows``) on this host.

    Pickle mode writes ``<directory>/<flow slug>/<timestamp>`` (or ``path``) when the flow
    is added. Script mode runs the file at ``path`` (or imports ``path`` when it is a
    dotted module name). The host name is a default label, so only agents on this
    machine pick the flow up.
    """

    serialized_fields = ("directory", "path", "stored_as_script")

    def __init__(
        self,
        directory: str | None = None,
        validate: bool = True,
        path: str | None = None,
        stored_as_script: bool = False,
        **kwargs: Any,
    ) -> None:
        directory = os.fspath(directory) if directory else str(home_dir() / "flows")
        if validate:
            directory = os.path.abspath(os.path.expanduser(directory))
            _make_directory(directory)
        self.directory = directory
        if path is not None:
            path = os.fspath(path)
            if validate and not (stored_as_script and _is_module_path(path)):
                # Recorded absolute, so the serialized storage does not depend on a cwd.
                path = os.path.abspath(os.path.expanduser(path))
        self.path = path
        self.validate = validate
        self._transport = LocalFiles()
        if kwargs.get("result") is None:
            kwargs["result"] = LocalResult(
                directory, validate_dir=validate, transport=self._transport
            )
        super().__init__(stored_as_script=stored_as_script, **kwargs)

    @classmethod
    def _from_payload(cls, fields: dict[str, Any], secrets: list[str]) -> Storage:
        # Paths may come from another OS; do not touch this machine's filesystem.
        return cls(**fields, secrets=secrets, validate=False)

    @property
    def default_labels(self) -> list[str]:
        return [socket.gethostname()] if self.add_default_labels else []

    def add_flow(self, flow: Flow) -> str:
        location = super().add_flow(flow)
        if not self.stored_as_script:
            # Written now, as Prefect 1 did, so get_flow works before build().
            try:
                self._store_flows([flow.name])
            except BaseException:
                del self.flows[flow.name], self._flows[flow.name]
                raise
        return location

    def _store_flows(self, names: Iterable[str] | None = None) -> None:
        # Pickles were written by add_flow; build() only writes what is not stored yet.
        pending = [n for n in (self._flows if names is None else names) if n not in self.digests]
        super()._store_flows(pending)

    def _location_for(self, flow: Flow) -> str:
        if self.stored_as_script:
            if not self.path:
                raise StorageConfigError(
                    "A `path` must be provided to show where flow `.py` file is stored."
                )
            return self.path
        return self.path or os.path.join(self.directory, timestamp_key(flow.name))

    def _make_transport(self) -> LocalFiles:
        return LocalFiles()

    def _store_pickle(self, name: str, flow: Flow, location: str) -> str:
        # Streamed into the file's own temporary sibling: no copy of the pickle in memory.
        self.logger.info("Writing flow %r to %s", name, location)
        with self.transport.writing(location, noun="flow file") as file:
            return write_flow_envelope(flow, file, tmp_dir=os.path.dirname(location))

    def _delete(self, location: str) -> None:
        if not self.stored_as_script:  # a script is the user's own file
            super()._delete(location)

    def _script_file(self, location: str) -> str | None:
        return location

    def _load_flow(self, flow_name: str, location: str, expected_sha256: str | None) -> Flow:
        if self.stored_as_script and _is_module_path(location):
            from ...loading import extract_flow_from_module

            return extract_flow_from_module(location, flow_name=flow_name)
        return super()._load_flow(flow_name, location, expected_sha256)


def _make_directory(directory: str) -> None:
    try:
        os.makedirs(directory, exist_ok=True)
    except FileExistsError:
        raise StorageConfigError(
            f"Local `directory` {directory!r} is a file, not a directory; pass a directory "
            "for the flow files (it is created if missing)."
        ) from None
    except OSError as exc:
        raise StorageConfigError(
            f"Cannot create Local `directory` {directory!r}: {exc.strerror}; pass a directory "
            "this user can write."
        ) from None


def _is_module_path(location: str) -> bool:
    """A dotted import path (``pkg.flows`` or ``pkg.flows:attr``) rather than a file."""
    return (
        not location.endswith(".py")
        and not os.path.exists(location)
        and _DOTTED_NAME.match(location) is not None
    )
