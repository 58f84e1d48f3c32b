"""Azure Blob Storage: Azure storage, AzureResult."""

from ...results.azure import AzureResult
from ...storage.azure import Azure

__all__ = [
    "Azure",
    "AzureResult",
]
