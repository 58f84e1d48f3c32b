"""The package's shape: cheap import, curated public names, optional SDKs, the error tree."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys

import pytest

import prefect_storage
from prefect_storage import exceptions
from prefect_storage._deps import import_optional
from prefect_storage.exceptions import FlowStorageError, MissingDependencyError

HEAVY = (
    "boto3",
    "botocore",
    "google",
    "azure",
    "docker",
    "github",
    "gitlab",
    "atlassian",
    "dulwich",
    "requests",
)
"""Backend SDKs (and requests) that importing the package must not pull in."""


def _modules_after(statement: str) -> set[str]:
    """``sys.modules`` of a fresh interpreter after running ``statement``."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _heavy(modules: set[str], names: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in names)


def test_importing_the_package_imports_no_backend_sdk_nor_requests() -> None:
    modules = _modules_after("import prefect_storage")
    assert "prefect_storage" in modules  # the probe works
    assert _heavy(modules) == []


def test_importing_the_public_modules_imports_no_backend_sdk() -> None:
    modules = _modules_after(
        "from prefect_storage.storage import *\n"
        "from prefect_storage.results import *\n"
        "import prefect_storage.serializers, prefect_storage.secrets, "
        "prefect_storage.serialization, prefect_storage.loading, "
        "prefect_storage.run_configs, prefect_storage.exceptions"
    )
    assert "prefect_storage.backends.webhook.storage" in modules  # Webhook was imported
    assert _heavy(modules, tuple(n for n in HEAVY if n != "requests")) == []


def test_importing_the_facades_imports_no_backend() -> None:
    # Each class is imported on first use: a run process loads only its own backend.
    modules = _modules_after("import prefect_storage.storage, prefect_storage.results")
    assert sorted(m for m in modules if m.startswith("prefect_storage.backends.")) == []
    modules = _modules_after("from prefect_storage.storage import S3")
    assert "prefect_storage.backends.aws.storage" in modules
    assert "prefect_storage.backends.azure" not in modules


def test_dunder_all_is_sorted_and_importable() -> None:
    names = prefect_storage.__all__
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    namespace: dict[str, object] = {}
    exec(f"from prefect_storage import {', '.join(names)}", namespace)
    for name in names:
        assert namespace[name] is getattr(prefect_storage, name)
    assert isinstance(prefect_storage.__version__, str) and prefect_storage.__version__


@pytest.mark.parametrize(
    "module, names",
    [
        ("prefect_storage", ["Flow", "task", "Parameter", "context"]),
        ("prefect_storage.storage", ["Storage", "Local", "Module", "Webhook"]),
        ("prefect_storage.results", ["Result", "LocalResult"]),
        (
            "prefect_storage.serializers",
            ["PickleSerializer", "JSONSerializer", "CompressedSerializer"],
        ),
        ("prefect_storage.secrets", ["Secret"]),
        ("prefect_storage.run_configs", ["UniversalRun", "LocalRun", "DockerRun"]),
        ("prefect_storage.serialization", ["flow_to_bytes_pickle", "flow_from_bytes_pickle"]),
        ("prefect_storage.loading", ["extract_flow_from_file", "extract_flow_from_module"]),
        ("prefect_storage.exceptions", ["FlowStorageError"]),
    ],
)
def test_spec_public_names_are_importable(module: str, names: list[str]) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {module} import {', '.join(names)}", namespace)
    imported = importlib.import_module(module)
    for name in names:
        assert namespace[name] is getattr(imported, name)
        if hasattr(imported, "__all__"):
            assert name in imported.__all__


def test_storage_classes_are_storages() -> None:
    from prefect_storage.storage import BACKENDS, Local, Module, Storage, Webhook

    for cls in (Local, Module, Webhook):
        assert issubclass(cls, Storage)
        assert BACKENDS[cls.__name__] is cls
    with pytest.raises(TypeError):
        Storage()  # type: ignore[abstract]


def test_a_missing_optional_sdk_names_the_extra() -> None:
    with pytest.raises(MissingDependencyError) as raised:
        import_optional("no_such_sdk_xyz", "aws")
    error = raised.value
    assert isinstance(error, ModuleNotFoundError) and isinstance(error, ImportError)
    assert isinstance(error, FlowStorageError)
    assert "pip install 'prefect-storage[aws]'" in str(error)
    assert "no_such_sdk_xyz" in str(error)
    assert isinstance(error.__cause__, ModuleNotFoundError)


def test_an_installed_optional_module_is_returned() -> None:
    assert import_optional("json", "aws") is json


def _exception_classes() -> list[type[BaseException]]:
    return [
        cls
        for _, cls in inspect.getmembers(exceptions, inspect.isclass)
        if cls.__module__ == exceptions.__name__ and issubclass(cls, BaseException)
    ]


def test_every_error_derives_from_flow_storage_error() -> None:
    classes = _exception_classes()
    assert len(classes) >= 10  # the probe finds the tree
    for cls in classes:
        if issubclass(cls, Warning):
            assert cls is exceptions.FlowVersionWarning
            assert issubclass(cls, UserWarning)
            continue
        assert issubclass(cls, FlowStorageError), cls.__name__


@pytest.mark.parametrize(
    "name, builtin",
    [
        ("MissingDependencyError", ModuleNotFoundError),
        ("LocalStateError", OSError),
        ("FlowNotFoundError", LookupError),
        ("FlowNotFoundError", ValueError),
        ("FlowNameConflictError", ValueError),
        ("StorageConfigError", ValueError),
        ("SecretNotFoundError", KeyError),
        ("SecretNotFoundError", ValueError),
        ("FlowLoadError", ValueError),
        ("CorruptFlowError", ValueError),
        ("FlowDeserializationError", RuntimeError),
        ("BackendError", RuntimeError),
        ("BackendAuthError", PermissionError),
        ("BackendUnavailableError", ConnectionError),
    ],
)
def test_errors_also_inherit_the_matching_builtin(name: str, builtin: type) -> None:
    assert issubclass(getattr(exceptions, name), builtin)


@pytest.mark.parametrize("name", ["FlowNotFoundError", "SecretNotFoundError"])
def test_lookup_errors_print_their_message_unquoted(name: str) -> None:
    error = getattr(exceptions, name)("Flow 'x' is not here")
    assert str(error) == "Flow 'x' is not here"


def test_the_webhook_method_error_is_a_storage_error() -> None:
    from prefect_storage.storage.webhook import UnsupportedHTTPMethodError

    assert issubclass(UnsupportedHTTPMethodError, FlowStorageError)
    assert issubclass(UnsupportedHTTPMethodError, RuntimeError)
