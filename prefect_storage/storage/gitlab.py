"""Old home of ``GitLab``, kept for code and flow pickles that name it."""

from ..backends.gitlab import GitLab

__all__ = ["GitLab"]
