"""A real HTTP server on loopback for Webhook storage: stores bodies, checks a bearer token.

``POST /flows`` stores the body under a new id and answers ``{"id": ...}`` (a server that
assigns ids); ``PUT``/``POST``/``PATCH /flows/<id>`` store under ``<id>``; ``GET`` (or
``POST`` with an empty body) on ``/flows/<id>`` returns it, 404 when missing. Every
request needs ``Authorization: Bearer <token>``, or Basic auth as ``basic_user`` with the token
as password (401 otherwise). ``fail_next(status)``
makes the next requests answer an error, to test error paths and retries.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.servers.loopback import LoopbackHTTPServer


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookServer(LoopbackHTTPServer):
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    basic_user: str = "webhook-user"
    """HTTP Basic auth as this user with ``token`` as the password is accepted too."""
    blobs: dict[str, bytes] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    _failures: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> WebhookServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload = server._respond(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._serve(Handler, "webhook")
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.blobs.clear()
            self.requests.clear()
            self._failures.clear()
            self.token = uuid.uuid4().hex

    def fail_next(self, status: int, times: int = 1) -> None:
        with self._lock:
            self._failures.extend([status] * times)

    def _respond(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        with self._lock:
            self.requests.append(RecordedRequest(method, path, headers, body))
            if self._failures:
                return self._failures.pop(0), b'{"error": "injected failure"}'
            if headers.get("Authorization") not in (
                f"Bearer {self.token}",
                "Basic " + base64.b64encode(f"{self.basic_user}:{self.token}".encode()).decode(),
            ):
                return 401, b'{"error": "bad or missing bearer token"}'
            parts = path.split("?")[0].strip("/").split("/")
            if parts[0] != "flows" or len(parts) > 2:
                return 404, b'{"error": "no such route"}'
            if len(parts) == 1:
                if method != "POST":
                    return 405, b'{"error": "POST to /flows creates a flow"}'
                flow_id = uuid.uuid4().hex
                self.blobs[flow_id] = body
                return 201, json.dumps({"id": flow_id, "size": len(body)}).encode()
            flow_id = parts[1]
            if method in ("PUT", "PATCH") or (method == "POST" and body):
                self.blobs[flow_id] = body
                return 200, json.dumps({"id": flow_id, "size": len(body)}).encode()
            if method in ("GET", "POST"):
                if flow_id not in self.blobs:
                    return 404, b'{"error": "flow not found"}'
                return 200, self.blobs[flow_id]
            return 405, b'{"error": "method not allowed"}'
