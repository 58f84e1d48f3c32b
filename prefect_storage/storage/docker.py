"""``Docker``: flows baked into a Docker image, with this package and their dependencies."""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..clients.docker import api_client, follow_build, follow_push
from ..envelope import sha256_hex
from ..exceptions import StorageConfigError
from ..fileio import read_flow_file
from ..healthcheck import FAILED
from ..keys import slugify, utc_timestamp_slug
from ..storage.base import BlobStorage

if TYPE_CHECKING:
    from ..engine.flow import Flow

FLOWS_DIRECTORY = "/opt/prefect/flows"
"""Where flows live inside the image unless ``path`` says otherwise."""

CONTEXT_FLOWS = "flows"
"""The build-context folder that holds the flow files (the image's last layers)."""

PICK_PYTHON = 'PY="$(command -v python3 || command -v python)"'
"""Shell that sets ``$PY`` to the image's interpreter (fails when there is none). Debian's
own Python is ``python3`` only; ``python`` may be Python 2 on old images, so ``python3``
comes first. The build steps, the health check and the Docker agent all use it: the flows
run with the Python that the packages were installed into."""

PIP_ENVIRONMENT = "export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1"
"""For the build's pip steps only: the image exists to run the flows, so Debian's PEP 668
refusal of system-wide installs does not apply; older pips ignore the variable."""


def in_image_python(*args: str) -> list[str]:
    """A container command running the image's Python (``python3``, else ``python``) with
    ``args``, e.g. ``in_image_python("-m", "prefect_storage.cli", "execute", run_id)``."""
    script = (
        f"{PICK_PYTHON} || {{ echo 'prefect-storage: the image has no python3 or python on "
        'its PATH\' >&2; exit 127; }; exec "$PY" "$@"'
    )
    return ["/bin/sh", "-c", script, "sh", *args]


class Docker(BlobStorage):
    """Build an image holding the flows, push it to ``registry_url``, run flows from it.

    The Dockerfile puts what changes least first (base image, ``env_vars``,
    ``python_dependencies``, this package, ``files``, ``extra_dockerfile_commands``) and
    the flows last, so rebuilding after a flow change reuses the earlier layers. A health
    check loads every flow inside the image during the build (``ignore_healthchecks``
    skips it). This package is installed from the package index, or from
    ``package_wheel`` (a local wheel file) when given.
    """

    serialized_fields = ("registry_url", "image_name", "image_tag", "path", "stored_as_script")
    _transient = (*BlobStorage._transient, "_context", "_push")
    runs_in_image = True

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
        self._context: str | None = None
        self._push = True
        super().__init__(stored_as_script=stored_as_script, **kwargs)

    @property
    def name(self) -> str:
        """The full image name, ``<registry_url>/<image_name>:<image_tag>``."""
        if not self.image_name or not self.image_tag:
            raise StorageConfigError(
                "Docker storage is missing required fields image_name and image_tag; build() "
                "sets them."
            )
        return f"{PurePosixPath(self.registry_url or '', self.image_name)}:{self.image_tag}"

    def _location_for(self, flow: Flow) -> str:
        if self.stored_as_script and not self.path:
            raise StorageConfigError(
                "A `path` must be provided to show where flow `.py` file is stored in the image."
            )
        return self.path or f"{FLOWS_DIRECTORY}/{slugify(flow.name)}.prefect"

    # -- inside the image ----------------------------------------------------------------
    def _get(self, location: str) -> bytes:
        return read_flow_file(
            location,
            f": Docker storage loads flows inside its image ({self.image_name}:"
            f"{self.image_tag}); run it with `prefect-storage agent docker`.",
        )

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
    def _put(self, location: str, data: bytes) -> None:
        assert self._context is not None  # _store_flows sets it
        target = os.path.join(self._context, CONTEXT_FLOWS, location.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as file:
            file.write(data)

    def build(self, push: bool = True) -> Docker:  # type: ignore[override]
        """Build the image (and push it to ``registry_url`` unless ``push=False``)."""
        if len(self._flows) == 1:
            self.image_name = self.image_name or slugify(next(iter(self._flows)))
        self.image_name = self.image_name or str(uuid.uuid4())
        self.image_tag = self.image_tag or utc_timestamp_slug(datetime.now(timezone.utc))
        self._push = push
        super().build()
        return self

    def _store_flows(self, names: Iterable[str] | None = None) -> None:
        # Flows are written into a build context, which then becomes the image: a flow is
        # stored only once the image is built (and pushed).
        parent = os.path.dirname(os.path.abspath(self.dockerfile)) if self.dockerfile else None
        self._context = tempfile.mkdtemp(prefix="prefect-storage-docker-", dir=parent)
        os.makedirs(os.path.join(self._context, CONTEXT_FLOWS))
        try:
            super()._store_flows(names)
            self._build_image(self._push)
        finally:
            shutil.rmtree(self._context, ignore_errors=True)
            self._context = None

    def _build_image(self, push: bool) -> None:
        assert self._context is not None
        self._write_context(self._context)
        client = api_client(self.base_url, self.tls_config)
        if self.base_image and not self.local_image:
            follow_push(
                client.pull(self.base_image, stream=True, decode=True),
                f"Pulling {self.base_image}",
            )
        repository = str(PurePosixPath(self.registry_url or "", str(self.image_name)))
        kwargs = {"rm": True, "forcerm": True, "network_mode": "host", **self.build_kwargs}
        if self.dockerfile:
            kwargs["path"] = os.path.dirname(os.path.abspath(self.dockerfile))
            kwargs["dockerfile"] = os.path.join(os.path.basename(self._context), "Dockerfile")
        else:
            kwargs["path"] = self._context
        self.logger.info("Building image %s:%s", repository, self.image_tag)
        follow_build(client.build(tag=f"{repository}:{self.image_tag}", decode=True, **kwargs))
        if push and self.registry_url:
            follow_push(
                client.push(repository, tag=self.image_tag, stream=True, decode=True),
                f"Pushing {repository}:{self.image_tag}",
            )
        elif push:
            import warnings

            warnings.warn(
                "This Docker storage object has no `registry_url`, and will not be pushed.",
                UserWarning,
                stacklevel=3,
            )

    def _write_context(self, context_dir: str) -> None:
        """Copy user files and this package into the context and write the Dockerfile."""
        prefix = os.path.basename(context_dir) + "/" if self.dockerfile else ""
        lines = [self._from_line()]
        if self.env_vars:
            lines.append(
                "ENV "
                + " \\\n    ".join(
                    f"{key}={_env_value(value)}" for key, value in self.env_vars.items()
                )
            )
        lines.append(
            f"RUN {PICK_PYTHON} || {{ echo '{FAILED} the base image has no python3 or python "
            "on its PATH; use a base image with Python 3 and pip.'; exit 1; }"
        )
        if self.python_dependencies:
            lines.append(_install_unless_satisfied(self.python_dependencies))
        lines.extend(self._package_install(context_dir, prefix))
        for source, destination in self.files.items():
            name = os.path.basename(source.rstrip("/"))
            target = os.path.join(context_dir, "files", name)
            if os.path.exists(target):
                raise StorageConfigError(
                    f"Two `files` entries share the name {name!r}; rename one of them."
                )
            if os.path.isdir(source):
                shutil.copytree(source, target)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(source, target)
            lines.append(f"COPY {prefix}files/{name} {destination}")
        if self.dockerignore and self.files:
            shutil.copy2(self.dockerignore, os.path.join(context_dir, ".dockerignore"))
        lines.extend(self.extra_dockerfile_commands)
        # The flows come last: changing a flow rebuilds only what follows.
        lines.append(f"COPY {prefix}{CONTEXT_FLOWS}/ /")
        if not self.ignore_healthchecks:
            locations = json.dumps(sorted(set(self.flows.values())))
            info = json.dumps(
                {"python": platform.python_version(), "stored_as_script": self.stored_as_script}
            )
            lines.append(
                f'RUN {PICK_PYTHON} && "$PY" -m prefect_storage.healthcheck '
                f"{shlex.quote(locations)} {shlex.quote(info)}"
            )
        with open(os.path.join(context_dir, "Dockerfile"), "w") as file:
            file.write("\n".join(lines) + "\n")

    def _from_line(self) -> str:
        if self.dockerfile:
            with open(self.dockerfile) as file:
                return file.read().rstrip("\n")
        return f"FROM {self.base_image}"

    def _package_install(self, context_dir: str, prefix: str) -> list[str]:
        if self.package_wheel is None:
            return [_install_unless_satisfied([f"prefect-storage=={__version__}"])]
        # A wheel is this exact code, which a copy of the same version in the base image may
        # not be: it is always installed (without its dependencies, then they unless present).
        name = os.path.basename(self.package_wheel)
        shutil.copy2(self.package_wheel, os.path.join(context_dir, name))
        wheel = shlex.quote(f"/tmp/{name}")
        return [
            f"COPY {prefix}{name} /tmp/{name}",
            f"RUN {PICK_PYTHON} && {PIP_ENVIRONMENT} && "
            f'"$PY" -m pip install --no-cache-dir --force-reinstall --no-deps {wheel} && '
            f'"$PY" -m pip install --no-cache-dir {wheel} && rm {wheel}',
        ]


def _install_unless_satisfied(requirements: list[str]) -> str:
    """A ``RUN`` step that pip-installs ``requirements`` unless the image already satisfies
    them all. The check is pip's own, offline: ``pip install --no-index`` succeeds only when
    nothing needs to be fetched. A URL or path requirement is always installed (pip would
    install it during the check)."""
    quoted = " ".join(shlex.quote(requirement) for requirement in requirements)
    install = f'"$PY" -m pip install --no-cache-dir {quoted}'
    if any(_by_url_or_path(requirement) for requirement in requirements):
        return f"RUN {PICK_PYTHON} && {PIP_ENVIRONMENT} && {install}"
    return (
        f"RUN {PICK_PYTHON} && {PIP_ENVIRONMENT} && "
        f'if "$PY" -m pip install --no-index --quiet {quoted} >/dev/null 2>&1; '
        f"then echo {shlex.quote('Already installed: ' + ' '.join(requirements))}; "
        f"else {install}; fi"
    )


def _by_url_or_path(requirement: str) -> bool:
    return requirement.startswith(".") or any(mark in requirement for mark in "/\\@")


def _env_value(value: Any) -> str:
    """A Dockerfile ``ENV`` value that the builder reads back literally: double-quoted, with
    ``\\``, ``"`` and ``$`` escaped (no variable expansion)."""
    text = str(value)
    if "\n" in text or "\r" in text:
        raise StorageConfigError("`env_vars` values cannot contain line breaks.")
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'
