"""Secrets: resolution order, decoding, the secrets file and CLI, and ``${NAME}`` templates."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from prefect_storage import Flow, context, task
from prefect_storage.exceptions import FlowStorageError, SecretAccessError, SecretNotFoundError
from prefect_storage.secrets import (
    ENV_PREFIX,
    Secret,
    delete_secret,
    list_secret_names,
    render_templates,
    resolve_secrets,
    secrets_file,
    set_secret,
)


def _name() -> str:
    return f"PS_TEST_{uuid.uuid4().hex[:8].upper()}"


# -- resolution -----------------------------------------------------------------------------
def test_context_wins_over_environment_wins_over_file(monkeypatch: pytest.MonkeyPatch) -> None:
    name = _name()
    set_secret(name, "from-file")
    assert Secret(name).get() == "from-file"

    monkeypatch.setenv(ENV_PREFIX + name, "from-env")
    assert Secret(name).get() == "from-env"

    with context(secrets={name: "from-context"}):
        assert Secret(name).get() == "from-context"

    assert Secret(name).get() == "from-env"
    monkeypatch.delenv(ENV_PREFIX + name)
    assert Secret(name).get() == "from-file"


def test_the_environment_name_keeps_its_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PREFIX + "MixedCase_Name", "mixed")
    assert Secret("MixedCase_Name").get() == "mixed"
    assert not Secret("MIXEDCASE_NAME").exists()


def test_the_secrets_file_lives_in_the_home_folder(home: Path) -> None:
    set_secret("IN_HOME", "x")
    assert secrets_file() == home / "secrets.toml"
    assert secrets_file().is_file()


@pytest.mark.parametrize(
    "raw, value",
    [
        ("42", 42),
        ("4.5", 4.5),
        ("true", True),
        ('{"ACCESS_KEY": "a", "n": [1, 2]}', {"ACCESS_KEY": "a", "n": [1, 2]}),
        ('"quoted"', "quoted"),
        ("plain text", "plain text"),
        ("{not json", "{not json"),
    ],
)
def test_values_are_json_decoded_when_they_parse(
    monkeypatch: pytest.MonkeyPatch, raw: str, value: Any
) -> None:
    env_name, file_name, context_name = _name(), _name(), _name()
    monkeypatch.setenv(ENV_PREFIX + env_name, raw)
    set_secret(file_name, raw)
    with context(secrets={context_name: raw}):
        for name in (env_name, file_name, context_name):
            assert Secret(name).get() == value


def test_non_string_context_values_are_returned_as_they_are() -> None:
    value = {"nested": ["x"]}
    with context(secrets={"OBJ": value}):
        assert Secret("OBJ").get() == value


def test_a_missing_secret_is_an_error_naming_it() -> None:
    name = _name()
    assert not Secret(name).exists()
    with pytest.raises(SecretNotFoundError) as raised:
        Secret(name).get()
    error = raised.value
    assert isinstance(error, FlowStorageError)
    assert isinstance(error, ValueError) and isinstance(error, KeyError)
    assert name in str(error)
    assert "secret set" in str(error)  # how to fix it


def test_resolve_secrets_builds_the_run_context(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _name(), _name()
    monkeypatch.setenv(ENV_PREFIX + a, "1")
    set_secret(b, "two")
    assert resolve_secrets([a, b]) == {a: 1, b: "two"}
    with pytest.raises(SecretNotFoundError, match="NOT_SET_ANYWHERE"):
        resolve_secrets([a, "NOT_SET_ANYWHERE"])


def test_secret_names_must_be_non_empty_strings() -> None:
    for bad in ("", None, 3):
        with pytest.raises(TypeError, match="name"):
            Secret(bad)  # type: ignore[arg-type]


def test_secrets_cannot_be_read_while_building_a_flow() -> None:
    name = _name()
    set_secret(name, "value")
    with (
        Flow("building"),
        pytest.raises(SecretAccessError, match="not while building a Flow") as raised,
    ):
        Secret(name).get()
    assert isinstance(raised.value, ValueError)  # what Prefect 1 raised


def test_secrets_can_be_read_during_a_flow_run() -> None:
    name = _name()
    set_secret(name, '{"n": 5}')

    @task
    def read() -> int:
        return Secret(name).get()["n"]

    with Flow("reads a secret") as flow:
        read_task = read()
    state = flow.run()
    assert state.result[read_task].result == 5


# -- the secrets file -----------------------------------------------------------------------
def test_the_secrets_file_has_mode_0600_and_keeps_it() -> None:
    set_secret("FIRST", "1")
    assert stat.S_IMODE(os.stat(secrets_file()).st_mode) == 0o600
    set_secret("SECOND", 'with "quotes" and \\ backslash\nand a newline')
    assert stat.S_IMODE(os.stat(secrets_file()).st_mode) == 0o600
    assert Secret("SECOND").get() == 'with "quotes" and \\ backslash\nand a newline'
    delete_secret("FIRST")
    assert stat.S_IMODE(os.stat(secrets_file()).st_mode) == 0o600
    assert list_secret_names() == ["SECOND"]


def test_set_replaces_and_delete_removes() -> None:
    set_secret("KEY", "old")
    set_secret("KEY", "new")
    set_secret("OTHER", "x")
    assert Secret("KEY").get() == "new"
    assert list_secret_names() == ["KEY", "OTHER"]
    delete_secret("KEY")
    assert not Secret("KEY").exists()
    with pytest.raises(SecretNotFoundError, match="KEY"):
        delete_secret("KEY")


def test_a_corrupt_secrets_file_is_an_error_naming_the_file(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "secrets.toml").write_text('[secrets]\nA = "unterminated\n')
    with pytest.raises(FlowStorageError, match=r"secrets\.toml"):
        Secret("A").get()


def _cli(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env["PREFECT_STORAGE_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "prefect_storage.cli", "secret", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_cli_set_ls_rm(home: Path) -> None:
    alpha, beta = f"alpha-{uuid.uuid4().hex}", f"beta-{uuid.uuid4().hex}"
    done = _cli(home, "set", "ALPHA", alpha)
    assert done.returncode == 0, done.stderr
    assert alpha not in done.stdout + done.stderr
    done = _cli(home, "set", "BETA", stdin=beta + "\n")
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(os.stat(home / "secrets.toml").st_mode) == 0o600
    assert Secret("ALPHA").get() == alpha
    assert Secret("BETA").get() == beta  # read from stdin, trailing newline dropped

    listed = _cli(home, "ls")
    assert listed.returncode == 0
    assert listed.stdout.split() == ["ALPHA", "BETA"]
    as_json = _cli(home, "ls", "--json")
    assert json.loads(as_json.stdout) == ["ALPHA", "BETA"]
    for output in (listed, as_json):
        assert alpha not in output.stdout + output.stderr
        assert beta not in output.stdout + output.stderr

    removed = _cli(home, "rm", "ALPHA")
    assert removed.returncode == 0
    assert list_secret_names() == ["BETA"]
    again = _cli(home, "rm", "ALPHA")
    assert again.returncode != 0
    assert "ALPHA" in again.stderr


# -- ${NAME} templates ----------------------------------------------------------------------
def test_a_template_reads_the_environment_variable_then_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = _name()
    set_secret(name, "from-secret")
    assert render_templates("Bearer ${" + name + "}") == "Bearer from-secret"
    monkeypatch.setenv(name, "from-env")
    assert render_templates("Bearer ${" + name + "}") == "Bearer from-env"


def test_a_template_reads_context_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    with context(secrets={"CTX_ONLY": "ctx"}):
        assert render_templates("${CTX_ONLY}/${CTX_ONLY}") == "ctx/ctx"
    monkeypatch.setenv(ENV_PREFIX + "PREFIXED", "prefixed")
    assert render_templates("${PREFIXED}") == "prefixed"


def test_a_non_string_secret_renders_as_its_text() -> None:
    set_secret("NUMBER", "42")
    assert render_templates("id=${NUMBER}") == "id=42"


@pytest.mark.parametrize(
    "text, rendered",
    [
        ("$${NAME}", "${NAME}"),
        ("cost: $${NAME} and ${NAME}", "cost: ${NAME} and value"),
        ("price $5", "price $5"),
        ("$HOME and $NAME", "$HOME and $NAME"),
        ("$", "$"),
        ("$$", "$$"),
        ("50% off, {braces} kept", "50% off, {braces} kept"),
    ],
)
def test_only_dollar_brace_templates_are_rendered(text: str, rendered: str) -> None:
    with context(secrets={"NAME": "value"}):
        assert render_templates(text) == rendered


def test_nested_dicts_and_lists_are_rendered_keys_are_not_and_input_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TPL_A", "a-value")
    set_secret("TPL_B", "b-value")
    request = {
        "url": "http://host/${TPL_A}",
        "headers": {"Authorization": "Bearer ${TPL_B}", "${TPL_A}": "key kept"},
        "params": [("q", "${TPL_A}"), ["${TPL_B}", 3]],
        "json": {"deep": [{"x": "${TPL_B}"}], "n": 1, "none": None},
        "timeout": 5,
    }
    original = copy.deepcopy(request)
    rendered = render_templates(request)
    assert rendered == {
        "url": "http://host/a-value",
        "headers": {"Authorization": "Bearer b-value", "${TPL_A}": "key kept"},
        "params": [("q", "a-value"), ["b-value", 3]],
        "json": {"deep": [{"x": "b-value"}], "n": 1, "none": None},
        "timeout": 5,
    }
    assert request == original


def test_an_unknown_template_name_is_an_error_naming_it() -> None:
    with pytest.raises(SecretNotFoundError, match="NOBODY_SET_THIS") as raised:
        render_templates({"headers": {"Authorization": "Bearer ${NOBODY_SET_THIS}"}})
    assert isinstance(raised.value, FlowStorageError)
    assert "secret set NOBODY_SET_THIS" in str(raised.value)  # how to fix it


def test_an_empty_template_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"\$\{\}") as raised:
        render_templates("x ${} y")
    assert isinstance(raised.value, FlowStorageError)


# -- bad local state: one-line errors, nothing half-written ----------------------------------
def _run_cli(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, with PREFECT_STORAGE_HOME=home and no registry URL."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(ENV_PREFIX) and k != "PREFECT_STORAGE_REGISTRY_URL"
    }
    env["PREFECT_STORAGE_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "prefect_storage.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    return lines[0]


@pytest.fixture
def mount_tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``mount_tmpfs("size=64k")``: a fresh tmpfs (root only; skipped where mounting is not
    allowed), unmounted after the test."""
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        folder = tmp_path / f"tmpfs-{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


@pytest.mark.parametrize("where", ["under-a-file", "is-a-file", "read-only-parent"])
def test_a_home_folder_that_cannot_be_created_is_a_one_line_error(
    tmp_path: Path, where: str, mount_tmpfs: Callable[[str], Path]
) -> None:
    if where == "read-only-parent":
        home = mount_tmpfs("ro,size=64k") / "home"
    else:
        regular_file = tmp_path / "a-file"
        regular_file.write_text("not a folder\n")
        home = regular_file / "home" if where == "under-a-file" else regular_file
    for args in (("flows", "ls"), ("secret", "set", "NAME", "value"), ("secret", "ls")):
        error = _one_line_error(_run_cli(home, *args))
        assert "PREFECT_STORAGE_HOME" in error and str(home) in error, error
    assert not home.is_dir()


def test_a_secrets_file_that_is_a_folder_is_a_one_line_error(home: Path) -> None:
    (home / "secrets.toml").mkdir(parents=True)
    for args in (("secret", "set", "NAME", "value"), ("secret", "ls"), ("secret", "rm", "X")):
        error = _one_line_error(_run_cli(home, *args))
        assert str(home / "secrets.toml") in error, error
    with pytest.raises(FlowStorageError, match=r"secrets\.toml") as raised:
        Secret("NAME").get()
    assert isinstance(raised.value, OSError)


def test_a_full_disk_on_secret_set_is_a_one_line_error_and_keeps_the_old_file(
    mount_tmpfs: Callable[[str], Path],
) -> None:
    home = mount_tmpfs("size=64k") / "home"
    assert _run_cli(home, "secret", "set", "OLD", "kept").returncode == 0
    before = (home / "secrets.toml").read_bytes()
    # Fill the file system to the brim (unbuffered: nothing is left to flush on close).
    with open(home.parent / "filler", "wb", buffering=0) as filler, contextlib.suppress(OSError):
        while True:
            filler.write(b"\0" * 4096)
    new_value = f"new-{uuid.uuid4().hex}" * 400
    error = _one_line_error(_run_cli(home, "secret", "set", "NEW", new_value))
    assert "secrets.toml" in error and "No space left" in error, error
    assert new_value not in error
    assert (home / "secrets.toml").read_bytes() == before  # the old file, whole
    assert sorted(p.name for p in home.iterdir()) == ["secrets.toml"]  # no temporary file left
    (home.parent / "filler").unlink()
    assert _run_cli(home, "secret", "set", "NEW", new_value).returncode == 0  # space again


@pytest.mark.parametrize("how", ["argument", "stdin"])
def test_an_empty_secret_is_refused_unless_allowed(home: Path, how: str) -> None:
    args, stdin = (
        (("secret", "set", "EMPTY", ""), None)
        if how == "argument"
        else (
            ("secret", "set", "EMPTY"),
            "\n",
        )
    )
    error = _one_line_error(_run_cli(home, *args, stdin=stdin))
    assert "EMPTY" in error and "--allow-empty" in error, error
    assert not Secret("EMPTY").exists()

    done = _run_cli(home, *args, "--allow-empty", stdin=stdin)
    assert done.returncode == 0, done.stderr
    assert Secret("EMPTY").get() == ""
