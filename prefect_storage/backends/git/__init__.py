"""Any git server: Git storage over one ``GitTransport`` (the system ``git``)."""

from .storage import Git
from .transport import GitTransport

__all__ = ["Git", "GitTransport"]
