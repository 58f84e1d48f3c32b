"""Azure Blob Storage: Azure storage and AzureResult, over one ``AzureTransport``."""

from .result import AzureResult
from .storage import Azure
from .transport import AzureTransport

__all__ = [
    "Azure",
    "AzureResult",
    "AzureTransport",
]
