"""Docker images: Docker storage, its Dockerfile, its in-image health check."""

from ...storage.docker import Docker

__all__ = [
    "Docker",
]
