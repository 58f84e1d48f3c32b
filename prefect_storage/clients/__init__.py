"""The SDK boundary, one module per cloud: clients built from our credential look-up, and
each SDK's errors translated once into :mod:`prefect_storage.exceptions`.

Storages and results of the same cloud share these, so credentials and error wording
are written once per cloud.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..exceptions import FlowStorageError

Translator = Callable[[Exception, str, "str | None"], FlowStorageError]


@contextmanager
def translating(translate: Translator, what: str, bucket: str | None = None) -> Iterator[None]:
    """Within the block, SDK errors become ours via ``translate`` (ours pass through)."""
    try:
        yield
    except FlowStorageError:
        raise
    except Exception as exc:
        raise translate(exc, what, bucket) from exc


def lookup_token(secret_name: str | None, default_name: str) -> str | None:
    """A token: the secret named ``secret_name``; else ``default_name`` from the run
    context's secrets, then from the environment; else ``None`` (anonymous)."""
    import os

    from ..engine.context import context
    from ..secrets import Secret

    if secret_name:
        return str(Secret(secret_name).get())
    value = context.get("secrets", {}).get(default_name) or os.environ.get(default_name)
    return str(value) if value else None
