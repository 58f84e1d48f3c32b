"""The ``Result`` base: where a task's value is written, read and found again.

A backend result only makes its transport (``_make_transport``), usually the very one its
storage uses; formatting locations, (de)serializing values and retries happen here, once.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from ..exceptions import ResultLocationError
from ..retry import DEFAULT_RETRY_POLICY, RetryPolicy
from ..serializers import PickleSerializer, Serializer
from .transport import EMPTY, Transport, UsesTransport


class Result(UsesTransport[Transport]):
    """A value plus the location it is (or will be) stored at.

    ``location`` is a ``str.format`` template (``"{flow_name}/{task_name}/{today}.bin"``)
    or a callable taking the same keyword arguments and returning the location.
    """

    retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY
    """Retries for this result's transfers (set per instance to tune)."""

    upload_options: Any = EMPTY
    """Backend-specific upload arguments (S3's ``ACL``, ...), passed to the transport."""

    _transient: tuple[str, ...] = ()
    """Attributes never pickled (credential values)."""

    def __init__(
        self,
        value: Any = None,
        location: str | Callable[..., str] | None = None,
        serializer: Serializer | None = None,
        *,
        transport: Transport | None = None,
    ) -> None:
        self._transport = transport
        self.value = value
        self.serializer = serializer if serializer is not None else PickleSerializer()
        self._formatter: Callable[..., str] | None = None
        self.location: str | None = None
        if callable(location):
            self._formatter = location
        elif location is None or isinstance(location, str):
            self.location = location
        else:
            raise TypeError(
                f"`location` must be a str, a callable or None, got {type(location).__name__}"
            )

    # -- the backend hooks -------------------------------------------------------------
    def _locate(self, location: str) -> str:
        """Where ``location`` is for the transport, as a written result records it
        (``LocalResult``: the path under its ``dir``)."""
        return location

    # -- the user API ------------------------------------------------------------------
    @property
    def default_location(self) -> str:
        now = datetime.now(timezone.utc)
        return f"{now.year}/{now.month}/{now.day}/{uuid.uuid4()}.prefect_result"

    def copy(self) -> Result:
        return copy.copy(self)

    def __copy__(self) -> Result:
        # Not via __getstate__: a copy keeps the process-local (transient) attributes.
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def from_value(self, value: Any) -> Result:
        new = self.copy()
        new.location = None
        new.value = value
        return new

    def format(self, **kwargs: Any) -> Result:
        """A copy whose location is formatted from ``kwargs`` (context, parameters, inputs)."""
        new = self.copy()
        if isinstance(self.location, str):
            new.location = _format_location(self.location, kwargs)
        elif self._formatter is not None:
            new.location = self._formatter(**kwargs)
        else:
            new.location = self.default_location
        return new

    def write(self, value_: Any, **kwargs: Any) -> Result:
        """Serialize ``value_`` and store it at the formatted location; return that Result."""
        new = self.format(**kwargs)
        new.value = value_
        assert new.location is not None  # format() always sets one
        data = self.serializer.serialize(value_)
        new.location = location = self._locate(new.location)
        self.transport.put(
            location,
            data,
            retry=self.retry_policy,
            what=f"Writing result {self.transport.url(location)}",
            options=self.upload_options,
        )
        return new

    def read(self, location: str) -> Result:
        """Load the value stored at ``location`` (already formatted)."""
        new = self.copy()
        new.location = location
        data = self.transport.get(
            self._locate(location),
            retry=self.retry_policy,
            what=f"Reading result {self.transport.url(location)}",
        )
        new.value = self.serializer.deserialize(data)
        return new

    def exists(self, location: str, **kwargs: Any) -> bool:
        """Whether a value is stored at ``location`` formatted with ``kwargs``."""
        formatted = _format_location(location, kwargs)
        return self.transport.exists(self._locate(formatted), retry=self.retry_policy)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._transient}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for name in self._transient:
            self.__dict__.setdefault(name, None)

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return False
        public = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return public == {k: v for k, v in vars(other).items() if not k.startswith("_")}

    __hash__ = None  # type: ignore[assignment]  # mutable value object, like the legacy one

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.value!r}>"


def _format_location(template: str, values: dict[str, Any]) -> str:
    try:
        return template.format(**values)
    except KeyError as exc:
        raise ResultLocationError(
            f"Result location {template!r} uses {{{exc.args[0]}}}, which is not a context "
            f"key, parameter or task input; available keys: {', '.join(sorted(values))}"
        ) from None
