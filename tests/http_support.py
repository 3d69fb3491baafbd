"""Small loopback HTTP servers for tests: one place for the thread, the port and the shutdown.

`loopback_http(Handler)` runs a `ThreadingHTTPServer` on 127.0.0.1 with an ephemeral port in a
daemon thread and yields its base URL; `QuietHandler` is a `BaseHTTPRequestHandler` that logs
nothing and answers with `send_body`. The fixture servers of `fixtures.loopback` stay for the
demo and the benchmarks (keep-alive, faults, request logs); these are for a test's own few pages
or hooks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that keeps test output clean and writes whole responses in one call."""

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: requests are the test's business, not its output's."""

    def send_body(
        self,
        status: int,
        body: bytes = b"",
        *,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))


@contextmanager
def loopback_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on loopback until the block ends; yields ``http://127.0.0.1:PORT``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
