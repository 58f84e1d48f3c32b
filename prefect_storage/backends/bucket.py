"""Flows as objects in a cloud bucket or container: the shape S3, GCS and Azure share."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from ..exceptions import FlowNotFoundError, StorageConfigError
from ..keys import timestamp_key
from .base import BlobStorage, Storage
from .transport import Transport

if TYPE_CHECKING:
    from ..engine.flow import Flow
    from .result import Result


class BucketStorage(BlobStorage[Transport]):
    """Flows as objects in a cloud bucket or container (S3, GCS, Azure).

    Each flow gets ``<flow slug>/<timestamp>`` unless a fixed key is given. In script mode
    the script at ``local_script_path`` (default: the one being registered by the CLI) is
    uploaded; without it the fixed key must point at a script already in the bucket.
    """

    _fixed_key_argument: ClassVar[str] = "key"
    """The constructor argument naming one object for every flow (``key``/``blob_name``)."""

    def __init__(
        self,
        fixed_key: str | None,
        local_script_path: str | None,
        **kwargs: Any,
    ) -> None:
        from ..engine.context import context

        self._fixed_key = fixed_key
        self.local_script_path = local_script_path or context.get("local_script_path")
        self._transport = self._make_transport()
        if kwargs.get("result") is None:
            kwargs["result"] = self._paired_result()
        super().__init__(**kwargs)

    @abstractmethod
    def _paired_result(self) -> Result:
        """The default result of this storage's flows: same bucket, same transport."""

    def _location_for(self, flow: Flow) -> str:
        return self._fixed_key or timestamp_key(flow.name)

    def build(self) -> Storage:
        if self.stored_as_script and not self.local_script_path and not self._fixed_key:
            raise StorageConfigError(
                f"A `{self._fixed_key_argument}` must be provided to show where flow `.py` "
                f"file is stored in {self.transport.service} or provide a `local_script_path` "
                "pointing to a local script that contains the flow."
            )
        return super().build()

    def _digest_of(self, location: str) -> str | None:
        # A fixed key may be filled after registration (Prefect 1 allowed it).
        try:
            return super()._digest_of(location)
        except FlowNotFoundError:
            self.logger.warning("No script at %s yet; it must be there before a run.", location)
            return None
