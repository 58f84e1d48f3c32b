"""This machine's files: Local storage and LocalResult, over one ``LocalFiles`` transport."""

from .result import LocalResult
from .storage import Local
from .transport import LocalFiles

__all__ = ["Local", "LocalFiles", "LocalResult"]
