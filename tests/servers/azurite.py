"""A real Azure Blob Storage server on loopback: Microsoft's emulator Azurite (npm ``azurite``).

``Azurite().start()`` runs ``azurite-blob --blobHost 127.0.0.1 --blobPort 0
--inMemoryPersistence --skipApiVersionCheck --disableTelemetry --silent`` and reads the port
from its ``successfully listens on http://127.0.0.1:PORT`` line. The program is found in
``.cache/npm/node_modules/.bin`` at the repository root (where ``scripts/bootstrap.sh``
installs it), else on ``PATH``; ``AZURITE_BLOB`` may name it explicitly.

Azurite serves the well-known development account ``devstoreaccount1`` with path-style URLs
(``http://127.0.0.1:PORT/devstoreaccount1/<container>/<blob>``) and checks the shared-key
signature of every request. ``connection_string`` is a working connection string,
``bad_connection_string`` the same with a wrong key (every request then fails with HTTP 403
``AuthorizationFailure``), and ``connection_string_for(url)`` one whose ``BlobEndpoint`` is
another base URL, e.g. a fault proxy's. There is no reset endpoint: ``new_container()`` gives
each test a uniquely named container, and ``reset()`` deletes every container.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from tests.servers.s3 import ServerNotInstalled, ServerProcess, http_answers

REPO_ROOT = Path(__file__).resolve().parents[2]

ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (  # the published key of the development account (Azurite's EMULATOR_ACCOUNT_KEY)
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
BAD_ACCOUNT_KEY = "d3JvbmcgYWNjb3VudCBrZXkgZm9yIGF1dGhvcml6YXRpb24gZmFpbHVyZSB0ZXN0cw=="
"""A well-formed (base64) key that is not the account's: requests fail with 403."""


def find_azurite_blob() -> str:
    """The ``azurite-blob`` program: ``$AZURITE_BLOB``, ``.cache/npm``, then ``PATH``."""
    explicit = os.environ.get("AZURITE_BLOB")
    if explicit:
        return explicit
    local = REPO_ROOT / ".cache" / "npm" / "node_modules" / ".bin" / "azurite-blob"
    if local.is_file():
        return str(local)
    found = shutil.which("azurite-blob")
    if found:
        return found
    raise ServerNotInstalled(
        f"azurite-blob is not installed (looked in {local.parent} and on PATH): "
        "run `bash scripts/bootstrap.sh` (or `npm install --prefix .cache/npm azurite@3.37.0`)"
    )


def connection_string(blob_base_url: str, key: str = ACCOUNT_KEY) -> str:
    """A connection string for ``devstoreaccount1`` served at ``blob_base_url`` (no path)."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={key};"
        f"BlobEndpoint={blob_base_url.rstrip('/')}/{ACCOUNT_NAME};"
    )


class Azurite(ServerProcess):
    """Azurite's Blob service on a free loopback port (see the module docstring)."""

    name = "azurite-blob"
    port_pattern = re.compile(r"successfully listens on http://127\.0\.0\.1:(\d+)")

    def command(self) -> list[str]:
        # It runs in its own temporary folder (the cwd), so nothing lands in the checkout.
        return [
            find_azurite_blob(),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--inMemoryPersistence",
            "--skipApiVersionCheck",  # the Python SDK sends versions Azurite may not know
            "--disableTelemetry",
            "--silent",  # no access log
        ]

    def ready(self) -> bool:
        assert self.port is not None
        return http_answers(self.port, f"/{ACCOUNT_NAME}?comp=list")

    # -- addresses -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the server's base URL (what a fault proxy targets)."""
        if self.port is None:
            raise RuntimeError("Azurite is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def account_url(self) -> str:
        """``http://127.0.0.1:PORT/devstoreaccount1``: the blob service endpoint."""
        return f"{self.url}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return connection_string(self.url)

    @property
    def bad_connection_string(self) -> str:
        """The right endpoint with a wrong account key: requests fail with 403."""
        return connection_string(self.url, key=BAD_ACCOUNT_KEY)

    @staticmethod
    def connection_string_for(blob_base_url: str, key: str = ACCOUNT_KEY) -> str:
        """A connection string whose ``BlobEndpoint`` is ``blob_base_url`` + the account."""
        return connection_string(blob_base_url, key=key)

    # -- clients and containers ----------------------------------------------------------------
    def service_client(self, conn_str: str | None = None, **kwargs: Any) -> Any:
        """A ``BlobServiceClient`` (for this server, or for ``conn_str``)."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(
            conn_str or self.connection_string, **kwargs
        )

    client = service_client

    def new_container(self, prefix: str = "test") -> str:
        """Create a uniquely named, empty container; returns its name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.service_client().create_container(name)
        return name

    def container_client(self, name: str, conn_str: str | None = None) -> Any:
        return self.service_client(conn_str).get_container_client(name)

    def reset(self) -> None:
        """Delete every container (Azurite has no reset endpoint)."""
        service = self.service_client()
        for container in service.list_containers():
            service.delete_container(container.name)
