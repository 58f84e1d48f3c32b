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
