"""Azure only: ``overwrite``, where the connection string comes from, and what is wrong
with one."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from prefect_storage import context
from prefect_storage.exceptions import (
    BackendAuthError,
    FlowStorageError,
    SecretNotFoundError,
    StorageConfigError,
)
from prefect_storage.results import AzureResult
from prefect_storage.secrets import ENV_PREFIX, set_secret
from prefect_storage.storage import Azure, Storage
from tests.backends.conftest import Kit
from tests.contract.rigs import FLOW_NAME
from tests.servers.azurite import ACCOUNT_KEY, BAD_ACCOUNT_KEY

ScriptFlow = Callable[[str], object]


# -- overwrite ----------------------------------------------------------------------------------
def test_overwrite_false_refuses_an_existing_blob(azure_kit: Kit, script_flow: ScriptFlow) -> None:
    azure_kit.write("flows/contract.flow", b"someone else's blob")
    storage = azure_kit.storage(blob_name="flows/contract.flow")  # overwrite=False by default
    storage.add_flow(script_flow(FLOW_NAME))

    with pytest.raises(StorageConfigError) as caught:
        storage.build()

    message = str(caught.value)
    assert "flows/contract.flow" in message
    assert "already exists" in message
    assert "overwrite=True" in message  # the fix
    assert azure_kit.read("flows/contract.flow") == b"someone else's blob"  # untouched
    assert storage.digests.get(FLOW_NAME) is None


def test_overwrite_true_replaces_an_existing_blob(azure_kit: Kit, script_flow: ScriptFlow) -> None:
    azure_kit.write("flows/contract.flow", b"an older flow")
    storage = azure_kit.storage(blob_name="flows/contract.flow", overwrite=True)
    storage.add_flow(script_flow(FLOW_NAME))
    storage.build()

    assert azure_kit.read("flows/contract.flow") != b"an older flow"
    assert Storage.deserialize(storage.serialize()).get_flow(FLOW_NAME).name == FLOW_NAME


def test_overwrite_false_with_default_blob_names_builds_each_time(
    azure_kit: Kit, script_flow: ScriptFlow
) -> None:
    for _ in range(2):  # timestamped names: a second registration never collides
        storage = azure_kit.storage()
        storage.add_flow(script_flow(FLOW_NAME))
        storage.build()
    assert len(azure_kit.names()) == 2


# -- where the connection string comes from -----------------------------------------------------
def test_connection_string_secret_from_the_secrets_file(
    azure_kit: Kit, script_flow: ScriptFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secret("TEAM_AZURE", azure_kit.server.connection_string)
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    storage = azure_kit.storage(connection_string_secret="TEAM_AZURE")
    storage.add_flow(script_flow(FLOW_NAME))
    storage.build()

    payload = storage.serialize()
    assert payload["connection_string_secret"] == "TEAM_AZURE"
    assert Storage.deserialize(payload).get_flow(FLOW_NAME).name == FLOW_NAME
    assert isinstance(storage.result, AzureResult)
    assert storage.result.connection_string_secret == "TEAM_AZURE"


def test_connection_string_secret_from_the_run_context(
    azure_kit: Kit, script_flow: ScriptFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    with context(secrets={"AZURE_STORAGE_CONNECTION_STRING": azure_kit.server.connection_string}):
        storage = azure_kit.storage()
        storage.add_flow(script_flow(FLOW_NAME))
        storage.build()
        assert storage.get_flow(FLOW_NAME).name == FLOW_NAME


def test_a_named_secret_that_is_set_nowhere_is_named(
    azure_kit: Kit, script_flow: ScriptFlow
) -> None:
    storage = azure_kit.storage(connection_string_secret="NEVER_SET_AZURE")
    storage.add_flow(script_flow(FLOW_NAME))

    with pytest.raises(SecretNotFoundError, match="NEVER_SET_AZURE"):
        storage.build()


def test_no_connection_string_anywhere_says_where_to_put_one(
    azure_kit: Kit, script_flow: ScriptFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    storage = azure_kit.storage()
    storage.add_flow(script_flow(FLOW_NAME))

    with pytest.raises(BackendAuthError) as caught:
        storage.build()
    assert "AZURE_STORAGE_CONNECTION_STRING" in str(caught.value)
    assert "connection_string_secret" in str(caught.value)


def test_a_wrong_account_key_is_an_auth_error(
    azure_kit: Kit, script_flow: ScriptFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_PREFIX + "BAD_AZURE", azure_kit.server.bad_connection_string)
    storage = azure_kit.storage(connection_string_secret="BAD_AZURE")
    storage.add_flow(script_flow(FLOW_NAME))

    with pytest.raises(BackendAuthError) as caught:
        storage.build()  # Azurite answers 403 AuthorizationFailure: never retried
    assert isinstance(caught.value, PermissionError)
    assert "attempt" not in str(caught.value)
    assert BAD_ACCOUNT_KEY not in str(caught.value)
    assert azure_kit.names() == []


def test_a_malformed_connection_string_is_refused_without_quoting_it(
    azure_kit: Kit, script_flow: ScriptFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING", f"AccountName=x;AccountKey={ACCOUNT_KEY};Nonsense"
    )
    storage = azure_kit.storage()
    storage.add_flow(script_flow(FLOW_NAME))

    with pytest.raises(FlowStorageError) as caught:
        storage.build()
    assert isinstance(caught.value, StorageConfigError | BackendAuthError)
    assert ACCOUNT_KEY not in str(caught.value)
    assert ACCOUNT_KEY not in repr(caught.value)


def test_paired_result_holds_only_the_secret_name() -> None:
    result = Azure("ctr", connection_string_secret="TEAM_AZURE").result
    assert isinstance(result, AzureResult)
    assert result.container == "ctr"
    assert result.connection_string_secret == "TEAM_AZURE"
    assert result.transport._connection_string is None  # the value lives on the transport
