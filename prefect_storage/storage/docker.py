"""Old home of ``Docker``, kept for flow pickles that name it."""

from ..backends.docker import Docker

__all__ = ["Docker"]
