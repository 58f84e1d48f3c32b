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
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar
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


class Kit(ABC):
    """One backend on its real server, with a fresh bucket (see the module docstring).

    Each backend's subclass says only what differs: its server fixture, how a storage and a
    result are made, how the bucket is read behind the storage's back, and what its SDK's
    requests look like at a proxy.
    """

    name: ClassVar[str]
    server_fixture: ClassVar[str]
    key_argument: ClassVar[str] = "key"
    """The storage argument that pins every flow to one location."""
    upload_method: ClassVar[str] = "PUT"

    def __init__(self, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
        self.server: Any = request.getfixturevalue(self.server_fixture)
        self._fault_proxy: Callable[[str], FaultProxy] = request.getfixturevalue("fault_proxy")
        self._monkeypatch = monkeypatch
        self.bucket = self.new_bucket()
        self.endpoint = ""
        self.use_endpoint(self.server_url)

    def __repr__(self) -> str:
        return f"<Kit {self.name} bucket={self.bucket}>"

    # -- where storages connect ----------------------------------------------------------------
    @property
    @abstractmethod
    def server_url(self) -> str:
        """The server's own base URL (what a fault proxy targets)."""

    def use_endpoint(self, url: str) -> None:
        """Storages and results made from now on talk to ``url`` (the user's way)."""
        self.endpoint = url

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
        storage = self._storage(bucket or self.bucket, **kwargs)
        if retry_policy is not None:
            storage.retry_policy = retry_policy
        return storage

    def result(self, bucket: str | None = None, **kwargs: Any) -> Result:
        result = self._result(bucket or self.bucket, **kwargs)
        result.retry_policy = FAST
        return result

    @abstractmethod
    def _storage(self, bucket: str, **kwargs: Any) -> BucketStorage: ...

    @abstractmethod
    def _result(self, bucket: str, **kwargs: Any) -> Result: ...

    def fixed(self, location: str) -> dict[str, str]:
        """Storage kwargs that pin every flow to ``location`` (``key`` / ``blob_name``)."""
        return {self.key_argument: location}

    # -- the bucket behind the storage's back (straight to the server, never proxied) ----------
    def new_bucket(self) -> str:
        return str(self.server.new_bucket())

    @abstractmethod
    def read(self, location: str) -> bytes: ...

    @abstractmethod
    def write(self, location: str, data: bytes) -> None: ...

    @abstractmethod
    def names(self) -> list[str]:
        """Every object name in the bucket."""

    # -- recognizing requests at the proxy ----------------------------------------------------
    @abstractmethod
    def object_path(self, location: str) -> str:
        """The path (without query) of a download of ``location`` as the SDK sends it."""

    def upload_path(self, location: str) -> str:
        """A substring of the path of an upload of ``location``."""
        return self.object_path(location)

    def is_object_get(self, request: ProxiedRequest, location: str) -> bool:
        return request.method == "GET" and request.path.split("?")[0] == self.object_path(location)

    def is_upload(self, request: ProxiedRequest, location: str) -> bool:
        return request.method == self.upload_method and self.upload_path(location) in request.path


class S3Kit(Kit):
    """moto; storages get ``client_options={"endpoint_url": ...}``."""

    name = "s3"
    server_fixture = "s3"

    @property
    def server_url(self) -> str:
        return str(self.server.endpoint_url)

    def _storage(self, bucket: str, **kwargs: Any) -> BucketStorage:
        return S3(bucket, client_options={"endpoint_url": self.endpoint}, **kwargs)

    def _result(self, bucket: str, **kwargs: Any) -> Result:
        return S3Result(bucket, boto3_kwargs={"endpoint_url": self.endpoint}, **kwargs)

    def read(self, location: str) -> bytes:
        response = self.server.client().get_object(Bucket=self.bucket, Key=location)
        return bytes(response["Body"].read())

    def write(self, location: str, data: bytes) -> None:
        self.server.client().put_object(Bucket=self.bucket, Key=location, Body=data)

    def names(self) -> list[str]:
        listing = self.server.client().list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def object_path(self, location: str) -> str:
        return f"/{self.bucket}/{location}"


class GCSKit(Kit):
    """gcp-storage-emulator; storages find it through ``STORAGE_EMULATOR_HOST``."""

    name = "gcs"
    server_fixture = "gcs"
    upload_method = "POST"

    @property
    def server_url(self) -> str:
        return str(self.server.endpoint)

    def use_endpoint(self, url: str) -> None:
        super().use_endpoint(url)
        self._monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)

    def _storage(self, bucket: str, **kwargs: Any) -> BucketStorage:
        return GCS(bucket, project="test", **kwargs)

    def _result(self, bucket: str, **kwargs: Any) -> Result:
        return GCSResult(bucket, **kwargs)

    def _blob(self, location: str) -> Any:
        return self.server.client().bucket(self.bucket).blob(location)

    def read(self, location: str) -> bytes:
        return bytes(self._blob(location).download_as_bytes())

    def write(self, location: str, data: bytes) -> None:
        self._blob(location).upload_from_string(data)

    def names(self) -> list[str]:
        return sorted(b.name for b in self.server.client().list_blobs(self.bucket))

    def object_path(self, location: str) -> str:
        return f"/download/storage/v1/b/{self.bucket}/o/{quote(location, safe='')}"

    def upload_path(self, location: str) -> str:
        return f"/upload/storage/v1/b/{self.bucket}/o"  # a multipart POST; the name is in the body

    def is_upload(self, request: ProxiedRequest, location: str) -> bool:
        # Several objects go to one upload URL; the name is in the multipart body.
        return super().is_upload(request, location) and location.encode() in request.body


class AzureKit(Kit):
    """Azurite; storages find it through ``AZURE_STORAGE_CONNECTION_STRING``."""

    name = "azure"
    server_fixture = "azurite"
    key_argument = "blob_name"

    def __init__(self, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
        super().__init__(request, monkeypatch)

    @property
    def server_url(self) -> str:
        return str(self.server.url)

    def use_endpoint(self, url: str) -> None:
        super().use_endpoint(url)
        self._monkeypatch.setenv(
            "AZURE_STORAGE_CONNECTION_STRING", self.server.connection_string_for(url)
        )

    def _storage(self, bucket: str, **kwargs: Any) -> BucketStorage:
        return Azure(bucket, **kwargs)

    def _result(self, bucket: str, **kwargs: Any) -> Result:
        return AzureResult(bucket, **kwargs)

    def new_bucket(self) -> str:
        return str(self.server.new_container())

    def read(self, location: str) -> bytes:
        container = self.server.container_client(self.bucket)
        return bytes(container.download_blob(location).readall())

    def write(self, location: str, data: bytes) -> None:
        container = self.server.container_client(self.bucket)
        container.upload_blob(location, data, overwrite=True)

    def names(self) -> list[str]:
        container = self.server.container_client(self.bucket)
        return sorted(blob.name for blob in container.list_blobs())

    def object_path(self, location: str) -> str:
        return f"/{ACCOUNT_NAME}/{self.bucket}/{location}"


KITS: dict[str, type[Kit]] = {kit.name: kit for kit in (S3Kit, GCSKit, AzureKit)}


@pytest.fixture(params=list(KITS))
def kit(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Kit:
    return KITS[request.param](request, monkeypatch)


@pytest.fixture
def s3_kit(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Kit:
    return S3Kit(request, monkeypatch)


@pytest.fixture
def gcs_kit(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Kit:
    return GCSKit(request, monkeypatch)


@pytest.fixture
def azure_kit(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Kit:
    return AzureKit(request, monkeypatch)


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
