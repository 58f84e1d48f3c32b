"""Bitbucket Server and Cloud: Bitbucket storage."""

from ...storage.bitbucket import Bitbucket

__all__ = [
    "Bitbucket",
]
