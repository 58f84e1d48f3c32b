"""Where prefect-storage keeps local state, and the few settings read from the environment."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "PREFECT_STORAGE_HOME"
"""Environment variable naming the home folder (default ``~/.prefect_storage``)."""


def home_dir() -> Path:
    """The home folder: ``flows/``, ``results/``, ``registry.db`` and ``secrets.toml`` live here.

    Raises :class:`~prefect_storage.exceptions.LocalStateError` when it is not a folder and
    cannot be created (under a regular file, in a read-only folder).
    """
    home = Path(os.environ.get(HOME_ENV) or "~/.prefect_storage").expanduser().absolute()
    if not home.is_dir():
        _check_creatable(home)
    return home


def _check_creatable(home: Path) -> None:
    existing = home
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing == home:
        reason = "it exists and is not a folder"
    elif not existing.is_dir():
        reason = f"{existing} is a file, not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        reason = f"{existing} is not writable"
    else:
        return
    from .exceptions import LocalStateError

    raise LocalStateError(
        f"The prefect-storage home folder {home} ({HOME_ENV}) cannot be created: {reason}; "
        f"set {HOME_ENV} to a writable folder."
    )


def env_flag(name: str, default: bool) -> bool:
    """Read a boolean setting; ``1/true/yes/on`` are true, ``0/false/no/off`` false."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")
