"""Fixtures for the S3, GCS and Azure tests: one ``Kit`` per backend over its real server.

``kit`` is parametrized over ``s3`` (moto), ``gcs`` (gcp-storage-emulator) and ``azure``
(Azurite). A kit makes storages and results on a fresh bucket/container, reaching the server
only the way a user would (S3 ``client_options={"endpoint_url": ...}``, GCS
``STORAGE_EMULATOR_HOST`` and ``project="test"``, Azure ``AZURE_STORAGE_CONNECTION_STRING``),
reads and writes objects behind the storage's back with the SDK, and can put a
:class:`~tests.servers.faultproxy.FaultProxy` in front of the server (``kit.proxy()``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from prefect_storage.engine.flow import Flow
from prefect_storage.loading import extract_flow_from_file
from prefect_storage.results import AzureResult, GCSResult, Result, S3Result
from prefect_storage.retry import RetryPolicy
from prefect_storage.storage import GCS, S3, Azure
from prefect_storage.storage.base import BucketStorage
from tests.backends.support import FAST
from tests.contract.rigs import FLOW_SCRIPT
from tests.servers.azurite import ACCOUNT_NAME
from tests.servers.faultproxy import FaultProxy, ProxiedRequest
from tests.servers.s3 import ServerNotInstalled, ServerProcess, ServerUnavailable

BACKENDS = ("s3", "gcs", "azure")
SERVER_FIXTURE = {"s3": "s3", "gcs": "gcs", "azure": "azurite"}


class Kit:
    """One backend on its real server, with a fresh bucket (see the module docstring)."""

    def __init__(
        self,
        name: str,
        request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.name = name
        self.server: Any = request.getfixturevalue(SERVER_FIXTURE[name])
        self._fault_proxy: Callable[[str], FaultProxy] = request.getfixturevalue("fault_proxy")
        self._monkeypatch = monkeypatch
        self.key_argument = "blob_name" if name == "azure" else "key"
        self.upload_method = "POST" if name == "gcs" else "PUT"
        if name == "azure":
            monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
        self.bucket = self.new_bucket()
        self.endpoint = ""
        self.use_endpoint(self.server_url)

    def __repr__(self) -> str:
        return f"<Kit {self.name} bucket={self.bucket}>"

    # -- where storages connect ----------------------------------------------------------------
    @property
    def server_url(self) -> str:
        """The server's own base URL (what a fault proxy targets)."""
        attribute = {"s3": "endpoint_url", "gcs": "endpoint", "azure": "url"}[self.name]
        return str(getattr(self.server, attribute))

    def use_endpoint(self, url: str) -> None:
        """Storages and results made from now on talk to ``url`` (the user's way)."""
        self.endpoint = url
        if self.name == "gcs":
            self._monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        elif self.name == "azure":
            self._monkeypatch.setenv(
                "AZURE_STORAGE_CONNECTION_STRING", self.server.connection_string_for(url)
            )

    def proxy(self) -> FaultProxy:
        """A fault proxy in front of the server; storages made from now on go through it."""
        proxy = self._fault_proxy(self.server_url)
        self.use_endpoint(proxy.url)
        return proxy

    # -- storages and results ------------------------------------------------------------------
    def storage(
        self,
        bucket: str | None = None,
        retry_policy: RetryPolicy | None = FAST,
        **kwargs: Any,
    ) -> BucketStorage:
        bucket = bucket or self.bucket
        storage: BucketStorage
        if self.name == "s3":
            storage = S3(bucket, client_options={"endpoint_url": self.endpoint}, **kwargs)
        elif self.name == "gcs":
            storage = GCS(bucket, project="test", **kwargs)
        else:
            storage = Azure(bucket, **kwargs)
        if retry_policy is not None:
            storage.retry_policy = retry_policy
        return storage

    def result(self, bucket: str | None = None, **kwargs: Any) -> Result:
        bucket = bucket or self.bucket
        result: Result
        if self.name == "s3":
            result = S3Result(bucket, boto3_kwargs={"endpoint_url": self.endpoint}, **kwargs)
        elif self.name == "gcs":
            result = GCSResult(bucket, **kwargs)
        else:
            result = AzureResult(bucket, **kwargs)
        result.retry_policy = FAST
        return result

    def fixed(self, location: str) -> dict[str, str]:
        """Storage kwargs that pin every flow to ``location`` (``key`` / ``blob_name``)."""
        return {self.key_argument: location}

    # -- the bucket behind the storage's back (straight to the server, never proxied) ----------
    def new_bucket(self) -> str:
        if self.name == "azure":
            return str(self.server.new_container())
        return str(self.server.new_bucket())

    def read(self, location: str) -> bytes:
        if self.name == "s3":
            response = self.server.client().get_object(Bucket=self.bucket, Key=location)
            return bytes(response["Body"].read())
        if self.name == "gcs":
            blob = self.server.client().bucket(self.bucket).blob(location)
            return bytes(blob.download_as_bytes())
        container = self.server.container_client(self.bucket)
        return bytes(container.download_blob(location).readall())

    def write(self, location: str, data: bytes) -> None:
        if self.name == "s3":
            self.server.client().put_object(Bucket=self.bucket, Key=location, Body=data)
        elif self.name == "gcs":
            self.server.client().bucket(self.bucket).blob(location).upload_from_string(data)
        else:
            container = self.server.container_client(self.bucket)
            container.upload_blob(location, data, overwrite=True)

    def names(self) -> list[str]:
        """Every object name in the bucket."""
        if self.name == "s3":
            listing = self.server.client().list_objects_v2(Bucket=self.bucket)
            return sorted(item["Key"] for item in listing.get("Contents", []))
        if self.name == "gcs":
            return sorted(b.name for b in self.server.client().list_blobs(self.bucket))
        container = self.server.container_client(self.bucket)
        return sorted(blob.name for blob in container.list_blobs())

    # -- recognizing requests at the proxy ----------------------------------------------------
    def object_path(self, location: str) -> str:
        """The path (without query) of a download of ``location`` as the SDK sends it."""
        if self.name == "s3":
            return f"/{self.bucket}/{location}"
        if self.name == "gcs":
            return f"/download/storage/v1/b/{self.bucket}/o/{quote(location, safe='')}"
        return f"/{ACCOUNT_NAME}/{self.bucket}/{location}"

    def upload_path(self, location: str) -> str:
        """A substring of the path of an upload of ``location``."""
        if self.name == "gcs":  # a multipart POST; the object name is in the body
            return f"/upload/storage/v1/b/{self.bucket}/o"
        return self.object_path(location)

    def is_object_get(self, request: ProxiedRequest, location: str) -> bool:
        return request.method == "GET" and request.path.split("?")[0] == self.object_path(location)

    def is_upload(self, request: ProxiedRequest, location: str) -> bool:
        if request.method != self.upload_method or self.upload_path(location) not in request.path:
            return False
        # GCS: several objects go to one upload URL; the name is in the multipart body.
        return self.name != "gcs" or location.encode() in request.body


@pytest.fixture(params=BACKENDS)
def kit(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Kit:
    return Kit(request.param, request, monkeypatch)


@pytest.fixture
def s3_kit(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Kit:
    return Kit("s3", request, monkeypatch)


@pytest.fixture
def gcs_kit(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Kit:
    return Kit("gcs", request, monkeypatch)


@pytest.fixture
def azure_kit(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Kit:
    return Kit("azure", request, monkeypatch)


# -- flows ------------------------------------------------------------------------------------
@pytest.fixture
def flow_script(tmp_path: Path) -> Iterator[Path]:
    """The contract suite's two-flow script on disk (``contract-flow``, ``sibling-flow``)."""
    saved_path = list(sys.path)
    path = tmp_path / "scripts" / "contract_flows.py"
    path.parent.mkdir(parents=True)
    path.write_text(FLOW_SCRIPT)
    yield path
    sys.path[:] = saved_path  # loading a script puts its folder on sys.path


@pytest.fixture
def script_flow(flow_script: Path) -> Callable[[str], Flow]:
    """``script_flow(name)``: a flow of the script, loaded as ``register`` would (by value)."""
    return lambda name: extract_flow_from_file(file_path=str(flow_script), flow_name=name)


def settle(proxy: FaultProxy, quiet: float = 0.3, limit: float = 3.0) -> None:
    """Wait until the proxy has seen no new request for ``quiet`` seconds (SDKs may send
    requests from background threads)."""
    deadline = time.monotonic() + limit
    seen, since = len(proxy.requests), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        if len(proxy.requests) != seen:
            seen, since = len(proxy.requests), time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


def start_or_skip(server: ServerProcess) -> None:
    """Start a private server: skip when it is not installed (fail under CI), fail otherwise."""
    try:
        server.start()
        return
    except ServerNotInstalled as exc:
        if not os.environ.get("CI"):
            pytest.skip(str(exc))
        pytest.fail(f"{exc} (under CI a missing server is a failure)", pytrace=False)
    except ServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
