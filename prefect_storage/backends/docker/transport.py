"""Flow files at their paths inside a Docker image: the transport ``Docker`` stores through.

While the image is built, a flow's bytes go into the build context (``flows/<path>``,
which the Dockerfile copies to ``/<path>``); ``get_flow`` runs inside the image, where
the same path is a local file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import IO, Any

from ...exceptions import StorageConfigError
from ...fileio import open_flow_file
from ..local.transport import LocalFiles
from .dockerfile import CONTEXT_FLOWS


class ImageFiles(LocalFiles):
    """Writes into the build context while ``context`` is set; reads the image's files."""

    service = "the Docker image"

    def __init__(self, image: str | None = None) -> None:
        super().__init__()
        self.image = image
        """The image's full name (once chosen), named when a flow is not found."""
        self.context: str | None = None
        """The build context folder, while the image is being built."""

    def staged(self, location: str) -> str:
        """Where the flow at ``location`` in the image is written in the build context."""
        if self.context is None:
            raise StorageConfigError(f"{location!r} is in the Docker image: build() writes it.")
        return os.path.join(self.context, CONTEXT_FLOWS, location.lstrip("/"))

    def _put(
        self, location: str, data: bytes, *, overwrite: bool, options: Mapping[str, Any]
    ) -> None:
        target = self.staged(location)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        super()._put(target, data, overwrite=overwrite, options=options)

    def _delete(self, location: str) -> None:
        # Only what this build staged: the same path on this machine is not the image's.
        if self.context is not None:
            super()._delete(self.staged(location))

    def _open(self, location: str) -> IO[bytes]:
        return open_flow_file(
            location,
            f": Docker storage loads flows inside its image ({self.image or 'not built yet'}); "
            "run it with `prefect-storage agent docker`.",
        )
