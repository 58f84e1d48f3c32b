"""Storage backends: one module each, all built on :mod:`prefect_storage.storage.base`.

``BACKENDS`` is the one table of serializable storage types: ``Storage.deserialize``
resolves a payload's ``type`` only through it. Adding a backend is one module and one
line here. No backend imports its SDK until it is used.
"""

from __future__ import annotations

from .azure import Azure
from .base import BlobStorage, BucketStorage, RepoStorage, Storage
from .bitbucket import Bitbucket
from .codecommit import CodeCommit
from .docker import Docker
from .gcs import GCS
from .git import Git
from .github import GitHub
from .gitlab import GitLab
from .local import Local
from .module import Module
from .s3 import S3
from .webhook import Webhook

BACKENDS: dict[str, type[Storage]] = {
    cls.__name__: cls
    for cls in (
        Azure,
        Bitbucket,
        CodeCommit,
        Docker,
        GCS,
        Git,
        GitHub,
        GitLab,
        Local,
        Module,
        S3,
        Webhook,
    )
}
"""Storage ``type`` name -> class, for serialization."""

__all__ = [
    "BACKENDS",
    "GCS",
    "S3",
    "Azure",
    "Bitbucket",
    "BlobStorage",
    "BucketStorage",
    "CodeCommit",
    "Docker",
    "Git",
    "GitHub",
    "GitLab",
    "Local",
    "Module",
    "RepoStorage",
    "Storage",
    "Webhook",
]
