"""Files on this machine: the transport ``Local`` and ``LocalResult`` share.

Locations are paths. Writes go through a temporary sibling and an atomic rename, so a
failed write leaves nothing a later load could pick up.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

from ...exceptions import LocalFileError
from ...fileio import atomic_write, open_flow_file
from ..transport import Transport


class LocalFiles(Transport):
    """Bytes in files at paths on this host (no client, nothing to reach)."""

    service = "the local disk"

    def _make_client(self) -> None:
        return None

    @contextmanager
    def writing(self, path: str, noun: str = "file") -> Iterator[IO[bytes]]:
        """A file that replaces ``path`` atomically when the block ends without error."""
        try:
            with atomic_write(path) as file:
                yield file
        except OSError as exc:
            raise LocalFileError(
                f"Cannot write {noun} {path!r}: {exc.strerror}; check that the directory is "
                "writable and the disk has space."
            ) from exc

    def _put(
        self, location: str, data: bytes, *, overwrite: bool, options: Mapping[str, Any]
    ) -> None:
        with self.writing(location) as file:
            file.write(data)

    def _open(self, location: str) -> IO[bytes]:
        return open_flow_file(
            location,
            f" on host {socket.gethostname()!r}. Local storage is only readable on the machine "
            "that registered the flow; run it with an agent carrying that host's label.",
        )

    def _get(self, location: str) -> bytes:
        with self._open(location) as file:
            return file.read()

    def _exists(self, location: str) -> bool:
        return os.path.exists(location)

    def _delete(self, location: str) -> None:
        if os.path.isfile(location):
            os.unlink(location)

    def _list(self, prefix: str) -> list[str]:
        return [
            os.path.join(folder, name)
            for folder, _, names in os.walk(prefix or ".")
            for name in names
            if not name.startswith(".tmp-")
        ]
