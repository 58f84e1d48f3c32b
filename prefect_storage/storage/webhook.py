"""Old home of ``Webhook``, kept for flow pickles that name it."""

from ..backends.webhook import UnsupportedHTTPMethodError, Webhook

__all__ = ["UnsupportedHTTPMethodError", "Webhook"]
