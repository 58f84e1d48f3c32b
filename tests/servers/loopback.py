"""What every in-process test server shares: a threaded stdlib HTTP server on a free
loopback port, started and stopped with the test session."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackHTTPServer:
    """Mixin: ``_serve`` starts the server, ``stop`` ends it, ``port`` is where it listens.

    Subclasses define ``start()`` (calling ``_serve``) and may extend ``stop()``.
    """

    _httpd: ThreadingHTTPServer | None = None

    def _serve(
        self,
        handler: type[BaseHTTPRequestHandler],
        name: str,
        prepare: Callable[[ThreadingHTTPServer], None] | None = None,
    ) -> None:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        if prepare is not None:
            try:
                prepare(httpd)  # e.g. wrap the socket in TLS
            except BaseException:
                httpd.server_close()
                raise
        self._httpd = httpd
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True, name=name).start()

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"the {type(self).__name__} is not started")
        return int(self._httpd.server_address[1])

    def start(self) -> Any:
        raise NotImplementedError  # each server says what it serves

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
