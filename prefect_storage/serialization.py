"""The public path of the flow envelope (SPEC section 2); it lives in :mod:`.envelope`."""

from .envelope import *  # noqa: F403  # re-exports exactly the envelope's __all__
from .envelope import __all__ as __all__
