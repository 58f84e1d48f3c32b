"""Credential look-up, written once for every backend.

A backend names the secret its user chose (``access_token_secret=``,
``connection_string_secret=``, ...) and the default name Prefect 1 used for it
(``GITHUB_ACCESS_TOKEN``, ``AWS_CREDENTIALS``, ...). The value is looked for in one
order: the named secret (an error if it is set nowhere); else the default name in the run
context's secrets, then the environment variable of that name, then the secret of that
name (``PREFECT__CONTEXT__SECRETS__<NAME>``, the secrets file). ``None`` means none was
found: the backend goes anonymous or to its SDK's own chain.
"""

from __future__ import annotations

import os
from typing import Any

from ..engine.context import context
from ..secrets import Secret


def find_credential(
    secret_name: str | None, default_name: str, *, env_name: str | None = ""
) -> Any:
    """The credential for a backend, or ``None`` (see the module docstring for the order).

    ``env_name`` is the plain environment variable to read (default: ``default_name``;
    ``None`` to read none, for values no one keeps in a plain variable, e.g. a JSON key).
    """
    if secret_name:
        return Secret(secret_name).get()
    value = (context.get("secrets") or {}).get(default_name)
    if value is None and env_name is not None:
        value = os.environ.get(env_name or default_name) or None
    if value is None:
        secret = Secret(default_name)
        if secret.exists():
            value = secret.get()
    return value


def find_text_credential(
    secret_name: str | None, default_name: str, *, env_name: str | None = ""
) -> str | None:
    """:func:`find_credential` for a token or password: a ``str``, or ``None``."""
    value = find_credential(secret_name, default_name, env_name=env_name)
    return None if value in (None, "") else str(value)
