"""Old home of ``Azure``, kept for flow pickles that name it."""

from ..backends.azure import Azure

__all__ = ["Azure"]
