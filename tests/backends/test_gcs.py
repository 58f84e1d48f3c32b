"""GCS only: the ``GCP_CREDENTIALS`` secret (a service-account info dict) really used, the
project, and binary script uploads."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from prefect_storage import context
from prefect_storage.exceptions import BackendAuthError
from prefect_storage.results import GCSResult
from prefect_storage.storage import GCS, Storage
from tests.backends.conftest import Kit
from tests.backends.support import TokenServer, service_account_info
from tests.contract.rigs import FLOW_NAME

ScriptFlow = Callable[[str], object]


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer().start()
    yield server
    server.stop()


@pytest.fixture
def account(token_server: TokenServer) -> dict[str, str]:
    try:
        return service_account_info(token_server.token_uri, project_id="sa-project")
    except ImportError as exc:
        pytest.skip(f"generating a service-account key needs `cryptography` ({exc})")


def test_gcp_credentials_secret_builds_a_client_from_the_info_dict(
    gcs_kit: Kit, account: dict[str, str]
) -> None:
    from google.oauth2 import service_account

    with context(secrets={"GCP_CREDENTIALS": account}):
        client = GCS(gcs_kit.bucket).client  # no project: the service account's

    assert isinstance(client._credentials, service_account.Credentials)
    assert client._credentials.service_account_email == account["client_email"]
    assert client.project == "sa-project"


def test_gcp_credentials_are_used_for_every_request(
    gcs_kit: Kit, account: dict[str, str], token_server: TokenServer, script_flow: ScriptFlow
) -> None:
    """google-auth signs a JWT with the private key, trades it for an access token at the
    key's ``token_uri``, and sends that token to the storage server."""
    proxy = gcs_kit.proxy()
    with context(secrets={"GCP_CREDENTIALS": account}):
        storage = gcs_kit.storage()
        storage.add_flow(script_flow(FLOW_NAME))
        storage.build()
        assert storage.get_flow(FLOW_NAME).name == FLOW_NAME

    assert token_server.grants, "the token endpoint was never asked"
    grant = token_server.grants[0]
    assert grant["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    assert grant["assertion"][0].count(".") == 2  # a signed JWT
    ours = [r for r in proxy.requests if "/o" in r.path]
    assert len(ours) == 2  # the upload and the download
    for request in ours:
        headers = {name.lower(): value for name, value in request.headers.items()}
        assert headers["authorization"] == f"Bearer {token_server.access_token}"


def test_refused_gcp_credentials_are_an_auth_error(
    gcs_kit: Kit, account: dict[str, str], token_server: TokenServer, script_flow: ScriptFlow
) -> None:
    token_server.refuse = True
    with context(secrets={"GCP_CREDENTIALS": account}):
        storage = gcs_kit.storage()
        storage.add_flow(script_flow(FLOW_NAME))
        with pytest.raises(BackendAuthError) as caught:
            storage.build()

    assert "GCP_CREDENTIALS" in str(caught.value)
    assert account["private_key_id"] not in str(caught.value)
    assert gcs_kit.names() == []


def test_without_the_secret_the_emulator_host_gives_anonymous_access(gcs_kit: Kit) -> None:
    from google.auth.credentials import AnonymousCredentials

    client = GCS(gcs_kit.bucket, project="test").client
    assert isinstance(client._credentials, AnonymousCredentials)
    assert client.project == "test"


def test_paired_result_has_the_same_bucket() -> None:
    result = GCS("bkt", project="p").result
    assert isinstance(result, GCSResult)
    assert result.bucket == "bkt"


def test_a_binary_script_is_uploaded_unchanged(gcs_kit: Kit, script_flow: ScriptFlow, tmp_path):
    """Script upload is binary (the legacy upload decoded it as text)."""
    script = tmp_path / "latin1_flows.py"
    source = (
        "# -*- coding: latin-1 -*-\n"
        "from prefect_storage import Flow, task\n"
        "@task\ndef say():\n    return 'caf\xe9'\n"
        "with Flow('latin1-flow') as flow:\n    say()\n"
    ).encode("latin-1")
    script.write_bytes(source)
    storage = gcs_kit.storage(stored_as_script=True, local_script_path=str(script))
    from prefect_storage.loading import extract_flow_from_file

    storage.add_flow(extract_flow_from_file(file_path=str(script), flow_name="latin1-flow"))
    storage.build()

    assert gcs_kit.read(storage.flows["latin1-flow"]) == source
    flow = Storage.deserialize(storage.serialize()).get_flow("latin1-flow")
    state = flow.run()
    assert [r.result for r in state.result.values()] == ["caf\xe9"]
