"""Storage backends: one module each, all built on :mod:`prefect_storage.storage.base`.

``BACKENDS`` is the one table of serializable storage types: ``Storage.deserialize``
resolves a payload's ``type`` only through it. Adding a backend is one module and one
line here.
"""

from __future__ import annotations

from .base import BlobStorage, Storage
from .local import Local
from .module import Module
from .webhook import Webhook

BACKENDS: dict[str, type[Storage]] = {cls.__name__: cls for cls in (Local, Module, Webhook)}
"""Storage ``type`` name -> class, for serialization."""

__all__ = ["BACKENDS", "BlobStorage", "Local", "Module", "Storage", "Webhook"]
