"""The one retry policy every network backend uses.

Backends translate their SDK's errors into our typed errors at their boundary; only
:class:`~prefect_storage.exceptions.BackendUnavailableError` (429, 5xx, connection errors,
timeouts) is retried, with exponential backoff and full jitter, within an overall deadline.
401/403/404 and every other error are raised at once. SDK-level retries are switched off
by the backends so attempts are not multiplied.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .exceptions import BackendUnavailableError

T = TypeVar("T")

logger = logging.getLogger("prefect_storage.retry")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a failing backend call."""

    max_attempts: int = 5
    base_delay: float = 0.25
    """Seconds before the first retry; doubled each time, capped at ``max_delay``."""
    max_delay: float = 4.0
    attempt_timeout: float = 30.0
    """Seconds one request may take (connect and read), passed to the SDK."""
    deadline: float = 90.0
    """Seconds all attempts together may take; no retry starts after it."""

    def call(self, operation: Callable[[], T], description: str) -> T:
        """Run ``operation``, retrying while it raises :class:`BackendUnavailableError`."""
        started = time.monotonic()
        for attempt in range(1, self.max_attempts + 1):
            try:
                return operation()
            except BackendUnavailableError as exc:
                from .secrets import redact_urls

                reason = redact_urls(str(exc))  # the last line of defence for URL credentials
                delay = random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
                elapsed = time.monotonic() - started
                if attempt == self.max_attempts or elapsed + delay > self.deadline:
                    raise BackendUnavailableError(
                        f"{reason} (gave up after {attempt} attempt(s) in {elapsed:.1f} s)"
                    ) from exc
                logger.warning(
                    "%s failed (attempt %d of %d): %s; retrying in %.2f s",
                    redact_urls(description),
                    attempt,
                    self.max_attempts,
                    reason,
                    delay,
                )
                time.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")


DEFAULT_RETRY_POLICY = RetryPolicy()
"""The policy backends use unless given another (``storage.retry_policy = ...``)."""
