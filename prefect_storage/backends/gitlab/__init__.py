"""GitLab: GitLab storage."""

from ...storage.gitlab import GitLab

__all__ = [
    "GitLab",
]
