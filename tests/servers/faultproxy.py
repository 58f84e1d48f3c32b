"""A loopback HTTP reverse proxy that records requests and injects failures.

``FaultProxy(target_url).start()`` listens on a free 127.0.0.1 port (``.url``) and forwards
every request to the target server: method, path and query byte for byte, every header
including ``Host`` unchanged (boto3 signs ``Host``; moto checks no signatures, Azurite checks
the shared-key signature over path and query), and the body (``Transfer-Encoding: chunked``
bodies are de-chunked and sent on chunked again, trailers included, so signed headers stay
true). The answer's status, headers and body come back as they were; a chunked answer comes
back with a ``Content-Length``. Only hop-by-hop headers (``Connection``, ``Keep-Alive``,
``Expect``, ...) are not passed on. If the target does not answer, the proxy answers 502.

``.requests`` lists every request seen (``method``, ``path`` with the query, ``headers``,
``body``, the ``status`` answered, and whether it was ``injected``); ``count()`` counts them.

``fail_next(status, times=1)`` makes the next ``times`` requests (optionally only those with
a given ``method`` and/or a ``path_contains`` substring) answer ``status`` without reaching the
target, with an error body in the dialect of the client that asked: S3 XML
(``<Error><Code>SlowDown</Code>...``) for AWS-signed requests, Azure XML plus
``x-ms-error-code`` for requests with ``x-ms-version``, Google's JSON error otherwise (or the
``body``/``content_type`` given). ``drop_next(times=1)`` closes the connection without any
answer, as a crashed server or a network cut would. ``reset()`` forgets requests and rules.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
        "expect",  # the proxy itself answers "100 Continue"; http.client would not wait for it
    }
)
"""Request/answer headers that describe one connection and are not forwarded."""

UPSTREAM_TIMEOUT = 60.0
"""Seconds to wait on the target before answering 502."""

S3_ERROR_CODES = {
    400: ("InvalidRequest", "Injected bad request."),
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
    409: ("OperationAborted", "A conflicting conditional operation is in progress."),
    429: ("SlowDown", "Please reduce your request rate."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}
AZURE_ERROR_CODES = {
    400: ("InvalidInput", "One of the request inputs is not valid."),
    403: ("AuthorizationFailure", "This request is not authorized to perform this operation."),
    404: ("BlobNotFound", "The specified blob does not exist."),
    409: ("LeaseIdMissing", "There is currently a lease on the blob."),
    500: ("InternalError", "The server encountered an internal error. Please retry."),
    503: ("ServerBusy", "The server is currently unable to receive requests. Please retry."),
}


@dataclass
class ProxiedRequest:
    method: str
    path: str
    """Path and query exactly as the client sent them."""
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    """What the proxy answered (None: dropped or still in flight)."""
    injected: bool = False
    """True when the answer was an injected failure (the target never saw the request)."""


@dataclass
class _Rule:
    status: int | None  # None: drop the connection
    remaining: int
    method: str | None = None
    path_contains: str | None = None
    body: bytes | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, method: str, path: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path_contains is None or self.path_contains in path


class _Drop(Exception):
    """Close the client's connection without answering."""


class _QuietThreadingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up (an unread body, an idle keep-alive connection closed, a
        # dropped request) is normal here; anything else is still printed.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


@dataclass
class FaultProxy:
    target_url: str
    requests: list[ProxiedRequest] = field(default_factory=list)
    _rules: list[_Rule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        target = urlsplit(self.target_url)
        if target.scheme not in ("http", "https") or not target.hostname:
            raise ValueError(
                f"FaultProxy needs an http(s)://host:port target, not {self.target_url!r}"
            )
        if target.path not in ("", "/") or target.query:
            raise ValueError(
                f"FaultProxy forwards paths unchanged; give the target's base URL without a path, "
                f"not {self.target_url!r}"
            )
        self._scheme = target.scheme
        self._target_host = target.hostname
        self._target_port = target.port or (443 if target.scheme == "https" else 80)
        self._httpd: ThreadingHTTPServer | None = None

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, and "100 Continue" for Expect
            server_version = "FaultProxy"

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                try:
                    body, trailers = self._read_body()
                except (ValueError, OSError):
                    self.close_connection = True
                    return
                record = ProxiedRequest(self.command, self.path, dict(self.headers), body)
                raw_headers = list(self.headers.items())  # repeated headers stay repeated
                try:
                    status, reason, headers, payload = proxy._answer(record, raw_headers, trailers)
                except _Drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response_only(status, reason)  # the target's Date/Server pass on
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD" and payload:
                    self.wfile.write(payload)

            def _read_body(self) -> tuple[bytes, list[tuple[str, str]] | None]:
                """The de-chunked body, and the trailers (None: the body was not chunked)."""
                encoding = self.headers.get("Transfer-Encoding", "")
                if "chunked" not in encoding.lower():
                    length = int(self.headers.get("Content-Length") or 0)
                    return (self.rfile.read(length) if length else b""), None
                chunks: list[bytes] = []
                while True:
                    size_line = self.rfile.readline(65537)
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                    if size == 0:
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()  # the CRLF after each chunk
                trailers: list[tuple[str, str]] = []
                while True:
                    line = self.rfile.readline(65537)
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    trailers.append((name.strip(), value.strip()))
                return b"".join(chunks), trailers

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

        self._httpd = _QuietThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},  # stop() waits for one poll
            name="fault-proxy",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the fault proxy is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 0)

    # -- control -------------------------------------------------------------------------------
    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        body: bytes | str | None = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status``, without forwarding."""
        if isinstance(body, str):
            body = body.encode()
        rule = _Rule(status, times, method, path_contains, body, content_type, dict(headers or {}))
        with self._lock:
            self._rules.append(rule)

    def drop_next(
        self, times: int = 1, *, method: str | None = None, path_contains: str | None = None
    ) -> None:
        """Close the connection of the next ``times`` matching requests without answering."""
        with self._lock:
            self._rules.append(_Rule(None, times, method, path_contains))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._rules.clear()

    def count(self, method: str | None = None, path_contains: str | None = None) -> int:
        """How many requests (with this method, whose path contains this) the proxy saw."""
        with self._lock:
            return sum(
                1
                for request in self.requests
                if (method is None or request.method == method.upper())
                and (path_contains is None or path_contains in request.path)
            )

    # -- the work ------------------------------------------------------------------------------
    def _answer(
        self,
        record: ProxiedRequest,
        raw_headers: list[tuple[str, str]],
        trailers: list[tuple[str, str]] | None,
    ) -> tuple[int, str | None, list[tuple[str, str]], bytes]:
        with self._lock:
            self.requests.append(record)
            rule = next((r for r in self._rules if r.matches(record.method, record.path)), None)
            if rule is not None:
                rule.remaining -= 1
        if rule is not None:
            record.injected = True
            if rule.status is None:
                raise _Drop
            record.status = rule.status
            return self._injected(record, rule)
        status, reason, headers, payload = self._forward(record, raw_headers, trailers)
        record.status = status
        return status, reason, headers, payload

    def _forward(
        self,
        record: ProxiedRequest,
        raw_headers: list[tuple[str, str]],
        trailers: list[tuple[str, str]] | None,
    ) -> tuple[int, str | None, list[tuple[str, str]], bytes]:
        connection_class = (
            http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        )
        upstream = connection_class(self._target_host, self._target_port, timeout=UPSTREAM_TIMEOUT)
        try:
            upstream.putrequest(
                record.method, record.path, skip_host=True, skip_accept_encoding=True
            )
            for name, value in raw_headers:
                if name.lower() not in HOP_BY_HOP:
                    upstream.putheader(name, value)
            upstream.endheaders()
            if trailers is not None:  # re-chunk: one chunk, then the client's trailers
                framed = b""
                if record.body:
                    framed += f"{len(record.body):x}\r\n".encode() + record.body + b"\r\n"
                framed += b"0\r\n"
                for name, value in trailers:
                    framed += f"{name}: {value}\r\n".encode("latin-1")
                upstream.send(framed + b"\r\n")
            elif record.body:
                upstream.send(record.body)
            response = upstream.getresponse()
            payload = response.read()
        except OSError as exc:
            message = f"fault proxy: target {self.target_url} did not answer: {exc}".encode()
            return 502, "Bad Gateway", [("Content-Type", "text/plain"), _length(message)], message
        finally:
            upstream.close()
        headers = [
            (name, value)
            for name, value in response.getheaders()
            if name.lower() not in HOP_BY_HOP and name.lower() != "transfer-encoding"
        ]
        has_length = any(name.lower() == "content-length" for name, _ in headers)
        if not has_length and record.method != "HEAD":
            headers.append(_length(payload))
        elif not has_length:
            headers.append(("Content-Length", "0"))
        return response.status, response.reason, headers, payload

    @staticmethod
    def _injected(
        record: ProxiedRequest, rule: _Rule
    ) -> tuple[int, str | None, list[tuple[str, str]], bytes]:
        assert rule.status is not None
        status = rule.status
        headers = [("x-fault-proxy", "injected"), *rule.headers.items()]
        lower = {name.lower(): value for name, value in record.headers.items()}
        if rule.body is not None:
            body, content_type = rule.body, rule.content_type or "application/octet-stream"
        elif "x-ms-version" in lower:
            code, message = AZURE_ERROR_CODES.get(status, ("InternalError", "Injected failure."))
            body = (
                '<?xml version="1.0" encoding="utf-8"?><Error><Code>'
                f"{code}</Code><Message>{message}\nRequestId:fault-proxy</Message></Error>"
            ).encode()
            content_type = "application/xml"
            headers += [("x-ms-error-code", code), ("x-ms-request-id", "fault-proxy")]
        elif lower.get("authorization", "").startswith("AWS") or any(
            name.startswith("x-amz-") for name in lower
        ):
            code, message = S3_ERROR_CODES.get(status, ("InternalError", "Injected failure."))
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
                f"{code}</Code><Message>{message}</Message>"
                "<RequestId>fault-proxy</RequestId></Error>"
            ).encode()
            content_type = "application/xml"
        else:
            message = f"injected failure (HTTP {status})"
            reason = {404: "notFound", 403: "forbidden", 429: "rateLimitExceeded"}.get(
                status, "backendError"
            )
            error = {
                "code": status,
                "message": message,
                "errors": [{"domain": "global", "reason": reason, "message": message}],
            }
            body, content_type = json.dumps({"error": error}).encode(), "application/json"
        headers += [("Content-Type", content_type), _length(body)]
        return status, None, headers, body


def _length(payload: bytes) -> tuple[str, str]:
    return ("Content-Length", str(len(payload)))
