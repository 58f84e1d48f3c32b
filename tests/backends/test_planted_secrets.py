"""No credential of S3, GCS or Azure ever shows. Unique tokens are planted as the AWS secret
access key (the ``AWS_CREDENTIALS`` secret and the environment; a session token has a test of
its own below), the Azure account key (a private Azurite whose only account has that key, so
the planted key is the one that really signs), and a GCP service account's private key and
access token. After build / get_flow / run / serialize / repr / errors (auth failures
included) with logging at DEBUG, the tokens are searched for in everything observable:
payloads, reprs, log text, exception texts and tracebacks, files under the home folder but
``secrets.toml``, and every stored object."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from prefect_storage import context
from prefect_storage.engine.flow import Flow
from prefect_storage.exceptions import (
    BackendAuthError,
    BackendUnavailableError,
    FlowStorageError,
)
from prefect_storage.results import AzureResult
from prefect_storage.secrets import ENV_PREFIX, set_secret
from prefect_storage.storage import GCS, S3, Azure, Storage
from tests.backends.conftest import start_or_skip
from tests.backends.support import (
    FAST,
    TokenServer,
    moto_auth,
    moto_iam_keys,
    private_key_fragments,
    service_account_info,
)
from tests.contract.rigs import FLOW_NAME, SIBLING_NAME
from tests.servers.azurite import Azurite
from tests.servers.gcs import GCSEmulator
from tests.servers.s3 import MotoServer, free_port, http_answers

ScriptFlow = Callable[[str], Flow]
PLANTED_ACCOUNT = "plantedaccount"


def _token(kind: str) -> str:
    return f"leak-{kind}-{uuid.uuid4().hex}"


class PlantedAzurite(Azurite):
    """Azurite whose only account is ``plantedaccount`` with a key made for this test run."""

    name = "azurite-blob (planted account)"

    def __init__(self) -> None:
        super().__init__()
        self.account_key = base64.b64encode(os.urandom(48)).decode()

    def environment(self) -> dict[str, str]:
        accounts = f"{PLANTED_ACCOUNT}:{self.account_key}"
        return {**super().environment(), "AZURITE_ACCOUNTS": accounts}

    def ready(self) -> bool:
        assert self.port is not None
        return http_answers(self.port, f"/{PLANTED_ACCOUNT}?comp=list")

    def planted_connection_string(self, key: str | None = None) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={PLANTED_ACCOUNT};"
            f"AccountKey={key or self.account_key};BlobEndpoint={self.url}/{PLANTED_ACCOUNT};"
        )


@pytest.fixture(scope="module")
def planted_azurite() -> Iterator[PlantedAzurite]:
    server = PlantedAzurite()
    start_or_skip(server)
    yield server
    server.stop()


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer(access_token=_token("gcp-access-token")).start()
    yield server
    server.stop()


# -- searching ----------------------------------------------------------------------------------
def _error_texts(exc: BaseException) -> dict[str, str]:
    name = type(exc).__name__
    return {
        f"str({name})": str(exc),
        f"repr({name})": repr(exc),
        f"traceback of {name}": "".join(traceback.format_exception(exc)),
    }


def _assert_absent(tokens: Iterable[str], where: dict[str, str | bytes]) -> None:
    leaks = []
    for token in tokens:
        for label, text in where.items():
            needle: Any = token.encode() if isinstance(text, bytes) else token
            at = text.find(needle)
            if at >= 0:
                before = text[max(0, at - 80) : at]
                leaks.append(f"{token[:16]}... in {label}, after {before!r}")
    assert leaks == []


def _home_files(home: Path) -> dict[str, str | bytes]:
    return {
        f"home file {p.relative_to(home)}": p.read_bytes()
        for p in home.rglob("*")
        if p.is_file() and p.name != "secrets.toml"
    }


# -- the test -----------------------------------------------------------------------------------
def test_no_planted_credential_leaks_from_object_stores(
    s3: MotoServer,
    gcs: GCSEmulator,
    planted_azurite: PlantedAzurite,
    token_server: TokenServer,
    script_flow: ScriptFlow,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    try:
        gcp_info = service_account_info(token_server.token_uri)
    except ImportError as exc:
        pytest.skip(f"generating a service-account key needs `cryptography` ({exc})")
    tokens = {
        "aws context secret key": _token("aws-ctx-secret"),
        "aws environment secret key": _token("aws-env-secret"),
        "aws refused secret key": _token("aws-bad-secret"),
        "azure account key": planted_azurite.account_key,
        "azure refused account key": base64.b64encode(os.urandom(48)).decode(),
        "azure malformed string": _token("azure-malformed"),
        "gcp private key id": gcp_info["private_key_id"],
        "gcp access token": token_server.access_token,
    }
    for number, fragment in enumerate(private_key_fragments(gcp_info)):
        tokens[f"gcp private key line {number}"] = fragment
    observed: dict[str, str | bytes] = {}
    errors: list[BaseException] = []
    storages: list[Storage] = []
    flows: list[Flow] = []

    def round_trip(storage: Storage, name: str) -> None:
        """add_flow, build, serialize, deserialize, get_flow and run, as register + agent do."""
        flow = script_flow(name)
        flow.storage = storage
        flow.result = storage.result
        storage.add_flow(flow)
        storage.build()
        rebuilt = Storage.deserialize(json.loads(json.dumps(storage.serialize())))
        rebuilt.retry_policy = FAST  # type: ignore[attr-defined]
        loaded = rebuilt.get_flow(name)
        state = loaded.run()
        assert state.is_successful(), state
        observed[f"repr of the {name} run state of {storage!r}"] = repr(state) + repr(
            list(state.result.values())
        )
        storages.append(storage)
        flows.extend([flow, loaded])

    def expect_error(kind: type[BaseException], action: Callable[[], object]) -> None:
        with pytest.raises(kind) as caught:
            action()
        errors.append(caught.value)

    # -- S3: AWS_CREDENTIALS in the run context, then the environment ---------------------------
    s3_bucket = s3.new_bucket()
    s3_options = {"endpoint_url": s3.endpoint_url}
    context_credentials = {
        "ACCESS_KEY": "AKIAPLANTEDCONTEXT01",
        "SECRET_ACCESS_KEY": tokens["aws context secret key"],
    }
    with context(secrets={"AWS_CREDENTIALS": context_credentials}):
        round_trip(S3(s3_bucket, client_options=s3_options, secrets=["AWS_CREDENTIALS"]), FLOW_NAME)
        unreachable = S3(
            s3_bucket, client_options={"endpoint_url": f"http://127.0.0.1:{free_port()}"}
        )
        unreachable.retry_policy = FAST
        unreachable.add_flow(script_flow(FLOW_NAME))
        expect_error(BackendUnavailableError, unreachable.build)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", tokens["aws environment secret key"])
    round_trip(S3(s3_bucket, client_options=s3_options), SIBLING_NAME)
    # Refused: moto checks keys; the right access key with the planted wrong secret.
    access_key, _ = moto_iam_keys(s3.endpoint_url)
    refused = {"ACCESS_KEY": access_key, "SECRET_ACCESS_KEY": tokens["aws refused secret key"]}
    with moto_auth(s3.endpoint_url), context(secrets={"AWS_CREDENTIALS": refused}):
        rejected = S3(s3_bucket, client_options=s3_options)
        rejected.add_flow(script_flow(FLOW_NAME))
        expect_error(BackendAuthError, rejected.build)
        rejected.flows = dict(storages[0].flows)
        expect_error(BackendAuthError, lambda: rejected.get_flow(FLOW_NAME))

    # -- Azure: the environment, a secret named by the storage, a literal in an AzureResult -----
    connection = planted_azurite.planted_connection_string()
    admin = planted_azurite.service_client(connection)
    container = f"planted-{uuid.uuid4().hex[:12]}"
    admin.create_container(container)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection)
    round_trip(Azure(container), FLOW_NAME)
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    set_secret("PLANTED_AZURE", connection)
    named = Azure(container, connection_string_secret="PLANTED_AZURE", secrets=["PLANTED_AZURE"])
    round_trip(named, SIBLING_NAME)
    literal = AzureResult(container, connection_string=connection)
    written = literal.write({"value": 1})
    assert literal.read(str(written.location)).value == {"value": 1}
    carrier = script_flow(FLOW_NAME)
    carrier.result = literal  # pickled with the flow: only the container travels
    carrier_storage = Azure(container, connection_string_secret="PLANTED_AZURE")
    carrier_storage.add_flow(carrier)
    carrier_storage.build()
    observed["repr of the literal AzureResult"] = repr(literal) + repr(written)
    bad_key = tokens["azure refused account key"]
    monkeypatch.setenv(
        ENV_PREFIX + "PLANTED_BAD", planted_azurite.planted_connection_string(key=bad_key)
    )
    refused_azure = Azure(container, connection_string_secret="PLANTED_BAD")
    refused_azure.add_flow(script_flow(FLOW_NAME))
    expect_error(BackendAuthError, refused_azure.build)
    refused_azure.flows = dict(named.flows)
    expect_error(BackendAuthError, lambda: refused_azure.get_flow(SIBLING_NAME))
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        f"AccountName={PLANTED_ACCOUNT};AccountKey={tokens['azure malformed string']};Junk",
    )
    malformed = Azure(container)
    malformed.add_flow(script_flow(FLOW_NAME))
    expect_error(FlowStorageError, malformed.build)

    # -- GCP: a service-account info dict in the run context ------------------------------------
    gcs_bucket = gcs.new_bucket()
    with context(secrets={"GCP_CREDENTIALS": gcp_info}):
        round_trip(GCS(gcs_bucket, secrets=["GCP_CREDENTIALS"]), FLOW_NAME)
        assert token_server.grants, "the planted service account was never used"
        token_server.refuse = True
        refused_gcs = GCS(gcs_bucket)
        refused_gcs.add_flow(script_flow(SIBLING_NAME))
        expect_error(BackendAuthError, refused_gcs.build)

    # -- everything observable ------------------------------------------------------------------
    for storage in [*storages, unreachable, rejected, refused_azure, refused_gcs, named]:
        observed[f"serialize() of {storage!r}"] = json.dumps(storage.serialize())
        observed[f"repr() of {storage!r}"] = repr(storage)
        observed[f"repr() of {storage!r}.result"] = repr(storage.result)
    for flow in [*flows, carrier]:
        observed[f"repr() of {flow!r}"] = repr(flow)
    for error in errors:
        observed.update(_error_texts(error))
    observed["captured logs"] = caplog.text
    observed["captured log records"] = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records
    )
    observed.update(_home_files(home))
    s3_client = s3.client()
    for item in s3_client.list_objects_v2(Bucket=s3_bucket).get("Contents", []):
        body = s3_client.get_object(Bucket=s3_bucket, Key=item["Key"])["Body"].read()
        observed[f"S3 object {item['Key']}"] = body
    for blob in admin.get_container_client(container).list_blobs():
        data = admin.get_container_client(container).download_blob(blob.name).readall()
        observed[f"Azure blob {blob.name}"] = data
    for blob in gcs.client().list_blobs(gcs_bucket):
        observed[f"GCS object {blob.name}"] = blob.download_as_bytes()

    assert len([k for k in observed if k.startswith("S3 object")]) >= 4  # 2 flows + results
    assert len([k for k in observed if k.startswith("Azure blob")]) >= 4
    assert len([k for k in observed if k.startswith("GCS object")]) >= 2
    assert len(errors) == 7
    assert re.search(r"prefect_storage", caplog.text), "nothing logged: a vacuous log check"
    _assert_absent(tokens.values(), observed)


def test_no_aws_session_token_in_debug_logs(
    s3: MotoServer, script_flow: ScriptFlow, caplog: pytest.LogCaptureFixture
) -> None:
    """A session token from ``AWS_CREDENTIALS`` is sent as ``X-Amz-Security-Token``; at DEBUG
    botocore logs the canonical request and the prepared request with that header."""
    caplog.set_level(logging.DEBUG)
    session_token = _token("aws-session-token")
    credentials = {
        "ACCESS_KEY": "ASIAPLANTEDSESSION01",
        "SECRET_ACCESS_KEY": _token("aws-secret"),
        "SESSION_TOKEN": session_token,
    }
    storage = S3(s3.new_bucket(), client_options={"endpoint_url": s3.endpoint_url})
    with context(secrets={"AWS_CREDENTIALS": credentials}):
        storage.add_flow(script_flow(FLOW_NAME))
        storage.build()
        storage.get_flow(FLOW_NAME)

    leaking = sorted({r.name for r in caplog.records if session_token in r.getMessage()})
    assert leaking == [], f"the session token is in DEBUG records of {leaking}"
    _assert_absent(list(credentials.values())[1:], {"captured logs": caplog.text})
