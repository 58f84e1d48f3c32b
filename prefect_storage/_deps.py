"""Import optional backend SDKs on first use, naming the extra that provides them."""

from __future__ import annotations

import importlib
from types import ModuleType

from .exceptions import MissingDependencyError


def import_optional(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module!r} is required for this feature but is not installed; "
            f"install it with: pip install 'prefect-storage[{extra}]'"
        ) from exc
