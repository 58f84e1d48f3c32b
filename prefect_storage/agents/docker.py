"""The Docker agent: runs each claimed flow run in a container."""

from __future__ import annotations

import contextlib
import os
from typing import cast

from ..config import home_dir
from ..registry import FlowRecord, FlowRegistry, FlowRunRecord
from ..secrets import ENV_PREFIX
from .base import STOP_GRACE_SECONDS, Agent, execute_command, runs_in_image


class DockerAgent(Agent):
    """Executes runs in containers: the Docker storage's image, else the run config's.

    Containers use the host network (so a registry or backend on this machine is
    reachable) and see the home folder at the same path (for the SQLite registry).
    """

    kind = "docker-agent"

    def __init__(
        self,
        labels: list[str] | None = None,
        registry: FlowRegistry | None = None,
        name: str | None = None,
        hostname_label: bool = True,
        concurrency: int = 1,
        base_url: str | None = None,
        network: str = "host",
        lease_seconds: float | None = None,
        grace_seconds: float = STOP_GRACE_SECONDS,
    ) -> None:
        super().__init__(
            labels, registry, name, hostname_label, concurrency, lease_seconds, grace_seconds
        )
        self.base_url = base_url
        self.network = network

    def _image(self, record: FlowRecord) -> str | None:
        storage = record.storage
        if runs_in_image(record) and storage.get("image_name"):
            from ..backends.docker import Docker
            from ..storage import Storage

            return cast(Docker, Storage.deserialize(storage)).image
        return record.run_config.get("image")

    def _refusal(self, record: FlowRecord) -> str | None:
        if self._image(record) is None:
            return (
                "No image to run this flow in: use Docker storage, or a DockerRun(image=...) "
                "run config."
            )
        return None

    def _volumes(self, home: str) -> dict[str, dict[str, str]]:
        """The home folder, and the folder of a SQLite registry outside it, at their paths."""
        from sqlalchemy.engine import make_url

        volumes = {home: {"bind": home, "mode": "rw"}}
        url = make_url(self.registry.url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            folder = os.path.dirname(os.path.abspath(url.database))
            if os.path.commonpath([folder, home]) != home:
                volumes[folder] = {"bind": folder, "mode": "rw"}
        return volumes

    def _launch(self, run: FlowRunRecord, record: FlowRecord) -> tuple[int | str, str]:
        from .._deps import import_optional
        from ..backends.docker import in_image_python

        docker = import_optional("docker", "docker")
        client = docker.DockerClient(
            base_url=self.base_url or os.environ.get("DOCKER_HOST") or None
        )
        home = str(home_dir())
        # Secrets reach the run as the agent has them (environment, or the secrets file in
        # the mounted home folder); none is ever written into an image.
        secrets = {name: value for name, value in os.environ.items() if name.startswith(ENV_PREFIX)}
        container = client.containers.run(
            self._image(record),
            in_image_python(*execute_command(run.id)),
            environment=self._child_environment(record, secrets),
            network_mode=self.network,
            volumes=self._volumes(home),
            detach=True,
        )
        self._attach(
            run.id,
            terminate=lambda: _kill(container, "SIGTERM"),
            kill=lambda: _kill(container, "SIGKILL"),
        )
        try:
            exit_code = container.wait()["StatusCode"]
            output = container.logs(stdout=True, stderr=True).decode(errors="replace")
        finally:
            container.remove(force=True)
        return exit_code, output


def _kill(container: object, signal_name: str) -> None:
    """Signal a run's container; one that already exited is no error."""
    with contextlib.suppress(Exception):  # docker's APIError (409 not running) or NotFound
        container.kill(signal=signal_name)  # type: ignore[attr-defined]  # docker SDK, lazy
