"""Any git server: Git storage."""

from ...storage.git import Git

__all__ = [
    "Git",
]
