"""Any HTTP server: Webhook storage."""

from ...storage.webhook import Webhook

__all__ = [
    "Webhook",
]
