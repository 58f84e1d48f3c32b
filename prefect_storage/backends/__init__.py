"""The storage backends: one folder per backend, each holding its transport, its Storage,
its Result (where it has one) and, later, its block.

``BACKEND_PATHS`` is the one table of serializable storage types, as dotted names, so
that nothing below the backends imports one: ``Storage.deserialize`` resolves a payload's
``type`` only through it, and a backend (with its SDK) is imported when first needed.
Adding a backend is one folder, one line here and one test rig module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..exceptions import StorageConfigError

if TYPE_CHECKING:
    from .base import Storage

BACKEND_PATHS: dict[str, str] = {
    "Azure": "prefect_storage.backends.azure:Azure",
    "Bitbucket": "prefect_storage.backends.bitbucket:Bitbucket",
    "CodeCommit": "prefect_storage.backends.aws:CodeCommit",
    "Docker": "prefect_storage.backends.docker:Docker",
    "GCS": "prefect_storage.backends.gcp:GCS",
    "Git": "prefect_storage.backends.git:Git",
    "GitHub": "prefect_storage.backends.github:GitHub",
    "GitLab": "prefect_storage.backends.gitlab:GitLab",
    "Local": "prefect_storage.backends.local:Local",
    "Module": "prefect_storage.backends.module:Module",
    "S3": "prefect_storage.backends.aws:S3",
    "Webhook": "prefect_storage.backends.webhook:Webhook",
}
"""Storage ``type`` name -> ``module:class`` of the backend that implements it."""


def backend_class(kind: str) -> type[Storage]:
    """The Storage class named ``kind`` in :data:`BACKEND_PATHS`."""
    if not isinstance(kind, str) or kind not in BACKEND_PATHS:
        raise StorageConfigError(
            f"Unknown storage type {kind!r}; known types: {', '.join(sorted(BACKEND_PATHS))}."
        )
    cls: type[Storage] = _imported(BACKEND_PATHS[kind])
    return cls


def _imported(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def lazy_exports(
    namespace: dict[str, Any], paths: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a façade module whose names are ``paths``
    (name -> ``module:attribute``), each imported on first use and then kept in
    ``namespace``: importing the façade imports no backend."""

    def __getattr__(name: str) -> Any:
        if name not in paths:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        value = namespace[name] = _imported(paths[name])
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *paths})

    return __getattr__, __dir__


class _BackendTable(Mapping[str, "type[Storage]"]):
    """:data:`BACKEND_PATHS` as classes, each imported on first look-up."""

    def __getitem__(self, kind: str) -> type[Storage]:
        if kind not in BACKEND_PATHS:
            raise KeyError(kind)
        return backend_class(kind)

    def __iter__(self) -> Iterator[str]:
        return iter(BACKEND_PATHS)

    def __len__(self) -> int:
        return len(BACKEND_PATHS)

    def __repr__(self) -> str:
        return f"BACKENDS({', '.join(BACKEND_PATHS)})"


BACKENDS: Mapping[str, type[Storage]] = _BackendTable()
"""Storage ``type`` name -> class (``BACKENDS["S3"] is S3``)."""

__all__ = ["BACKENDS", "BACKEND_PATHS", "backend_class", "lazy_exports"]
