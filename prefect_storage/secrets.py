"""Secrets by name, and the ``${NAME}`` templates that use them.

``Secret(name).get()`` looks in, in order: the run context's ``secrets``, the environment
variable ``PREFECT__CONTEXT__SECRETS__<NAME>`` (the spelling Prefect 1 users already have),
then the local secrets file (``<home>/secrets.toml``, mode 0600). Values that parse as JSON
are decoded. Only names are ever stored elsewhere, logged or put into error messages.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .config import home_dir
from .engine.context import context
from .exceptions import (
    LocalStateError,
    SecretAccessError,
    SecretNotFoundError,
    StorageConfigError,
)
from .fileio import atomic_write_bytes

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "Secret",
    "delete_secret",
    "list_secret_names",
    "redact_permanently",
    "redact_urls",
    "redacting",
    "render_recording_values",
    "render_templates",
    "resolve_secrets",
    "secrets_file",
    "set_secret",
]

ENV_PREFIX = "PREFECT__CONTEXT__SECRETS__"
"""Environment variables with this prefix provide secrets (the name keeps its case)."""

_MISSING = object()


class Secret:
    """A named secret, resolved at run time."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError("`name` must be a non-empty str naming the secret")
        self.name = name

    def get(self) -> Any:
        """The secret's value, JSON-decoded when it parses; raises if it is set nowhere."""
        if context.get("flow") is not None:
            raise SecretAccessError(
                "Secrets should only be retrieved during a Flow run, not while building a Flow."
            )
        raw = _lookup(self.name)
        if raw is _MISSING:
            raise SecretNotFoundError(
                f"Secret {self.name!r} was not found in the run context, the environment "
                f"variable {ENV_PREFIX}{self.name} or the secrets file; set it with "
                f"`prefect-storage secret set {self.name}`."
            )
        return _decode(raw)

    def exists(self) -> bool:
        return _lookup(self.name) is not _MISSING

    def __repr__(self) -> str:
        return f"<Secret: {self.name}>"


def _lookup(name: str) -> Any:
    in_context = context.get("secrets") or {}
    if name in in_context:
        return in_context[name]
    if ENV_PREFIX + name in os.environ:
        return os.environ[ENV_PREFIX + name]
    return _read_file().get(name, _MISSING)


def _decode(raw: Any) -> Any:
    if not isinstance(raw, (str, bytes)):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def resolve_secrets(names: list[str]) -> dict[str, Any]:
    """Resolve every name (e.g. ``storage.secrets``) into a dict for the run context."""
    return {name: Secret(name).get() for name in names}


# -- the secrets file -------------------------------------------------------------------
def secrets_file() -> Path:
    return home_dir() / "secrets.toml"


def _read_file() -> dict[str, str]:
    path = secrets_file()
    try:
        with open(path, "rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise LocalStateError(
            f"Cannot read the secrets file {path}: {exc.strerror or exc}; it must be a "
            "readable file (move away whatever is there)."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        # The parser's message can quote a line of the file, i.e. a secret value.
        raise SecretNotFoundError(
            f"The secrets file {path} is not valid TOML (line {_error_line(exc)}); "
            "fix or remove it."
        ) from None
    return dict(document.get("secrets", {}))


def _error_line(exc: Exception) -> str:
    match = re.search(r"line (\d+)", str(exc))
    return match.group(1) if match else "?"


def _write_file(values: dict[str, str]) -> None:
    # JSON string syntax is valid TOML basic-string syntax, so no TOML writer is needed.
    lines = ["[secrets]"]
    lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in sorted(values.items())]
    path = secrets_file()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # A new file beside the old one, then a rename: a failed write keeps the old file.
        atomic_write_bytes(path, ("\n".join(lines) + "\n").encode(), mode=0o600)
    except OSError as exc:
        raise LocalStateError(
            f"Cannot write the secrets file {path}: {exc.strerror or exc}; it was left as it "
            "was. Free some space or fix the folder's permissions, then try again."
        ) from None


def set_secret(name: str, value: str) -> None:
    """Store ``value`` under ``name`` in the secrets file (created with mode 0600)."""
    if not isinstance(name, str) or not name.strip():
        raise StorageConfigError(
            f"A secret needs a name, got {name!r}: `prefect-storage secret set NAME VALUE`."
        )
    if not isinstance(value, str):
        value = json.dumps(value)
    values = _read_file()
    values[name] = value
    _write_file(values)


def delete_secret(name: str) -> None:
    values = _read_file()
    if name not in values:
        raise SecretNotFoundError(f"Secret {name!r} is not in the secrets file {secrets_file()}.")
    del values[name]
    _write_file(values)


def list_secret_names() -> list[str]:
    return sorted(_read_file())


# -- ${NAME} templates ------------------------------------------------------------------
_TEMPLATE = re.compile(r"\$(\$)?\{([^}]*)\}")


def render_templates(value: Any, resolve: Callable[[str], str] | None = None) -> Any:
    """Render ``${NAME}`` in every string of ``value`` (nested dicts and lists too).

    ``NAME`` comes from the environment variable ``NAME``, then ``Secret(NAME)``.
    ``$${`` stands for a literal ``${``; any other ``$`` is left alone; keys are never
    rendered. Returns a new object; the input is not changed.
    """
    resolve = resolve or template_value
    if isinstance(value, str):
        return _TEMPLATE.sub(lambda m: _render_one(m, resolve), value)
    if isinstance(value, dict):
        return {k: render_templates(v, resolve) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(render_templates(v, resolve) for v in value)
    return value


def _render_one(match: re.Match[str], resolve: Callable[[str], str]) -> str:
    escaped, name = match.group(1), match.group(2)
    if escaped:
        return "${" + name + "}"
    if not name:
        raise StorageConfigError(
            "Empty template `${}`: write `${NAME}`, or `$${` for a literal `${`."
        )
    return resolve(name)


def template_value(name: str) -> str:
    """The text a ``${NAME}`` template renders to."""
    if name in os.environ:
        return os.environ[name]
    secret = Secret(name)
    if not secret.exists():
        raise SecretNotFoundError(
            f"Template value {name!r} does not refer to an environment variable or secret; "
            f"export {name} or set it with `prefect-storage secret set {name}`."
        )
    value = secret.get()
    return value if isinstance(value, str) else json.dumps(value)


def render_recording_values(value: Any) -> tuple[Any, list[str]]:
    """``render_templates(value)`` plus the texts the templates rendered to."""
    used: list[str] = []

    def resolve(name: str) -> str:
        text = template_value(name)
        used.append(text)
        return text

    return render_templates(value, resolve), used


# -- credentials inside URLs ------------------------------------------------------------
MASK = "***"
"""What a masked credential becomes in logs and messages."""

_URL_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#'\"<>]*)@"
)
_CREDENTIAL_NAME = (
    r"[\w.\-]*?(?:token|secret|passw|pwd|key|sig|credential|auth|session|code)[\w.\-]*"
)
CREDENTIAL_PARAMETER = re.compile(_CREDENTIAL_NAME, re.I)
"""Query parameter (or header) names whose values are credentials."""
_QUERY_CREDENTIAL = re.compile(
    rf"(?P<name>[?&;]{_CREDENTIAL_NAME}=)(?P<value>(?!\$\{{)[^&;#\s'\"<>]+)", re.I
)


def redact_urls(text: str, mask: str = MASK) -> str:
    """``text`` with the credentials of every URL in it masked.

    Masks the password of ``scheme://user:password@`` (any scheme), a bare
    ``http(s)://token@`` user (tokens are sent that way), and the values of query
    parameters named like credentials (``private_token``, ``access_token``, ``sig``,
    ``X-Amz-Signature``, ...) wherever ``?name=`` or ``&name=`` appears. A bare SSH
    user (``ssh://git@host``) and ``${NAME}`` templates stay: they are not secrets.
    """
    if "@" in text:
        text = _URL_USERINFO.sub(lambda m: _mask_userinfo(m, mask), text)
    if "=" in text:
        text = _QUERY_CREDENTIAL.sub(lambda m: m.group("name") + mask, text)
    return text


def _mask_userinfo(match: re.Match[str], mask: str) -> str:
    scheme, userinfo = match.group("scheme"), match.group("userinfo")
    user, has_password, password = userinfo.partition(":")
    if has_password:
        hidden = password if password.startswith("${") or not password else mask
        return f"{scheme}{user}:{hidden}@"
    if scheme.lower().startswith("http") and userinfo and not userinfo.startswith("${"):
        return f"{scheme}{mask}@"
    return match.group(0)


HTTP_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.connection")
"""Loggers that print request URLs, which may carry rendered secrets."""


class _Redactor(logging.Filter):
    def __init__(self, values: list[str]) -> None:
        super().__init__()
        self.values: list[str] = []
        self.add(values)

    def add(self, values: list[str]) -> None:
        self.values = sorted({*self.values, *(v for v in values if v)}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for value in self.values:
            message = message.replace(value, MASK)
        record.msg, record.args = redact_urls(message), ()
        return True


_PERMANENT_REDACTORS: dict[str, _Redactor] = {}


def redact_permanently(values: list[str], loggers: tuple[str, ...]) -> None:
    """From now on in this process, mask ``values`` in what ``loggers`` log."""
    for name in loggers:
        redactor = _PERMANENT_REDACTORS.get(name)
        if redactor is None:
            redactor = _PERMANENT_REDACTORS[name] = _Redactor([])
            logging.getLogger(name).addFilter(redactor)
        redactor.add(values)


@contextmanager
def redacting(values: list[str], loggers: tuple[str, ...] = HTTP_LOGGERS) -> Iterator[None]:
    """Within the block, ``values`` (and credentials in URLs) are masked in what ``loggers``
    log."""
    redactor = _Redactor(values)
    targets = [logging.getLogger(name) for name in loggers]
    for target in targets:
        target.addFilter(redactor)
    try:
        yield
    finally:
        for target in targets:
            target.removeFilter(redactor)
