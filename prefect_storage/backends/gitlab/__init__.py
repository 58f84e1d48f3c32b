"""GitLab: GitLab storage over one ``GitLabTransport`` (python-gitlab)."""

from .storage import GitLab
from .transport import GitLabTransport

__all__ = ["GitLab", "GitLabTransport"]
