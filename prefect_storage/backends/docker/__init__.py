"""Docker images: Docker storage, its engine client, its Dockerfile, its in-image health
check, and ``ImageFiles``, the flow files inside the image."""

from .dockerfile import in_image_python
from .engine import DockerEngine
from .storage import Docker
from .transport import ImageFiles

__all__ = ["Docker", "DockerEngine", "ImageFiles", "in_image_python"]
