"""The build context of a Docker storage's image: its Dockerfile, the user's files, this
package's wheel and the flows (written by :class:`~.transport.ImageFiles`)."""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
from typing import TYPE_CHECKING, Any

from ..._version import __version__
from ...exceptions import StorageConfigError
from .healthcheck import FAILED

if TYPE_CHECKING:
    from .storage import Docker

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


def write_build_context(storage: Docker, context_dir: str) -> None:
    """Copy the user's files and this package into ``context_dir`` and write the Dockerfile.

    What changes least comes first (base image, ``env_vars``, ``python_dependencies``, this
    package, ``files``, ``extra_dockerfile_commands``) and the flows last, so rebuilding
    after a flow change reuses the earlier layers.
    """
    # With the user's Dockerfile the context is its folder, and ours a subfolder of it.
    prefix = os.path.basename(context_dir) + "/" if storage.dockerfile else ""
    lines = [_from_line(storage)]
    if storage.env_vars:
        lines.append(
            "ENV "
            + " \\\n    ".join(
                f"{key}={_env_value(value)}" for key, value in storage.env_vars.items()
            )
        )
    lines.append(
        f"RUN {PICK_PYTHON} || {{ echo '{FAILED} the base image has no python3 or python "
        "on its PATH; use a base image with Python 3 and pip.'; exit 1; }"
    )
    if storage.python_dependencies:
        lines.append(_install_unless_satisfied(storage.python_dependencies))
    lines.extend(_package_install(storage.package_wheel, context_dir, prefix))
    for source, destination in storage.files.items():
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
    if storage.dockerignore and storage.files:
        shutil.copy2(storage.dockerignore, os.path.join(context_dir, ".dockerignore"))
    lines.extend(storage.extra_dockerfile_commands)
    # The flows come last: changing a flow rebuilds only what follows.
    lines.append(f"COPY {prefix}{CONTEXT_FLOWS}/ /")
    if not storage.ignore_healthchecks:
        locations = json.dumps(sorted(set(storage.flows.values())))
        info = json.dumps(
            {"python": platform.python_version(), "stored_as_script": storage.stored_as_script}
        )
        # prefect_storage.healthcheck, not this module's path: the command stays stable.
        lines.append(
            f'RUN {PICK_PYTHON} && "$PY" -m prefect_storage.healthcheck '
            f"{shlex.quote(locations)} {shlex.quote(info)}"
        )
    with open(os.path.join(context_dir, "Dockerfile"), "w") as file:
        file.write("\n".join(lines) + "\n")


def _from_line(storage: Docker) -> str:
    if storage.dockerfile:
        with open(storage.dockerfile) as file:
            return file.read().rstrip("\n")
    return f"FROM {storage.base_image}"


def _package_install(package_wheel: str | None, context_dir: str, prefix: str) -> list[str]:
    if package_wheel is None:
        return [_install_unless_satisfied([f"prefect-storage=={__version__}"])]
    # A wheel is this exact code, which a copy of the same version in the base image may
    # not be: it is always installed (without its dependencies, then they unless present).
    name = os.path.basename(package_wheel)
    shutil.copy2(package_wheel, os.path.join(context_dir, name))
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
