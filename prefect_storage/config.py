"""Where prefect-storage keeps local state, and the few settings read from the environment."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "PREFECT_STORAGE_HOME"
"""Environment variable naming the home folder (default ``~/.prefect_storage``)."""


def home_dir() -> Path:
    """The home folder: ``flows/``, ``results/``, ``registry.db`` and ``secrets.toml`` live here."""
    return Path(os.environ.get(HOME_ENV) or "~/.prefect_storage").expanduser().absolute()


def env_flag(name: str, default: bool) -> bool:
    """Read a boolean setting; ``1/true/yes/on`` are true, ``0/false/no/off`` false."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")
