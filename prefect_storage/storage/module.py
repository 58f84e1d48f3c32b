"""``Module``: flows imported from an installed Python module at run time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .base import Storage

if TYPE_CHECKING:
    from ..engine.flow import Flow


class Module(Storage):
    """Load flows by importing ``module`` (``"pkg.flows"`` or ``"pkg.flows:attr"``).

    Nothing is uploaded: the module must be importable wherever the flow runs.
    """

    serialized_fields = ("module",)

    def __init__(self, module: str, **kwargs: Any) -> None:
        if not isinstance(module, str) or not module.strip():
            raise TypeError("`module` must be a dotted module path such as 'pkg.flows'")
        self.module = module
        super().__init__(**kwargs)

    def _location_for(self, flow: Flow) -> str:
        return self.module

    def _store_flows(self, names: Iterable[str] | None = None) -> None:
        """Nothing to store: the installed module is the storage."""

    def _load_flow(self, flow_name: str, location: str, expected_sha256: str | None) -> Flow:
        from ..loading import extract_flow_from_module

        return extract_flow_from_module(location, flow_name=flow_name)
