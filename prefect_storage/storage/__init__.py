"""The storage classes, at their public import path (SPEC section 2).

Each backend lives in its folder under :mod:`prefect_storage.backends`; this package only
names them. ``BACKENDS`` is the backend table (``BACKENDS["S3"] is S3``).
"""

from __future__ import annotations

from ..backends import BACKENDS
from ..backends.aws import S3, CodeCommit
from ..backends.azure import Azure
from ..backends.base import BlobStorage, Storage
from ..backends.bitbucket import Bitbucket
from ..backends.bucket import BucketStorage
from ..backends.docker import Docker
from ..backends.gcp import GCS
from ..backends.git import Git
from ..backends.github import GitHub
from ..backends.gitlab import GitLab
from ..backends.local import Local
from ..backends.module import Module
from ..backends.repo import RepoStorage
from ..backends.webhook import Webhook

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
