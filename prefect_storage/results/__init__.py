"""The result classes, at their public import path (SPEC section 2): where task return
values are checkpointed. Each lives in its backend's folder under ``backends/`` and is
imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..backends import lazy_exports

if TYPE_CHECKING:  # what the names below are, for type checkers
    from ..backends.aws import S3Result as S3Result
    from ..backends.azure import AzureResult as AzureResult
    from ..backends.gcp import GCSResult as GCSResult
    from ..backends.local import LocalResult as LocalResult
    from ..backends.result import Result as Result

_PATHS = {
    "AzureResult": "prefect_storage.backends.azure:AzureResult",
    "GCSResult": "prefect_storage.backends.gcp:GCSResult",
    "LocalResult": "prefect_storage.backends.local:LocalResult",
    "Result": "prefect_storage.backends.result:Result",
    "S3Result": "prefect_storage.backends.aws:S3Result",
}

__getattr__, __dir__ = lazy_exports(globals(), _PATHS)

__all__ = sorted(_PATHS)  # computed from the table above
