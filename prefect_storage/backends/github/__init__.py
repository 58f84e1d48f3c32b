"""GitHub: GitHub storage over one ``GitHubTransport`` (PyGithub)."""

from .storage import GitHub
from .transport import GitHubTransport

__all__ = ["GitHub", "GitHubTransport"]
