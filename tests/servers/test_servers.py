"""Smoke tests of the local object-store servers and the fault proxy, with the official SDKs."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator

import boto3
import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from botocore.exceptions import ClientError, EndpointConnectionError
from google.api_core.exceptions import NotFound, ServiceUnavailable
from google.cloud import storage

from tests.servers import s3 as s3_module
from tests.servers.azurite import Azurite
from tests.servers.faultproxy import FaultProxy
from tests.servers.gcs import GCSEmulator
from tests.servers.s3 import MotoServer, ServerProcess, ServerUnavailable

ONE_ATTEMPT = {"total_max_attempts": 1}
"""boto3 ``retries`` config for exactly one attempt. In botocore's client config,
``max_attempts`` counts *retries* in every mode: ``{"max_attempts": 1}`` means two attempts."""


# -- S3 (moto) ---------------------------------------------------------------------------------
def test_s3_put_get_and_missing(s3: MotoServer) -> None:
    client = s3.client()
    bucket = s3.new_bucket()
    client.put_object(Bucket=bucket, Key="flows/flow.bin", Body=b"payload")
    assert client.get_object(Bucket=bucket, Key="flows/flow.bin")["Body"].read() == b"payload"
    with pytest.raises(client.exceptions.NoSuchKey):
        client.get_object(Bucket=bucket, Key="flows/missing.bin")
    with pytest.raises(client.exceptions.NoSuchBucket):
        client.get_object(Bucket="no-such-bucket", Key="flows/flow.bin")
    with pytest.raises(ClientError) as head:  # HEAD has no body: code "404", not NoSuchKey
        client.head_object(Bucket=bucket, Key="flows/missing.bin")
    assert head.value.response["Error"]["Code"] == "404"


def test_s3_fixture_sets_dummy_credentials(s3: MotoServer) -> None:
    client = boto3.client("s3", endpoint_url=s3.endpoint_url)  # keys and region from the env
    client.create_bucket(Bucket="from-env")
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["from-env"]


@pytest.mark.parametrize("round_", [1, 2])
def test_s3_is_reset_between_tests(s3: MotoServer, round_: int) -> None:
    client = s3.client()
    assert client.list_buckets()["Buckets"] == []
    client.create_bucket(Bucket="same-name-each-time")


def test_private_moto_server_can_be_stopped_mid_test(
    moto_server_factory: Callable[[], MotoServer], s3: MotoServer
) -> None:
    server = moto_server_factory()
    assert server.endpoint_url != s3.endpoint_url
    client = server.client(retries=ONE_ATTEMPT)
    client.create_bucket(Bucket="private")
    server.stop()
    assert not server.running
    with pytest.raises(EndpointConnectionError):
        client.list_buckets()
    assert s3.client().list_buckets()["Buckets"] == []  # the shared server is untouched


# -- GCS (gcp-storage-emulator) ----------------------------------------------------------------
def test_gcs_put_get_and_missing(gcs: GCSEmulator) -> None:
    bucket = gcs.client().bucket(gcs.new_bucket())
    bucket.blob("flows/flow.bin").upload_from_string(b"payload")
    assert bucket.blob("flows/flow.bin").download_as_bytes() == b"payload"
    assert bucket.blob("flows/flow.bin").exists()
    assert not bucket.blob("flows/missing.bin").exists()
    assert bucket.get_blob("flows/missing.bin") is None
    with pytest.raises(NotFound):
        bucket.blob("flows/missing.bin").download_as_bytes()
    missing_bucket = gcs.client().bucket("no-such-bucket")
    assert not missing_bucket.exists()
    with pytest.raises(NotFound):
        missing_bucket.blob("flows/flow.bin").download_as_bytes()
    with pytest.raises(NotFound):
        gcs.client().get_bucket("no-such-bucket")


def test_gcs_fixture_sets_emulator_host(gcs: GCSEmulator) -> None:
    client = storage.Client(project="test")  # STORAGE_EMULATOR_HOST: anonymous, at the emulator
    client.create_bucket("from-env").blob("a").upload_from_string(b"1")
    assert gcs.client().bucket("from-env").blob("a").download_as_bytes() == b"1"


@pytest.mark.parametrize("round_", [1, 2])
def test_gcs_is_wiped_between_tests(gcs: GCSEmulator, round_: int) -> None:
    client = gcs.client()
    assert list(client.list_buckets()) == []
    client.create_bucket("same-name-each-time")


# -- Azure Blob (Azurite) ----------------------------------------------------------------------
def test_azurite_put_get_and_missing(azurite: Azurite) -> None:
    container = azurite.container_client(azurite.new_container())
    container.upload_blob("flows/flow.bin", b"payload")
    assert container.download_blob("flows/flow.bin").readall() == b"payload"
    assert container.get_blob_client("flows/flow.bin").exists()
    with pytest.raises(ResourceNotFoundError) as missing:
        container.download_blob("flows/missing.bin").readall()
    assert missing.value.error_code == "BlobNotFound"
    with pytest.raises(ResourceNotFoundError) as no_container:
        azurite.container_client("no-such-container").download_blob("flows/flow.bin")
    assert no_container.value.error_code == "ContainerNotFound"


def test_azurite_bad_key_is_an_auth_error(azurite: Azurite) -> None:
    name = azurite.new_container()
    azurite.container_client(name).upload_blob("flow.bin", b"payload")
    bad = azurite.container_client(name, conn_str=azurite.bad_connection_string)
    with pytest.raises(HttpResponseError) as denied:
        bad.download_blob("flow.bin").readall()
    assert denied.value.status_code == 403
    assert denied.value.error_code == "AuthorizationFailure"


def test_azurite_containers_are_unique_and_reset(azurite: Azurite) -> None:
    first, second = azurite.new_container(), azurite.new_container()
    assert first != second
    azurite.reset()
    assert list(azurite.service_client().list_containers()) == []


# -- the fault proxy ---------------------------------------------------------------------------
def test_proxy_forwards_boto3_and_injects_503(
    s3: MotoServer, fault_proxy: Callable[[str], FaultProxy]
) -> None:
    proxy = fault_proxy(s3.endpoint_url)
    client = s3.client(endpoint_url=proxy.url, retries=ONE_ATTEMPT)
    client.create_bucket(Bucket="bkt")
    client.put_object(Bucket="bkt", Key="flow.bin", Body=b"payload")
    assert client.get_object(Bucket="bkt", Key="flow.bin")["Body"].read() == b"payload"
    assert proxy.count("GET", "/bkt/flow.bin") == 1
    assert [(r.method, r.path, r.status) for r in proxy.requests] == [
        ("PUT", "/bkt", 200),
        ("PUT", "/bkt/flow.bin", 200),
        ("GET", "/bkt/flow.bin", 200),
    ]

    proxy.fail_next(503, 2)
    raw = requests.get(f"{proxy.url}/bkt/flow.bin", timeout=10)
    assert raw.status_code == 503
    assert raw.headers["x-fault-proxy"] == "injected"
    with pytest.raises(ClientError) as slow_down:
        client.get_object(Bucket="bkt", Key="flow.bin")
    assert slow_down.value.response["Error"]["Code"] == "SlowDown"
    assert slow_down.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert client.get_object(Bucket="bkt", Key="flow.bin")["Body"].read() == b"payload"
    assert proxy.count("GET", "/bkt/flow.bin") == 4
    assert [r.injected for r in proxy.requests[-3:]] == [True, True, False]

    # {"max_attempts": 1} is one retry: two injected 503s surface, a single one does not.
    one_retry = s3.client(endpoint_url=proxy.url, retries={"max_attempts": 1})
    proxy.fail_next(503, 2)
    with pytest.raises(ClientError) as both_failed:
        one_retry.get_object(Bucket="bkt", Key="flow.bin")
    assert both_failed.value.response["Error"]["Code"] == "SlowDown"
    assert proxy.count("GET", "/bkt/flow.bin") == 6


def test_proxy_forwards_chunked_bodies_and_drops(
    s3: MotoServer, fault_proxy: Callable[[str], FaultProxy]
) -> None:
    proxy = fault_proxy(s3.endpoint_url)
    s3.client().create_bucket(Bucket="bkt")

    def body() -> Iterator[bytes]:  # requests sends a generator with Transfer-Encoding: chunked
        yield b"first,"
        yield b"second"

    assert requests.put(f"{proxy.url}/bkt/chunked", data=body(), timeout=10).status_code == 200
    assert proxy.requests[-1].headers.get("Transfer-Encoding") == "chunked"
    assert s3.client().get_object(Bucket="bkt", Key="chunked")["Body"].read() == b"first,second"

    proxy.drop_next()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{proxy.url}/bkt/chunked", timeout=10)
    proxy.reset()
    client = s3.client(endpoint_url=proxy.url, retries=ONE_ATTEMPT)
    assert client.get_object(Bucket="bkt", Key="chunked")["Body"].read() == b"first,second"
    assert [(r.method, r.injected) for r in proxy.requests] == [("GET", False)]


def test_proxy_answers_502_when_the_target_is_gone(
    moto_server_factory: Callable[[], MotoServer], fault_proxy: Callable[[str], FaultProxy]
) -> None:
    server = moto_server_factory()
    proxy = fault_proxy(server.endpoint_url)
    server.stop()
    assert requests.get(f"{proxy.url}/bkt/key", timeout=10).status_code == 502


def test_proxy_forwards_gcs(gcs: GCSEmulator, fault_proxy: Callable[[str], FaultProxy]) -> None:
    proxy = fault_proxy(gcs.endpoint)
    client = gcs.client(endpoint=proxy.url)  # STORAGE_EMULATOR_HOST is set too: still proxied
    bucket = client.create_bucket("bkt")
    bucket.blob("flow.bin").upload_from_string(b"payload")
    assert bucket.blob("flow.bin").download_as_bytes() == b"payload"
    assert bucket.get_blob("flow.bin").download_as_bytes() == b"payload"  # via mediaLink
    assert bucket.blob("flow.bin").exists()
    assert proxy.count("GET", "/download/storage/v1/b/bkt/o/flow.bin") == 2
    assert len(proxy.requests) == 6

    proxy.fail_next(503, method="GET", path_contains="/o/flow.bin")
    with pytest.raises(ServiceUnavailable):
        bucket.blob("flow.bin").download_as_bytes(retry=None)


def test_proxy_forwards_azure_with_valid_signatures(
    azurite: Azurite, fault_proxy: Callable[[str], FaultProxy]
) -> None:
    proxy = fault_proxy(azurite.url)
    through_proxy = azurite.connection_string_for(proxy.url)
    container = azurite.container_client(azurite.new_container(), conn_str=through_proxy)
    container.upload_blob("dir/a b+c?.bin", b"payload")  # quoting must survive byte for byte
    assert container.download_blob("dir/a b+c?.bin").readall() == b"payload"
    assert proxy.count("GET") == 1

    proxy.fail_next(503)
    once = azurite.service_client(through_proxy, retry_total=0)
    with pytest.raises(HttpResponseError) as busy:
        once.get_container_client(container.container_name).download_blob("dir/a b+c?.bin")
    assert busy.value.status_code == 503
    assert busy.value.error_code == "ServerBusy"


# -- start-up failures -------------------------------------------------------------------------
class _DiesAtOnce(ServerProcess):
    name = "dies-at-once"

    def command(self) -> list[str]:
        return [sys.executable, "-c", "import sys; sys.exit('cannot start: boom')"]


def test_a_server_that_exits_reports_its_own_output() -> None:
    with pytest.raises(ServerUnavailable, match=r"(?s)exited with code 1.*cannot start: boom"):
        _DiesAtOnce().start()


def test_a_port_taken_before_the_server_binds_it_is_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])
        free_port = s3_module.free_port
        monkeypatch.setattr(s3_module, "free_port", lambda: next(ports, None) or free_port())
        with GCSEmulator() as server:
            assert server.port != taken.getsockname()[1]
            assert server.client().create_bucket("works").exists()
