"""``Module``: flows imported from an installed Python module at run time."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ...envelope import sha256_hex
from ...exceptions import CorruptFlowError
from ..base import Storage

if TYPE_CHECKING:
    from ...engine.flow import Flow


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
        """Nothing to upload: the installed module is the storage. Record its source digest."""
        digest = self._source_digest()
        for name in self._flows if names is None else names:
            self.digests[name] = digest

    def _load_flow(self, flow_name: str, location: str, expected_sha256: str | None) -> Flow:
        from ...loading import extract_flow_from_module

        if expected_sha256 is not None:
            digest = self._source_digest()
            if digest != expected_sha256.lower():
                raise CorruptFlowError(
                    f"Digest mismatch for flow {flow_name!r} in module {self.module!r}: "
                    f"registered sha256 {expected_sha256}, installed source {digest}. The "
                    "module changed after registration; re-register the flow."
                )
        return extract_flow_from_module(location, flow_name=flow_name)

    def _source_digest(self) -> str | None:
        """SHA-256 of the module's source file (None when it has no file, e.g. built-in)."""
        module_name = self.module.partition(":")[0]
        try:
            spec = importlib.util.find_spec(module_name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin or not os.path.isfile(spec.origin):
            return None
        with open(spec.origin, "rb") as file:
            return sha256_hex(file.read())
