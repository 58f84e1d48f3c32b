"""``Docker``: flows baked into a Docker image, with this package and their dependencies."""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from ...envelope import sha256_hex
from ...exceptions import StorageConfigError
from ...keys import slugify, utc_timestamp_slug
from ..base import BlobStorage
from .dockerfile import CONTEXT_FLOWS, write_build_context
from .engine import DockerEngine
from .transport import ImageFiles

if TYPE_CHECKING:
    from ...engine.flow import Flow

FLOWS_DIRECTORY = "/opt/prefect/flows"
"""Where flows live inside the image unless ``path`` says otherwise."""


class Docker(BlobStorage[ImageFiles]):
    """Build an image holding the flows, push it to ``registry_url``, run flows from it.

    The Dockerfile puts what changes least first (base image, ``env_vars``,
    ``python_dependencies``, this package, ``files``, ``extra_dockerfile_commands``) and
    the flows last, so rebuilding after a flow change reuses the earlier layers. A health
    check loads every flow inside the image during the build (``ignore_healthchecks``
    skips it). This package is installed from the package index, or from
    ``package_wheel`` (a local wheel file) when given.
    """

    serialized_fields = ("registry_url", "image_name", "image_tag", "path", "stored_as_script")
    runs_in_image = True
    _transient = (*BlobStorage._transient, "_push")

    def __init__(
        self,
        registry_url: str | None = None,
        base_image: str | None = None,
        dockerfile: str | None = None,
        dockerignore: str | None = None,
        python_dependencies: list[str] | None = None,
        image_name: str | None = None,
        image_tag: str | None = None,
        env_vars: dict[str, Any] | None = None,
        files: dict[str, str] | None = None,
        local_image: bool = False,
        ignore_healthchecks: bool = False,
        base_url: str | None = None,
        tls_config: Any = False,
        build_kwargs: dict[str, Any] | None = None,
        path: str | None = None,
        stored_as_script: bool = False,
        extra_dockerfile_commands: list[str] | None = None,
        package_wheel: str | None = None,
        local_script_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        if base_image and dockerfile:
            raise StorageConfigError("Only one of `base_image` and `dockerfile` can be provided.")
        files = dict(files or {})
        relative = sorted(src for src in files if not os.path.isabs(src))
        if relative:
            raise StorageConfigError(
                f"Provided paths {', '.join(relative)} are not absolute file paths, please "
                "provide absolute paths only."
            )
        if package_wheel is not None and not os.path.isfile(package_wheel):
            raise StorageConfigError(f"`package_wheel` {package_wheel!r} is not a file.")
        self.registry_url = registry_url
        python = f"{platform.python_version_tuple()[0]}.{platform.python_version_tuple()[1]}"
        self.base_image = base_image or (None if dockerfile else f"python:{python}-slim")
        self.dockerfile = dockerfile
        self.dockerignore = dockerignore
        # Copies: the caller's lists and dicts are never changed.
        self.python_dependencies = list(python_dependencies or [])
        self.env_vars = dict(env_vars or {})
        self.files = files
        self.extra_dockerfile_commands = list(extra_dockerfile_commands or [])
        self.build_kwargs = dict(build_kwargs or {})
        self.image_name = image_name
        self.image_tag = image_tag
        self.local_image = local_image
        self.ignore_healthchecks = ignore_healthchecks
        self.base_url = base_url
        self.tls_config = tls_config
        self.path = path
        self.package_wheel = package_wheel
        self.local_script_path = local_script_path
        self._push = True
        super().__init__(stored_as_script=stored_as_script, **kwargs)

    @property
    def image(self) -> str:
        """The full image name, ``<registry_url>/<image_name>:<image_tag>`` (``build()``
        chooses the name and tag unless given)."""
        if not self.image_name or not self.image_tag:
            raise StorageConfigError(
                "Docker storage is missing required fields image_name and image_tag; build() "
                "sets them."
            )
        return f"{PurePosixPath(self.registry_url or '', self.image_name)}:{self.image_tag}"

    @property
    def name(self) -> str:
        """The same as :attr:`image`, as Prefect 1 named it (``storage.name``); kept for code
        written for it. Use ``image``."""
        return self.image

    def _location_for(self, flow: Flow) -> str:
        if self.stored_as_script and not self.path:
            raise StorageConfigError(
                "A `path` must be provided to show where flow `.py` file is stored in the image."
            )
        return self.path or f"{FLOWS_DIRECTORY}/{slugify(flow.name)}.prefect"

    # -- inside the image ----------------------------------------------------------------
    def _make_transport(self) -> ImageFiles:
        return ImageFiles(self.image if self.image_name and self.image_tag else None)

    def _script_file(self, location: str) -> str | None:
        return location

    def _digest_of(self, location: str) -> str | None:
        # A script shipped through `files` is hashed from its source on this machine.
        for source, destination in self.files.items():
            if destination == location and os.path.isfile(source):
                with open(source, "rb") as file:
                    return sha256_hex(file.read())
        return None

    # -- building ------------------------------------------------------------------------
    def build(self, push: bool = True) -> Docker:  # type: ignore[override]
        """Build the image (and push it to ``registry_url`` unless ``push=False``)."""
        if len(self._flows) == 1:
            self.image_name = self.image_name or slugify(next(iter(self._flows)))
        self.image_name = self.image_name or str(uuid.uuid4())
        self.image_tag = self.image_tag or utc_timestamp_slug(datetime.now(timezone.utc))
        self.transport.image = self.image
        self._push = push
        super().build()
        return self

    def _store_flows(self, names: Iterable[str] | None = None) -> None:
        # Flows are written into a build context, which then becomes the image: a flow is
        # stored only once the image is built (and pushed).
        parent = os.path.dirname(os.path.abspath(self.dockerfile)) if self.dockerfile else None
        context = tempfile.mkdtemp(prefix="prefect-storage-docker-", dir=parent)
        os.makedirs(os.path.join(context, CONTEXT_FLOWS))
        self.transport.context = context
        try:
            super()._store_flows(names)
            self._build_image(context, self._push)
        finally:
            shutil.rmtree(context, ignore_errors=True)
            self.transport.context = None

    def _build_image(self, context: str, push: bool) -> None:
        assert self.image_name and self.image_tag  # build() chose them
        write_build_context(self, context)
        repository = str(PurePosixPath(self.registry_url or "", self.image_name))
        kwargs = {"rm": True, "forcerm": True, "network_mode": "host", **self.build_kwargs}
        if self.dockerfile:
            kwargs["path"] = os.path.dirname(os.path.abspath(self.dockerfile))
            kwargs["dockerfile"] = os.path.join(os.path.basename(context), "Dockerfile")
        else:
            kwargs["path"] = context
        engine = DockerEngine(self.base_url, self.tls_config)
        try:
            if self.base_image and not self.local_image:
                engine.pull(self.base_image)
            self.logger.info("Building image %s:%s", repository, self.image_tag)
            engine.build(f"{repository}:{self.image_tag}", **kwargs)
            if push and self.registry_url:
                engine.push(repository, self.image_tag)
        finally:
            engine.close()
        if push and not self.registry_url:
            warnings.warn(
                "This Docker storage object has no `registry_url`, and will not be pushed.",
                UserWarning,
                stacklevel=3,
            )
