"""``Webhook``: a flow uploaded to and fetched from any HTTP service.

Request arguments may hold ``${NAME}`` templates (an environment variable, then a
secret); they are rendered at request time (by :class:`HTTPTransport`) and stored
unrendered.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ...exceptions import StorageConfigError, UnsupportedHTTPMethodError
from ..base import BlobStorage
from .transport import HTTPTransport

if TYPE_CHECKING:
    import requests

    from ...engine.flow import Flow

HTTP_METHODS = ("GET", "PATCH", "POST", "PUT")
"""The methods a Webhook may use for either request."""


class Webhook(BlobStorage[HTTPTransport]):
    """Upload a flow with one HTTP request and fetch it back with another.

    ``build_request_kwargs`` / ``get_flow_request_kwargs`` are keyword arguments for
    ``requests`` (``url``, ``headers``, ``params``, ...). The flow's bytes are sent as
    ``data``. One flow per storage: adding another replaces it.
    """

    serialized_fields = (
        "build_request_kwargs",
        "build_request_http_method",
        "get_flow_request_kwargs",
        "get_flow_request_http_method",
        "stored_as_script",
    )
    _transient = (*BlobStorage._transient, "_build_responses")
    _script_path_argument = "flow_script_path"

    def __init__(
        self,
        build_request_kwargs: dict[str, Any],
        build_request_http_method: str,
        get_flow_request_kwargs: dict[str, Any],
        get_flow_request_http_method: str,
        stored_as_script: bool = False,
        flow_script_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        for argument, value in (
            ("build_request_kwargs", build_request_kwargs),
            ("get_flow_request_kwargs", get_flow_request_kwargs),
        ):
            if not isinstance(value, dict):
                raise TypeError(f"`{argument}` must be a dict of requests arguments")
            if "url" not in value:
                raise StorageConfigError(f"`{argument}` needs a 'url'")
            _check_auth(value.get("auth"), argument)
        self.build_request_kwargs = build_request_kwargs
        self.build_request_http_method = _check_method(
            build_request_http_method, "build_request_http_method"
        )
        self.get_flow_request_kwargs = get_flow_request_kwargs
        self.get_flow_request_http_method = _check_method(
            get_flow_request_http_method, "get_flow_request_http_method"
        )
        self.flow_script_path = flow_script_path
        self._build_responses: dict[str, requests.Response] | None = None
        super().__init__(stored_as_script=stored_as_script, **kwargs)

    @property
    def local_script_path(self) -> str | None:  # type: ignore[override]
        return self.flow_script_path

    def add_flow(self, flow: Flow) -> str:
        """Make ``flow`` this storage's only flow."""
        self.flows.clear()
        self._flows.clear()
        return super().add_flow(flow)

    def build(self) -> Webhook:
        if self.stored_as_script and not self.flow_script_path:
            raise StorageConfigError("flow_script_path must be provided if stored_as_script=True")
        self._build_responses = {}
        super().build()
        return self

    def _location_for(self, flow: Flow) -> str:
        return flow.name

    def _make_transport(self) -> HTTPTransport:
        return HTTPTransport(
            upload=(self.build_request_http_method, self.build_request_kwargs),
            download=(self.get_flow_request_http_method, self.get_flow_request_kwargs),
        )

    def _put(self, location: str, data: bytes) -> None:
        if "data" in self.build_request_kwargs:
            message = (
                "'data' found in build_request_kwargs. This value is overwritten with the "
                "flow content and should not be set directly"
            )
            self.logger.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        response = self.transport.put(location, data, retry=self.retry_policy)
        assert self._build_responses is not None
        self._build_responses[location] = response
        self.logger.info("Uploaded flow %r (HTTP %s)", location, response.status_code)


def _check_auth(auth: Any, argument: str) -> None:
    """``auth`` is what requests takes: a (user, password) pair (a list after JSON) or an
    auth object; anything else would fail at request time, deep inside requests."""
    if auth is None or callable(auth):
        return
    if isinstance(auth, (list, tuple)) and len(auth) == 2 and all(isinstance(a, str) for a in auth):
        return
    raise TypeError(
        f"`{argument}['auth']` must be a (user, password) pair of str or a requests auth "
        f"object, not {type(auth).__name__}; keep the password in a secret: "
        "('user', '${PASSWORD}')."
    )


def _check_method(method: Any, argument: str) -> str:
    if not isinstance(method, str) or method.upper() not in HTTP_METHODS:
        raise UnsupportedHTTPMethodError(
            f"HTTP method {method!r} not recognized for `{argument}`; use one of "
            f"{', '.join(HTTP_METHODS)}."
        )
    return method.upper()
