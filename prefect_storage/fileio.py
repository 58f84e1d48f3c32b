"""Local file writes that never leave a half-written file behind."""

from __future__ import annotations

import os
import tempfile


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix="-" + os.path.basename(path))
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_flow_file(path: str, missing: str) -> bytes:
    """The bytes of a stored flow file; ``missing`` explains where it should have been."""
    from .exceptions import FlowNotFoundError

    try:
        with open(path, "rb") as file:
            return file.read()
    except FileNotFoundError:
        raise FlowNotFoundError(f"No flow file at {path!r}{missing}") from None
