"""Any HTTP service: Webhook storage over one ``HTTPTransport``."""

from ...exceptions import UnsupportedHTTPMethodError
from .storage import Webhook
from .transport import HTTPTransport

__all__ = ["HTTPTransport", "UnsupportedHTTPMethodError", "Webhook"]
