"""Bad input reaching the CLI is a typed error from ``prefect_storage.exceptions``: the command
exits non-zero with one ``Error:`` line and no traceback (the CLI turns only those errors into
one line, so a plain ``ValueError`` reaching it would show as a traceback)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from prefect_storage.engine.flow import Flow
from prefect_storage.engine.runner import CHECKPOINTING_ENV
from prefect_storage.registry import REGISTRY_URL_ENV
from prefect_storage.storage import Local
from tests.registry.conftest import CLI, REPO_ROOT
from tests.registry.test_cli import TWO_FLOWS, one_line_error

BUILDING_READS_A_SECRET = """
from prefect_storage import Flow
from prefect_storage.secrets import Secret

with Flow("reads a secret while built") as flow:
    Secret("SOME_TOKEN").get()
"""


def _module_storage(attribute_path: str) -> str:
    """A Module storage payload whose flow ``x`` is at ``attribute_path``."""
    return json.dumps({"type": "Module", "module": attribute_path, "flows": {"x": attribute_path}})


BAD_INPUT: dict[str, tuple[tuple[str, ...], str]] = {
    "register a missing script": (("register", "{missing}"), "Cannot read flow script"),
    "register a module raising at import": (
        ("register", "raises_at_import"),
        "raised ValueError while loading",
    ),
    "register a script reading a secret while building": (
        ("register", "{reads_secret}"),
        "not while building a Flow",
    ),
    "execute a payload missing a field": (
        ("execute", "--flow", "x", "--storage", '{"type": "S3"}'),
        "missing the required field 'bucket'",
    ),
    "execute a payload that is not JSON": (
        ("execute", "--flow", "x", "--storage", "{not json"),
        "is not JSON",
    ),
    "execute an unknown parameter": (
        ("execute", "--flow", "cli-add", "--storage", "{local}", "-p", "x=1", "-p", "nope=2"),
        "Unknown parameter(s) 'nope'",
    ),
    "execute a missing parameter": (
        ("execute", "--flow", "cli-add", "--storage", "{local}"),
        "Required parameter(s) 'x'",
    ),
    "execute a flow factory needing arguments": (
        ("execute", "--flow", "x", "--storage", _module_storage("json:dumps")),
        "Calling 'json:dumps' to make the flow raised TypeError",
    ),
    "execute a module attribute that is no flow": (
        ("execute", "--flow", "x", "--storage", _module_storage("json:__name__")),
        "not a `Flow`",
    ),
    "execute a payload value the constructor refuses": (
        ("execute", "--flow", "x", "--storage", '{"type": "Module", "module": ""}'),
        "Module payload refused: `module` must be a dotted module path",
    ),
    "execute a Webhook with an empty template": (
        (
            "execute",
            "--flow",
            "x",
            "--storage",
            json.dumps(
                {
                    "type": "Webhook",
                    "flows": {"x": "x"},
                    "build_request_kwargs": {"url": "http://127.0.0.1:9/${}"},
                    "build_request_http_method": "PUT",
                    "get_flow_request_kwargs": {"url": "http://127.0.0.1:9/${}"},
                    "get_flow_request_http_method": "GET",
                }
            ),
        ),
        "Empty template `${}`",
    ),
    "secret set with an empty name": (("secret", "set", "", "value"), "A secret needs a name"),
    "agent with no room for a run": (("agent", "local", "--concurrency", "0"), "--concurrency"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_typed_error_line(
    case: str,
    cli: CLI,
    write_script: Callable[[str, str], Path],
    load_flow: Callable[[str, str], Flow],
    tmp_path: Path,
) -> None:
    (cli.cwd / "raises_at_import.py").write_text("raise ValueError('bad at import')\n")
    flow = load_flow(TWO_FLOWS, "cli-add")
    local = Local(path=str(write_script("two_flows.py", TWO_FLOWS)), stored_as_script=True)
    local.add_flow(flow)
    values = {
        "missing": str(tmp_path / "scripts" / "missing.py"),
        "reads_secret": str(write_script("reads_secret.py", BUILDING_READS_A_SECRET)),
        "local": json.dumps(local.serialize()),
    }
    args, expected = BAD_INPUT[case]
    args = tuple(values.get(a[1:-1], a) if a.startswith("{") else a for a in args)

    message = one_line_error(
        cli(*args, **{REGISTRY_URL_ENV: f"sqlite:///{tmp_path / 'registry.db'}"})
    )

    assert expected in message


def test_a_bad_checkpointing_setting_is_one_line(
    cli: CLI, write_script: Callable[[str, str], Path], load_flow: Callable[[str, str], Flow]
) -> None:
    local = Local(path=str(write_script("two_flows.py", TWO_FLOWS)), stored_as_script=True)
    local.add_flow(load_flow(TWO_FLOWS, "cli-add"))
    args = ("execute", "--flow", "cli-add", "--storage", json.dumps(local.serialize()), "-p", "x=1")

    message = one_line_error(cli(*args, **{CHECKPOINTING_ENV: "maybe"}))

    assert CHECKPOINTING_ENV in message and "'maybe'" in message


def test_a_missing_postgresql_driver_names_the_extra(cli: CLI, tmp_path: Path) -> None:
    # A psycopg that fails to import, first on the path: as if the extra were not installed.
    hidden = tmp_path / "no-psycopg"
    hidden.mkdir()
    (hidden / "psycopg.py").write_text("raise ImportError('psycopg is hidden by this test')\n")
    path = os.pathsep.join(
        p for p in (str(hidden), str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p
    )

    done = cli("flows", "ls", PYTHONPATH=path, **{REGISTRY_URL_ENV: "postgresql://x@127.0.0.1/db"})

    message = one_line_error(done)
    assert "'psycopg'" in message and "pip install 'prefect-storage[postgres]'" in message
