"""``Webhook``: a flow uploaded to and fetched from any HTTP service.

Request arguments may hold ``${NAME}`` templates (an environment variable, then a
secret); they are rendered at request time and stored unrendered.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ..exceptions import (
    BackendAuthError,
    BackendError,
    BackendUnavailableError,
    FlowNotFoundError,
    StorageConfigError,
)
from ..secrets import redact_urls, redacting, render_recording_values
from ..storage.base import BlobStorage

if TYPE_CHECKING:
    import requests

    from ..engine.flow import Flow

HTTP_METHODS = ("GET", "PATCH", "POST", "PUT")
"""The methods a Webhook may use for either request."""


class UnsupportedHTTPMethodError(StorageConfigError, RuntimeError):
    """Also a ``RuntimeError``, as the legacy Webhook raised for an unknown method."""


class Webhook(BlobStorage):
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
    _transient = (*BlobStorage._transient, "_session", "_build_responses")
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
        self._session: requests.Session | None = None
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

    def _put(self, location: str, data: bytes) -> None:
        request, rendered = render_recording_values(self.build_request_kwargs)
        if "data" in request:
            message = (
                "'data' found in build_request_kwargs. This value is overwritten with the "
                "flow content and should not be set directly"
            )
            self.logger.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        request["data"] = data
        response = self._send(self.build_request_http_method, request, rendered, "upload", location)
        assert self._build_responses is not None
        self._build_responses[location] = response
        self.logger.info("Uploaded flow %r (HTTP %s)", location, response.status_code)

    def _get(self, location: str) -> bytes:
        request, rendered = render_recording_values(self.get_flow_request_kwargs)
        method = self.get_flow_request_http_method
        return self._send(method, request, rendered, "download", location).content

    def _send(
        self,
        method: str,
        request: dict[str, Any],
        rendered: list[str],
        action: str,
        flow_name: str,
    ) -> requests.Response:
        import requests

        # Error messages name the *unrendered* URL (the rendered one may carry a secret),
        # with any literal credential in it masked.
        unrendered = (
            self.build_request_kwargs if action == "upload" else self.get_flow_request_kwargs
        )
        url = redact_urls(str(unrendered["url"]))
        if isinstance(request.get("auth"), list):
            request["auth"] = tuple(request["auth"])  # a JSON round trip made the pair a list
        request.setdefault("timeout", self.retry_policy.attempt_timeout)
        try:
            with redacting(rendered):
                response = self._http().request(method, **request)
        except requests.RequestException as exc:
            raise BackendUnavailableError(
                f"Webhook {action} of flow {flow_name!r} could not reach {url!r} "
                f"({type(exc).__name__}); check the URL and that the server is running."
            ) from None
        status = response.status_code
        if status < 400:
            return response
        what = f"Webhook {action} of flow {flow_name!r}: {method} {url!r} answered HTTP {status}"
        if status in (401, 403):
            raise BackendAuthError(
                f"{what}; check the credentials in the request headers (their ${{NAME}} "
                "templates and the secrets they name)."
            )
        if status == 404 and action == "download":
            raise FlowNotFoundError(f"{what}; the flow is not stored there.")
        if status >= 500 or status == 429:
            raise BackendUnavailableError(f"{what} ({response.reason}); the server failed.")
        raise BackendError(f"{what} ({response.reason}).")

    def _http(self) -> requests.Session:
        # Retries come from the shared policy (BlobStorage), not from urllib3.
        if self._session is None:
            import requests

            self._session = requests.Session()
        return self._session


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
