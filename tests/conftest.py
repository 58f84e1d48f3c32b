"""Shared fixtures: a temporary home for every test, and the real local servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from prefect_storage.secrets import ENV_PREFIX
from tests.servers.webhook import WebhookServer


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own PREFECT_STORAGE_HOME and no ambient secrets."""
    home = tmp_path / "home"
    monkeypatch.setenv("PREFECT_STORAGE_HOME", str(home))
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    return home


@pytest.fixture(scope="session")
def _webhook_server_process() -> Iterator[WebhookServer]:
    server = WebhookServer().start()
    yield server
    server.stop()


@pytest.fixture
def webhook_server(_webhook_server_process: WebhookServer) -> WebhookServer:
    """The loopback Webhook server, emptied and given a fresh token for each test."""
    _webhook_server_process.reset()
    return _webhook_server_process
