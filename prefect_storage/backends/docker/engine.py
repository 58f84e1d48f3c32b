"""Docker: the engine's API client, and its streamed build/push output turned into
progress, log lines and typed errors."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable
from typing import Any

from .._deps import import_optional
from ..exceptions import BackendError, BackendUnavailableError

logger = logging.getLogger("prefect_storage.docker")

_ENGINE_LINE = re.compile(r"^( ---> |Removing intermediate container )")
"""What the engine itself writes between a step's output and the build's end."""


def api_client(base_url: str | None, tls_config: Any = False) -> Any:
    """A low-level ``docker.APIClient`` for ``base_url`` (default: ``DOCKER_HOST``)."""
    docker = import_optional("docker", "docker")
    url = base_url or os.environ.get("DOCKER_HOST") or "unix://var/run/docker.sock"
    try:
        return docker.APIClient(base_url=url, version="auto", tls=tls_config)
    except docker.errors.DockerException as exc:
        raise BackendUnavailableError(
            f"Cannot reach the Docker engine at {url} ({type(exc).__name__}); is it running, "
            "and is DOCKER_HOST (or `base_url`) right?"
        ) from exc


def follow_build(stream: Iterable[dict[str, Any]]) -> list[str]:
    """Log a streamed build; raise with the failing step's own output on error."""
    lines: list[str] = []
    for chunk in stream:
        text = chunk.get("stream") or chunk.get("status") or ""
        for line in text.rstrip("\n").splitlines():
            lines.append(line)
            logger.info("%s", line)
        if "error" in chunk or "errorDetail" in chunk:
            message = chunk.get("errorDetail", {}).get("message") or chunk.get("error")
            from ..healthcheck import FAILED

            failed = [i for i, line in enumerate(lines) if line.startswith(FAILED)]
            # The check's whole report (its reason may span several lines), without the
            # engine's own lines about the step's container.
            report = [line for line in lines[failed[-1] :] if not _ENGINE_LINE.match(line)]
            reason = "\n".join(report) if failed else message
            raise BackendError(f"The Docker image failed to build: {reason}")
    return lines


def follow_push(stream: Iterable[dict[str, Any]], description: str) -> None:
    """Show a streamed push as a progress bar (on a terminal); raise on error."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    layers: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        transient=True,
        disable=not sys.stderr.isatty(),
    ) as progress:
        for chunk in stream:
            if "error" in chunk or "errorDetail" in chunk:
                message = chunk.get("errorDetail", {}).get("message") or chunk.get("error")
                raise BackendError(f"{description} failed: {message}")
            layer, detail = chunk.get("id"), chunk.get("progressDetail") or {}
            if layer and detail.get("total"):
                if layer not in layers:
                    layers[layer] = progress.add_task(f"{description} {layer}", total=None)
                progress.update(layers[layer], completed=detail["current"], total=detail["total"])
            elif chunk.get("status"):
                logger.info("%s: %s", layer or "push", chunk["status"])
