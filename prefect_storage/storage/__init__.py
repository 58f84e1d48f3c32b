"""The storage classes, at their public import path (SPEC section 2).

Each backend lives in its folder under :mod:`prefect_storage.backends`; this package only
names them, from the backend table, and imports each on first use: ``import
prefect_storage.storage`` loads no backend, ``from prefect_storage.storage import S3`` loads
S3's alone. ``BACKENDS`` is the backend table (``BACKENDS["S3"] is S3``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..backends import BACKEND_PATHS, lazy_exports
from ..backends import BACKENDS as BACKENDS

if TYPE_CHECKING:  # what the names below are, for type checkers
    from ..backends.aws import S3 as S3
    from ..backends.aws import CodeCommit as CodeCommit
    from ..backends.azure import Azure as Azure
    from ..backends.base import BlobStorage as BlobStorage
    from ..backends.base import Storage as Storage
    from ..backends.bitbucket import Bitbucket as Bitbucket
    from ..backends.bucket import BucketStorage as BucketStorage
    from ..backends.docker import Docker as Docker
    from ..backends.gcp import GCS as GCS
    from ..backends.git import Git as Git
    from ..backends.github import GitHub as GitHub
    from ..backends.gitlab import GitLab as GitLab
    from ..backends.local import Local as Local
    from ..backends.module import Module as Module
    from ..backends.repo import RepoStorage as RepoStorage
    from ..backends.webhook import Webhook as Webhook

_PATHS = {
    **BACKEND_PATHS,
    "BlobStorage": "prefect_storage.backends.base:BlobStorage",
    "BucketStorage": "prefect_storage.backends.bucket:BucketStorage",
    "RepoStorage": "prefect_storage.backends.repo:RepoStorage",
    "Storage": "prefect_storage.backends.base:Storage",
}

__getattr__, __dir__ = lazy_exports(globals(), _PATHS)

__all__ = sorted(["BACKENDS", *_PATHS])  # computed: one name per table entry
