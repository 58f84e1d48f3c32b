"""S3 only: credentials (the ``AWS_CREDENTIALS`` secret, boto3's chain, none in
``client_options``), upload options, and keys that moto really checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from prefect_storage import context
from prefect_storage.exceptions import BackendAuthError, StorageConfigError
from prefect_storage.results import S3Result
from prefect_storage.storage import S3, Storage
from tests.backends.conftest import Kit
from tests.backends.support import moto_auth, moto_iam_keys
from tests.contract.rigs import FLOW_NAME
from tests.servers.faultproxy import FaultProxy, ProxiedRequest
from tests.servers.s3 import AWS_ACCESS_KEY_ID

ScriptFlow = Callable[[str], object]


def access_key_of(request: ProxiedRequest) -> str:
    """The access key id a SigV4-signed request names (``Credential=<KEY>/<date>/...``)."""
    authorization = request.headers.get("Authorization", "")
    assert "Credential=" in authorization, authorization
    return authorization.split("Credential=", 1)[1].split("/", 1)[0]


@pytest.fixture
def proxy(s3_kit: Kit) -> FaultProxy:
    return s3_kit.proxy()


@pytest.fixture
def iam_keys(s3_kit: Kit) -> Iterator[tuple[str, str]]:
    """Keys of an IAM user allowed ``s3:*``; moto checks keys and signatures meanwhile."""
    keys = moto_iam_keys(s3_kit.server.endpoint_url)
    with moto_auth(s3_kit.server.endpoint_url):
        yield keys


# -- no credentials in client options -----------------------------------------------------------
@pytest.mark.parametrize(
    "option", ["aws_access_key_id", "aws_secret_access_key", "aws_session_token"]
)
def test_credentials_in_client_options_are_refused(option: str) -> None:
    with pytest.raises(StorageConfigError) as caught:
        S3("bkt", client_options={"endpoint_url": "http://127.0.0.1:9", option: "AKIAXXXX"})
    assert option in str(caught.value)
    assert "AWS_CREDENTIALS" in str(caught.value)
    assert "AKIAXXXX" not in str(caught.value)
    with pytest.raises(StorageConfigError):
        S3Result("bkt", boto3_kwargs={option: "AKIAXXXX"})


def test_paired_result_has_the_same_bucket_and_client_options() -> None:
    options = {"endpoint_url": "http://127.0.0.1:9", "region_name": "eu-west-1"}
    storage = S3("bkt", client_options=options)
    assert isinstance(storage.result, S3Result)
    assert storage.result.bucket == "bkt"
    assert storage.result.boto3_kwargs == options


# -- where the keys come from -------------------------------------------------------------------
def test_aws_credentials_secret_in_the_context_signs_the_requests(
    s3_kit: Kit, proxy: FaultProxy, script_flow: ScriptFlow
) -> None:
    credentials = {"ACCESS_KEY": "AKIACONTEXTKEY000001", "SECRET_ACCESS_KEY": "context-secret"}
    with context(secrets={"AWS_CREDENTIALS": credentials}):
        storage = s3_kit.storage()
        storage.add_flow(script_flow(FLOW_NAME))
        storage.build()
        storage.get_flow(FLOW_NAME)

    assert [access_key_of(r) for r in proxy.requests] == ["AKIACONTEXTKEY000001"] * 2


def test_without_the_secret_boto3s_own_chain_is_used(
    s3_kit: Kit, proxy: FaultProxy, script_flow: ScriptFlow
) -> None:
    storage = s3_kit.storage()
    storage.add_flow(script_flow(FLOW_NAME))
    storage.build()

    [upload] = proxy.requests
    assert access_key_of(upload) == AWS_ACCESS_KEY_ID  # the environment the fixture set


def test_a_session_token_in_the_secret_is_sent(
    s3_kit: Kit, proxy: FaultProxy, script_flow: ScriptFlow
) -> None:
    credentials = {
        "ACCESS_KEY": "ASIATEMPORARYKEY0001",
        "SECRET_ACCESS_KEY": "temporary-secret",
        "SESSION_TOKEN": "the-session-token",
    }
    storage = s3_kit.storage()
    storage.add_flow(script_flow(FLOW_NAME))
    with context(secrets={"AWS_CREDENTIALS": credentials}):
        storage.build()

    [upload] = proxy.requests
    assert access_key_of(upload) == "ASIATEMPORARYKEY0001"
    assert upload.headers.get("X-Amz-Security-Token") == "the-session-token"


def test_secret_keys_are_checked_by_the_server(
    s3_kit: Kit, iam_keys: tuple[str, str], script_flow: ScriptFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With moto's IAM authentication on, only the IAM user's real keys work: the
    ``AWS_CREDENTIALS`` secret is what signs, whatever the environment says."""
    access_key, secret_key = iam_keys
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)  # the right user, the wrong secret
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-environment-secret")
    credentials = {"ACCESS_KEY": access_key, "SECRET_ACCESS_KEY": secret_key}
    storage = s3_kit.storage()
    storage.add_flow(script_flow(FLOW_NAME))
    with context(secrets={"AWS_CREDENTIALS": credentials}):
        storage.build()
        assert Storage.deserialize(storage.serialize()).get_flow(FLOW_NAME).name == FLOW_NAME

    fresh = Storage.deserialize(storage.serialize())  # outside the context: the environment
    with pytest.raises(BackendAuthError) as caught:
        fresh.get_flow(FLOW_NAME)
    assert "SignatureDoesNotMatch" in str(caught.value)
    assert "AWS_CREDENTIALS" in str(caught.value)  # the likely fix
    assert secret_key not in str(caught.value)

    wrong = {"ACCESS_KEY": "AKIANOSUCHKEY0000001", "SECRET_ACCESS_KEY": secret_key}
    with context(secrets={"AWS_CREDENTIALS": wrong}), pytest.raises(BackendAuthError) as unknown:
        Storage.deserialize(storage.serialize()).get_flow(FLOW_NAME)
    assert "InvalidAccessKeyId" in str(unknown.value)


def test_no_credentials_at_all_is_an_auth_error(
    s3_kit: Kit, script_flow: ScriptFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role look-up
    storage = s3_kit.storage()
    storage.add_flow(script_flow(FLOW_NAME))

    with pytest.raises(BackendAuthError, match="no AWS credentials found"):
        storage.build()


# -- upload and client options ------------------------------------------------------------------
def test_upload_options_go_with_each_upload(s3_kit: Kit, script_flow: ScriptFlow) -> None:
    storage = s3_kit.storage(
        upload_options={"Metadata": {"team": "data"}, "ContentType": "application/json"}
    )
    location = storage.add_flow(script_flow(FLOW_NAME))
    storage.build()

    head = s3_kit.server.client().head_object(Bucket=s3_kit.bucket, Key=location)
    assert head["Metadata"] == {"team": "data"}
    assert head["ContentType"] == "application/json"


def test_client_options_reach_boto3(s3_kit: Kit) -> None:
    storage = S3(
        s3_kit.bucket,
        client_options={"endpoint_url": s3_kit.server.endpoint_url, "region_name": "eu-west-3"},
    )
    assert storage.client.meta.region_name == "eu-west-3"
    assert storage.client.meta.endpoint_url == s3_kit.server.endpoint_url
