"""GitHub: GitHub storage."""

from ...storage.github import GitHub

__all__ = [
    "GitHub",
]
