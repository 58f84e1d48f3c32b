"""Old home of ``AzureResult``, kept for flow pickles that name it."""

from ..backends.azure import AzureResult

__all__ = ["AzureResult"]
