"""The transport contract: the one object per backend that talks to its SDK.

A backend's transport makes the SDK client on first use (credentials from
:func:`~prefect_storage.backends.credentials.find_credential`), moves bytes to and from
locations, and turns every SDK error into ours through one status ladder
(:func:`status_error`). A backend's Storage and Result share one transport; neither
talks to the SDK itself. Retries come from the caller's :class:`RetryPolicy`, so a
storage's ``retry_policy`` still tunes that storage alone.
"""

from __future__ import annotations

import io
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any, ClassVar, Generic, TypeVar, final

from ..exceptions import (
    BackendAuthError,
    BackendError,
    BackendUnavailableError,
    FlowNotFoundError,
    FlowStorageError,
    StorageConfigError,
)
from ..retry import DEFAULT_RETRY_POLICY, RetryPolicy

T = TypeVar("T")

EMPTY: Mapping[str, Any] = {}

logger = logging.getLogger("prefect_storage.transport")


def status_error(
    status: int,
    what: str,
    *,
    service: str,
    code: str = "",
    auth_hint: str = "",
    not_found_hint: str = "",
    not_found: type[FlowStorageError] = FlowNotFoundError,
    missing: str = "not found",
) -> FlowStorageError:
    """Our error for an HTTP status (or an SDK code mapped onto one): the one ladder.

    401/403 refused credentials, 404 not found (``missing`` says it the service's way:
    "no such object"), 429 and 5xx unavailable (retried), anything else a plain backend
    error. ``code`` is the service's own name for it.
    """
    answer = code or str(status)
    if status in (401, 403):
        hint = f"; {auth_hint}" if auth_hint else ""
        return BackendAuthError(f"{what}: {service} refused the credentials ({answer}){hint}.")
    if status == 404:
        hint = f" {not_found_hint}" if not_found_hint else ""
        return not_found(f"{what}: {missing} ({answer}).{hint}")
    if status == 429 or status >= 500:
        return BackendUnavailableError(f"{what}: {service} failed or throttled ({answer}).")
    return BackendError(f"{what}: {service} answered {answer}.")


class Client(ABC):
    """An SDK client made on first use, whose errors are translated once.

    Subclasses say how to make the client and how to read an SDK error: its HTTP status
    (``_status``), whether it means the service was unreachable (``_unreachable``), and
    any error that needs its own wording (``_special``). The client itself is never
    pickled; the rest of a transport is plain configuration (no secret values).
    """

    service: ClassVar[str] = ""
    """How users name the service in messages (``S3``, ``GitHub``, ...)."""

    auth_hint: ClassVar[str] = ""
    """What to check when the service refuses the credentials."""

    not_found_hint: ClassVar[str] = ""
    """What to check when the service answers 404."""

    missing: ClassVar[str] = "not found"
    """How a 404 is said (``no such object``, ``no such blob``)."""

    reach_hint: ClassVar[str] = ""
    """What to check when the service cannot be reached."""

    def __init__(self) -> None:
        self._client: Any = None
        self.attempt_timeout = DEFAULT_RETRY_POLICY.attempt_timeout
        """Seconds one request may take: the attempt timeout of the caller's policy."""

    @property
    def client(self) -> Any:
        """The SDK client, made on first use."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    @abstractmethod
    def _make_client(self) -> Any:
        """Build the SDK client (import it with ``import_optional``, find credentials)."""

    # -- reading an SDK error ------------------------------------------------------------
    def _status(self, exc: Exception) -> tuple[int, str] | None:
        """The HTTP status (and the service's code) ``exc`` carries, if it is a reply."""
        return None

    def _unreachable(self, exc: Exception) -> bool:
        """Whether ``exc`` means no reply came (refused, timed out, name not resolved)."""
        return False

    def _special(self, exc: Exception, what: str) -> FlowStorageError | None:
        """An error that needs its own wording (a missing bucket, no credentials, ...)."""
        return None

    def _endpoint(self, exc: Exception) -> str:
        """Where the unanswered request was going, when ``exc`` says (named in the message)."""
        return ""

    def _unreachable_error(self, exc: Exception, what: str) -> FlowStorageError:
        """The error for an unreachable service (a backend whose users know other wording,
        tested and documented, says it here)."""
        endpoint = self._endpoint(exc)
        where = f"the endpoint {endpoint}" if endpoint else self.service
        hint = f"; {self.reach_hint}" if self.reach_hint else ""
        return BackendUnavailableError(
            f"{what}: cannot reach {where} ({type(exc).__name__}){hint}."
        )

    @final
    def translate(
        self, exc: Exception, what: str, *, not_found: type[FlowStorageError] = FlowNotFoundError
    ) -> FlowStorageError:
        """Our error for ``exc``; ``what`` names the operation and location.

        An exception this backend does not recognise is re-raised: it is a bug to see.
        """
        if isinstance(exc, FlowStorageError):
            return exc
        special = self._special(exc, what)
        if special is not None:
            return special
        reply = self._status(exc)
        if reply is not None:
            status, code = reply
            return status_error(
                status,
                what,
                service=self.service,
                code=code,
                auth_hint=self.auth_hint,
                not_found_hint=self.not_found_hint,
                not_found=not_found,
                missing=self.missing,
            )
        if self._unreachable(exc):
            return self._unreachable_error(exc, what)
        raise exc

    @contextmanager
    def translating(
        self, what: str, *, not_found: type[FlowStorageError] = FlowNotFoundError
    ) -> Iterator[None]:
        """Within the block, SDK errors become ours (ours pass through unchanged)."""
        try:
            yield
        except FlowStorageError:
            raise
        except Exception as exc:
            raise self.translate(exc, what, not_found=not_found) from exc

    @final
    def call(
        self,
        operation: Callable[[], T],
        what: str,
        retry: RetryPolicy,
        *,
        not_found: type[FlowStorageError] = FlowNotFoundError,
    ) -> T:
        """Run ``operation`` with its errors translated, retried by ``retry``."""
        self.attempt_timeout = retry.attempt_timeout

        def attempt() -> T:
            with self.translating(what, not_found=not_found):
                return operation()

        return retry.call(attempt, what)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}


class Transport(Client):
    """Bytes at locations: put, get, open, exists, delete and list, each retried and
    translated the same way. Backends implement the underscored hooks they support."""

    put_not_found: ClassVar[type[FlowStorageError]] = FlowNotFoundError
    """The error a 404 on upload means (a missing bucket, an endpoint that is not there)."""

    def url(self, location: str) -> str:
        """``location`` as users know it in messages (``s3://bucket/key``)."""
        return location

    # -- the backend hooks ---------------------------------------------------------------
    @abstractmethod
    def _get(self, location: str) -> bytes:
        """The bytes at ``location``; an SDK error for a missing one (404, NoSuchKey)."""

    def _put(
        self, location: str, data: bytes, *, overwrite: bool, options: Mapping[str, Any]
    ) -> Any:
        raise StorageConfigError(
            f"{self.service} is read-only here: put {location!r} there yourself."
        )

    def _open(self, location: str) -> IO[bytes]:
        return io.BytesIO(self._get(location))  # shares the downloaded buffer

    def _exists(self, location: str) -> bool:
        try:
            with self.translating(f"Checking {self.url(location)}"):
                self._get(location)
        except FlowNotFoundError:
            return False
        return True

    def _delete(self, location: str) -> None:
        raise StorageConfigError(f"{self.service} is read-only here: cannot remove {location!r}.")

    def _list(self, prefix: str) -> list[str]:
        raise StorageConfigError(f"{self.service} cannot list locations.")

    # -- the operations (one retry policy, one translation) -----------------------------
    @final
    def put(
        self,
        location: str,
        data: bytes,
        *,
        retry: RetryPolicy,
        what: str | None = None,
        overwrite: bool = True,
        options: Mapping[str, Any] = EMPTY,
    ) -> Any:
        """Store ``data`` at ``location``; returns what the backend answered."""
        return self.call(
            lambda: self._put(location, data, overwrite=overwrite, options=options),
            what or f"Uploading to {self.url(location)}",
            retry,
            not_found=self.put_not_found,
        )

    @final
    def get(self, location: str, *, retry: RetryPolicy, what: str | None = None) -> bytes:
        """The bytes at ``location``; :class:`FlowNotFoundError` when there are none."""
        return self.call(
            lambda: self._get(location), what or f"Downloading {self.url(location)}", retry
        )

    @final
    def open(self, location: str, *, retry: RetryPolicy, what: str | None = None) -> IO[bytes]:
        """What is at ``location`` as a binary file (streamed where the backend can)."""
        return self.call(
            lambda: self._open(location), what or f"Downloading {self.url(location)}", retry
        )

    @final
    def exists(self, location: str, *, retry: RetryPolicy) -> bool:
        return self.call(lambda: self._exists(location), f"Checking {self.url(location)}", retry)

    @final
    def list(self, prefix: str = "", *, retry: RetryPolicy) -> list[str]:
        """Locations under ``prefix``, sorted."""
        return sorted(self.call(lambda: self._list(prefix), f"Listing {self.url(prefix)}", retry))

    @final
    def delete(self, location: str, *, retry: RetryPolicy, best_effort: bool = False) -> None:
        """Remove ``location``; with ``best_effort`` a failure is only logged (cleanup)."""
        try:
            self.call(lambda: self._delete(location), f"Removing {self.url(location)}", retry)
        except Exception:
            if not best_effort:
                raise
            logger.warning("Could not remove %s", self.url(location))


TransportT = TypeVar("TransportT", bound=Transport)


class UsesTransport(ABC, Generic[TransportT]):
    """A Storage or Result whose bytes go through a transport, made on first use (a flow
    pickled before the transport existed has none until then). ``TransportT`` is the
    backend's own transport class, so its extra methods are typed."""

    _transport: TransportT | None = None

    @property
    def transport(self) -> TransportT:
        """The object that moves this owner's bytes (a storage shares it with its result)."""
        if self._transport is None:
            self._transport = self._make_transport()
        return self._transport

    @abstractmethod
    def _make_transport(self) -> TransportT:
        """This backend's transport, from the owner's own fields."""
