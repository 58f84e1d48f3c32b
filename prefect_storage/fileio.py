"""Local file writes that never leave a half-written file behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: int | None = None) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``path`` atomically (after an fsync) when the block ends.

    If the block raises, the temporary file is removed and ``path`` is left as it was.
    """
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix="-" + os.path.basename(path))
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    with atomic_write(path, mode) as file:
        file.write(data)


def open_flow_file(path: str, missing: str) -> IO[bytes]:
    """Open a stored flow file for reading; ``missing`` explains where it should have been."""
    from .exceptions import FlowNotFoundError

    try:
        return open(path, "rb")
    except (FileNotFoundError, NotADirectoryError):
        raise FlowNotFoundError(f"No flow file at {path!r}{missing}") from None


def read_flow_file(path: str, missing: str) -> bytes:
    """The bytes of a stored flow file; ``missing`` explains where it should have been."""
    with open_flow_file(path, missing) as file:
        return file.read()
