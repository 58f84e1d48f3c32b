"""The Docker engine: its API client made on first use, its streamed pull/build/push output
turned into progress and log lines, and its errors translated once."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable
from typing import Any

from ..._deps import import_optional
from ...exceptions import BackendError, BackendUnavailableError
from ..transport import Client
from .healthcheck import FAILED

logger = logging.getLogger("prefect_storage.docker")

_ENGINE_LINE = re.compile(r"^( ---> |Removing intermediate container )")
"""What the engine itself writes between a step's output and the build's end."""


class DockerEngine(Client):
    """The engine at ``base_url`` (default: ``DOCKER_HOST``) through a low-level
    ``docker.APIClient``: pulls base images, builds images and pushes them."""

    service = "the Docker engine"
    not_found_hint = "Check the image name, and that the registry has it."

    def __init__(self, base_url: str | None = None, tls_config: Any = False) -> None:
        super().__init__()
        self.base_url = base_url or os.environ.get("DOCKER_HOST") or "unix://var/run/docker.sock"
        self.tls_config = tls_config

    def _make_client(self) -> Any:
        docker = import_optional("docker", "docker")
        return docker.APIClient(base_url=self.base_url, version="auto", tls=self.tls_config)

    # -- reading an SDK error --------------------------------------------------------------
    def _status(self, exc: Exception) -> tuple[int, str] | None:
        from docker.errors import APIError

        if isinstance(exc, APIError) and exc.status_code is not None:
            return exc.status_code, str(exc.explanation or exc.status_code)
        return None

    def _unreachable(self, exc: Exception) -> bool:
        import requests
        from docker.errors import APIError, DockerException

        if isinstance(exc, APIError):
            return exc.status_code is None
        return isinstance(exc, (DockerException, requests.ConnectionError))

    def _unreachable_error(self, exc: Exception, what: str) -> BackendUnavailableError:
        return BackendUnavailableError(  # the engine's address is the one thing to check
            f"Cannot reach the Docker engine at {self.base_url} ({type(exc).__name__}); is it "
            "running, and is DOCKER_HOST (or `base_url`) right?"
        )

    def close(self) -> None:
        """Release the engine connection, if one was made."""
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- the operations --------------------------------------------------------------------
    def pull(self, image: str) -> None:
        what = f"Pulling {image}"
        with self.translating(what, not_found=BackendError):
            follow_push(self.client.pull(image, stream=True, decode=True), what)

    def build(self, tag: str, **kwargs: Any) -> list[str]:
        """Build ``tag``; the build's output lines (also logged)."""
        with self.translating(f"Building {tag}", not_found=BackendError):
            return follow_build(self.client.build(tag=tag, decode=True, **kwargs))

    def push(self, repository: str, tag: str) -> None:
        what = f"Pushing {repository}:{tag}"
        with self.translating(what, not_found=BackendError):
            follow_push(self.client.push(repository, tag=tag, stream=True, decode=True), what)


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
            failed = [i for i, line in enumerate(lines) if line.startswith(FAILED)]
            # The check's whole report (its reason may span several lines), without the
            # engine's own lines about the step's container.
            report = [line for line in lines[failed[-1] :] if not _ENGINE_LINE.match(line)]
            reason = "\n".join(report) if failed else message
            raise BackendError(f"The Docker image failed to build: {reason}")
    return lines


def follow_push(stream: Iterable[dict[str, Any]], description: str) -> None:
    """Show a streamed pull or push as a progress bar (on a terminal); raise on error."""
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
