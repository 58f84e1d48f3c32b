"""A real Google Cloud Storage JSON-API server on loopback: ``gcp-storage-emulator``.

``GCSEmulator().start()`` runs ``python -m gcp_storage_emulator start --host 127.0.0.1
--port N --in-memory`` on a free port (the emulator cannot report a port 0 back, so one is
picked first and a lost race is retried), and waits until its health check ``GET /`` answers.
``wipe()`` deletes every bucket and object (``GET /wipe``); ``client()`` is a
``google.cloud.storage.Client`` for it with anonymous credentials; ``new_bucket()`` creates a
uniquely named bucket. ``stop()`` ends the process by its PID.

The emulator is single-threaded and closes the connection after every answer (HTTP/1.0).
It takes the scheme and host of the URLs it hands out (``mediaLink``, resumable upload
``Location``) from the request's ``Host`` header, so a client behind a proxy that keeps
``Host`` keeps talking to the proxy.
"""

from __future__ import annotations

import http.client
import sys
import uuid
from typing import Any

from tests.servers.s3 import ServerNotInstalled, ServerProcess, http_answers

PROJECT = "test"
"""The project the clients name (the emulator accepts any)."""


class GCSEmulator(ServerProcess):
    """gcp-storage-emulator on a free loopback port (see the module docstring)."""

    name = "gcp-storage-emulator"

    def command(self) -> list[str]:
        assert self.port is not None
        return [
            sys.executable,
            "-m",
            "gcp_storage_emulator",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--in-memory",
        ]

    def start(self) -> GCSEmulator:
        try:
            import gcp_storage_emulator  # noqa: F401
        except ImportError as exc:
            raise ServerNotInstalled(
                f"gcp-storage-emulator is not installed ({exc}): pip install gcp-storage-emulator"
            ) from None
        super().start()
        return self

    def ready(self) -> bool:
        assert self.port is not None
        return http_answers(self.port, "/")

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: the ``api_endpoint`` / ``STORAGE_EMULATOR_HOST`` value."""
        if self.port is None:
            raise RuntimeError("the GCS emulator is not started")
        return f"http://127.0.0.1:{self.port}"

    def wipe(self, keep_buckets: bool = False) -> None:
        """Delete every object, and every bucket unless ``keep_buckets``."""
        assert self.port is not None
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", "/wipe?keep-buckets=true" if keep_buckets else "/wipe")
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"GCS emulator wipe answered HTTP {response.status}")

    reset = wipe

    def client(self, endpoint: str | None = None, project: str = PROJECT) -> Any:
        """A storage client for this emulator (or for ``endpoint``, e.g. a fault proxy)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=project,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": endpoint or self.endpoint},
        )

    def new_bucket(self, prefix: str = "test") -> str:
        """Create a uniquely named, empty bucket; returns its name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(name)
        return name
