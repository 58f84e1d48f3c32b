"""``AzureResult``: task results as blobs (Azure storage's paired result).

Only the *name* of the connection string's secret (or environment variable) travels
with a pickled flow; a ``connection_string`` value given here stays in this process
(its transport never pickles it).
"""

from __future__ import annotations

from typing import Any

from ..result import Result
from .transport import AzureTransport


class AzureResult(Result):
    """Results stored as blobs in ``container``."""

    def __init__(
        self,
        container: str,
        connection_string: str | None = None,
        connection_string_secret: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(container, str) or not container:
            raise TypeError("`container` must be the name of an Azure Blob Storage container")
        self.container = container
        self.connection_string_secret = connection_string_secret
        super().__init__(**kwargs)
        if connection_string and self._transport is None:
            self._transport = AzureTransport(container, connection_string_secret, connection_string)

    def _make_transport(self) -> AzureTransport:
        return AzureTransport(self.container, self.connection_string_secret)
