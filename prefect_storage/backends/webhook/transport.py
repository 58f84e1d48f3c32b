"""Any HTTP service: the transport that sends Webhook's two requests.

One request uploads a flow (``build``), the other downloads it (``get_flow``); a location
is the flow's name. Request arguments may hold ``${NAME}`` templates: they are rendered
when a request is sent and never kept. Messages name the *unrendered* URL (with literal
credentials masked), and urllib3's debug log has the rendered values masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from ...exceptions import BackendError, BackendUnavailableError, FlowNotFoundError
from ...secrets import redact_urls, redacting, render_recording_values
from ..transport import Transport

if TYPE_CHECKING:
    import requests

Action = Literal["upload", "download"]
Request = tuple[str, dict[str, Any]]
"""An HTTP method and the (unrendered) keyword arguments for ``requests``."""


class HTTPTransport(Transport):
    """The build request (``upload``) and the get-flow request (``download``), each a
    method and keyword arguments for ``requests``, sent through one session."""

    service = "the server"
    auth_hint = (
        "check the credentials in the request headers (their ${NAME} templates and the "
        "secrets they name)"
    )
    not_found_hint = "Check the URL: the service has nothing there."
    put_not_found = BackendError  # a 404 on upload is a wrong URL, not a missing flow

    def __init__(self, upload: Request, download: Request) -> None:
        super().__init__()
        self.requests: dict[Action, Request] = {"upload": upload, "download": download}
        """Each action's request, as stored: templates, never their values."""

    def _make_client(self) -> requests.Session:
        import requests

        return requests.Session()  # retries come from the caller's policy, not from urllib3

    def url(self, location: str) -> str:
        return f"Webhook flow {location!r}"

    def describe(self, action: Action, location: str) -> str:
        """The request as messages name it: method and unrendered URL, credentials masked."""
        method, request = self.requests[action]
        url = redact_urls(str(request["url"]))
        return f"Webhook {action} of flow {location!r} ({method} {url!r})"

    # -- reading an error ------------------------------------------------------------------
    def _status(self, exc: Exception) -> tuple[int, str] | None:
        import requests

        if isinstance(exc, requests.HTTPError) and exc.response is not None:
            response = exc.response
            return response.status_code, f"HTTP {response.status_code} {response.reason}".strip()
        return None

    def _unreachable(self, exc: Exception) -> bool:
        import requests

        return isinstance(exc, requests.RequestException) and not isinstance(
            exc, requests.HTTPError
        )

    def _unreachable_error(self, exc: Exception, what: str) -> BackendUnavailableError:
        return BackendUnavailableError(  # the wording Webhook users (and scripts) know
            f"{what} could not reach {self.service} ({type(exc).__name__}); check the URL "
            "and that the server is running."
        )

    # -- the byte hooks ----------------------------------------------------------------------
    def _put(
        self, location: str, data: bytes, *, overwrite: bool, options: Mapping[str, Any]
    ) -> requests.Response:
        return self._send("upload", location, data)

    def _get(self, location: str) -> bytes:
        return self._send("download", location).content

    def _send(self, action: Action, location: str, data: bytes | None = None) -> requests.Response:
        import requests

        method, unrendered = self.requests[action]
        request, rendered = render_recording_values(unrendered)
        if data is not None:
            request["data"] = data
        if isinstance(request.get("auth"), list):
            request["auth"] = tuple(request["auth"])  # a JSON round trip made the pair a list
        request.setdefault("timeout", self.attempt_timeout)
        try:
            with redacting(rendered):
                response = self.client.request(method, **request)
            if response.status_code >= 400:
                raise requests.HTTPError(response=response)
        except requests.RequestException as exc:
            # Not chained: requests' own message names the rendered URL (maybe a secret).
            not_found = self.put_not_found if action == "upload" else FlowNotFoundError
            raise self.translate(
                exc, self.describe(action, location), not_found=not_found
            ) from None
        return response
