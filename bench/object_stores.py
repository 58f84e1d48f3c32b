"""S3 (moto), GCS (gcp-storage-emulator) and Azure (Azurite): build and get_flow latency for a
10-task flow, and the HTTP requests one get_flow makes.

The servers are started here, on loopback, with the test suite's own wrappers
(``tests/servers``). For each backend, medians over ``RUNS`` runs of:

- ``build``: ``storage.build()`` of an added flow (pickle envelope + one upload), warm client;
- ``get``: ``storage.get_flow()`` on the same storage (one download + checks + unpickle);
- ``cold get``: ``Storage.deserialize(payload).get_flow()``, as an agent does (client included);

against a baseline measured in the same run: the SDK's own put / get of the same envelope
bytes (warm client), and for ``cold get`` a new SDK client plus that get. Requests per
get_flow are counted through a FaultProxy from fresh storages (target: exactly one object
GET, and nothing else). Prints only; never fails.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from prefect_storage import Flow, task  # noqa: E402  (after the path tweak)
from prefect_storage.storage import GCS, S3, Azure, Storage  # noqa: E402

RUNS = 20
TASKS = 10
SETTLE = 0.3
"""Seconds without a new request before a get_flow's requests are counted (SDKs may send
requests from background threads)."""


@task
def step(value: int) -> int:
    return value + 1


def make_flow() -> Flow:
    with Flow("bench-object-stores") as flow:
        value = step(0)
        for _ in range(TASKS - 1):
            value = step(value)
    return flow


def median_ms(fn: Callable[[], object], runs: int = RUNS) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def settle(proxy: Any) -> None:
    seen, since = len(proxy.requests), time.monotonic()
    deadline = since + 5
    while time.monotonic() < deadline:
        time.sleep(0.02)
        if len(proxy.requests) != seen:
            seen, since = len(proxy.requests), time.monotonic()
        elif time.monotonic() - since >= SETTLE:
            return


class Backend:
    """How to reach one server, as a user would, and its raw SDK calls."""

    name = ""

    def __init__(self, server: Any) -> None:
        self.server = server

    def storage(self, endpoint: str) -> Storage:
        raise NotImplementedError

    def raw_client(self) -> Any:
        raise NotImplementedError

    def raw_put(self, client: Any, key: str, data: bytes) -> None:
        raise NotImplementedError

    def raw_get(self, client: Any, key: str) -> bytes:
        raise NotImplementedError

    def object_path(self, key: str) -> str:
        raise NotImplementedError

    @property
    def url(self) -> str:
        raise NotImplementedError


class S3Backend(Backend):
    name = "S3 (moto)"

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self.bucket = server.new_bucket("bench")

    @property
    def url(self) -> str:
        return str(self.server.endpoint_url)

    def storage(self, endpoint: str) -> Storage:
        return S3(self.bucket, client_options={"endpoint_url": endpoint})

    def raw_client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            config=Config(retries={"total_max_attempts": 1}),
        )

    def raw_put(self, client: Any, key: str, data: bytes) -> None:
        client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def raw_get(self, client: Any, key: str) -> bytes:
        return bytes(client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def object_path(self, key: str) -> str:
        return f"/{self.bucket}/{key}"


class GCSBackend(Backend):
    name = "GCS (emulator)"

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self.bucket = server.new_bucket("bench")

    @property
    def url(self) -> str:
        return str(self.server.endpoint)

    def storage(self, endpoint: str) -> Storage:
        os.environ["STORAGE_EMULATOR_HOST"] = endpoint
        return GCS(self.bucket, project="test")

    def raw_client(self) -> Any:
        os.environ["STORAGE_EMULATOR_HOST"] = self.url
        from google.cloud import storage

        return storage.Client(project="test")

    def raw_put(self, client: Any, key: str, data: bytes) -> None:
        client.bucket(self.bucket).blob(key).upload_from_string(data, retry=None)

    def raw_get(self, client: Any, key: str) -> bytes:
        return bytes(client.bucket(self.bucket).blob(key).download_as_bytes(retry=None))

    def object_path(self, key: str) -> str:
        return f"/download/storage/v1/b/{self.bucket}/o/{quote(key, safe='')}"


class AzureBackend(Backend):
    name = "Azure (Azurite)"

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self.container = server.new_container("bench")

    @property
    def url(self) -> str:
        return str(self.server.url)

    def storage(self, endpoint: str) -> Storage:
        os.environ["AZURE_STORAGE_CONNECTION_STRING"] = self.server.connection_string_for(endpoint)
        return Azure(self.container, overwrite=True)  # build() runs again and again

    def raw_client(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(
            self.server.connection_string, retry_total=0
        ).get_container_client(self.container)

    def raw_put(self, client: Any, key: str, data: bytes) -> None:
        client.upload_blob(key, data, overwrite=True)

    def raw_get(self, client: Any, key: str) -> bytes:
        return bytes(client.download_blob(key).readall())

    def object_path(self, key: str) -> str:
        return f"/devstoreaccount1/{self.container}/{key}"


def measure(backend: Backend, flow: Flow) -> dict[str, Any]:
    from tests.servers.faultproxy import FaultProxy

    storage = backend.storage(backend.url)
    storage.add_flow(flow)
    storage.build()
    location = storage.flows[flow.name]
    payload = storage.serialize()
    envelope = backend.raw_get(backend.raw_client(), location)
    raw = backend.raw_client()
    row: dict[str, Any] = {
        "build": median_ms(storage.build),
        "raw put": median_ms(lambda: backend.raw_put(raw, "raw/envelope", envelope)),
        "get": median_ms(lambda: storage.get_flow(flow.name)),
        "raw get": median_ms(lambda: backend.raw_get(raw, "raw/envelope")),
        "cold get": median_ms(lambda: Storage.deserialize(payload).get_flow(flow.name)),
        "raw cold get": median_ms(lambda: backend.raw_get(backend.raw_client(), "raw/envelope")),
        "bytes": len(envelope),
    }

    with FaultProxy(backend.url) as proxy:
        proxied = backend.storage(proxy.url)
        proxied.flows = dict(storage.flows)
        proxied_payload = proxied.serialize()
        settle(proxy)
        object_gets, others = [], []
        for _ in range(5):
            proxy.reset()
            Storage.deserialize(proxied_payload).get_flow(flow.name)  # a fresh agent's load
            settle(proxy)
            path = backend.object_path(location)
            gets = [r for r in proxy.requests if r.method == "GET" and r.path.split("?")[0] == path]
            object_gets.append(len(gets))
            others.append([(r.method, r.path) for r in proxy.requests if r not in gets])
        row["object GETs"] = statistics.mean(object_gets)
        row["other requests"] = statistics.mean(len(o) for o in others)
        row["other examples"] = sorted({f"{m} {p.split('?')[0]}" for o in others for m, p in o})
    backend.storage(backend.url)  # point the environment back at the server
    return row


def main() -> None:
    os.environ["PREFECT_STORAGE_HOME"] = tempfile.mkdtemp(prefix="bench-home-")
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    from tests.servers.azurite import Azurite
    from tests.servers.gcs import GCSEmulator
    from tests.servers.s3 import MotoServer

    flow = make_flow()
    print(f"{TASKS}-task flow, medians of {RUNS} runs (ms); ratio = storage / raw SDK")
    header = (
        f"{'backend':<16} {'build':>7} {'raw put':>8} {'ratio':>6} {'get':>7} {'raw get':>8} "
        f"{'ratio':>6} {'cold get':>9} {'raw cold':>9} {'ratio':>6} {'GETs/get':>9} {'other':>6}"
    )
    print(header)
    notes = []
    for server_class, backend_class in (
        (MotoServer, S3Backend),
        (GCSEmulator, GCSBackend),
        (Azurite, AzureBackend),
    ):
        server = server_class()
        try:
            server.start()
            backend = backend_class(server)
            row = measure(backend, flow)
        except Exception as exc:  # prints only, never fails
            print(f"{backend_class.name:<16} skipped: {type(exc).__name__}: {exc}".splitlines()[0])
            traceback.print_exc(limit=2)
            continue
        finally:
            server.stop()
        print(
            f"{backend.name:<16} {row['build']:>7.2f} {row['raw put']:>8.2f} "
            f"{row['build'] / row['raw put']:>6.2f} {row['get']:>7.2f} {row['raw get']:>8.2f} "
            f"{row['get'] / row['raw get']:>6.2f} {row['cold get']:>9.2f} "
            f"{row['raw cold get']:>9.2f} {row['cold get'] / row['raw cold get']:>6.2f} "
            f"{row['object GETs']:>9.1f} {row['other requests']:>6.1f}"
        )
        met = row["object GETs"] == 1 and row["other requests"] == 0
        verdict = "met" if met else "NOT met"
        detail = f" (also: {', '.join(row['other examples'])})" if row["other examples"] else ""
        notes.append(
            f"{backend.name}: envelope {row['bytes']:,} bytes; one object GET per get_flow, "
            f"nothing else: {verdict}{detail}"
        )
    print("\n".join(notes))
    print(
        "build = pickle envelope + upload (warm client); get = download + digest/version checks"
        " + unpickle; cold get = deserialize storage + new client + get, as an agent loads;"
        " raw = the SDK's put/get of the same envelope bytes; GETs/get and other = requests seen"
        " by a proxy per get_flow of a fresh storage"
    )


if __name__ == "__main__":
    main()
