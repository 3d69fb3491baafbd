"""HTTP plumbing of the API: size limits, ETags on reads, and uvicorn in the foreground or in a
thread.

`BodyLimitMiddleware` answers 413 to a body over ``[api] max_body_bytes`` before anything reads
it (so before the key is checked); `BoundedHttpToolsProtocol` answers 431 to a request line
and headers over ``max_header_bytes`` before they are parsed into memory. `ETagMiddleware`
gives every successful GET an ETag (the sha256 of the body, or the one the route set, like the
raw download's content hash) and answers a matching ``If-None-Match`` with 304 and no body.
`ApiServer` runs the app in a background thread (tests, the daemon); `serve_forever` runs it in
the foreground with uvicorn's own signal handling.
"""

from __future__ import annotations

import hashlib
import logging
import re
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from monitor.errors import MonitorError

# Neither health checks nor metrics are cached by anyone; hashing them would be wasted work.
_NO_ETAG_PATHS = frozenset({"/healthz", "/metrics"})


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison, as RFC 9110 prescribes for If-None-Match."""
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


class ETagMiddleware:
    """ETag and 304 Not Modified for every 200 answer to a GET (pure ASGI: no extra task)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] in _NO_ETAG_PATHS:
            await self.app(scope, receive, send)
            return
        if_none_match = Headers(scope=scope).get("if-none-match")
        state: dict[str, Any] = {"mode": None, "start": None, "body": []}

        async def not_modified(start: Message, etag: str) -> None:
            headers = MutableHeaders(raw=list(start["headers"]))
            kept = [
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in headers.items()
                if name in ("etag", "cache-control", "vary", "content-location", "expires")
            ]
            if "etag" not in headers:
                kept.append((b"etag", etag.encode("latin-1")))
            await send({"type": "http.response.start", "status": 304, "headers": kept})
            await send({"type": "http.response.body", "body": b""})

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = Headers(raw=message["headers"])
                if message["status"] != 200:
                    state["mode"] = "pass"
                    await send(message)
                elif "etag" in headers:  # the route knows its validator: stream, do not hash
                    if if_none_match and _etag_matches(if_none_match, headers["etag"]):
                        state["mode"] = "swallow"
                        await not_modified(message, headers["etag"])
                    else:
                        state["mode"] = "pass"
                        await send(message)
                else:
                    state["mode"] = "buffer"
                    state["start"] = message
                return
            if message["type"] != "http.response.body" or state["mode"] == "pass":
                await send(message)
                return
            if state["mode"] == "swallow":
                return
            state["body"].append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(state["body"])
            etag = f'"{hashlib.sha256(body).hexdigest()[:40]}"'
            start = state["start"]
            if if_none_match and _etag_matches(if_none_match, etag):
                await not_modified(start, etag)
                return
            headers = MutableHeaders(raw=list(start["headers"]))
            headers["etag"] = etag
            headers.setdefault("cache-control", "private, no-cache")
            headers.setdefault("vary", "Authorization, X-API-Key")
            await send({**start, "headers": headers.raw})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, wrapped)


DEFAULT_MAX_BODY_BYTES = 1_048_576
DEFAULT_MAX_HEADER_BYTES = 65_536


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a body without Content-Length grows past the limit; an
    HTTPException so that FastAPI's body parsing passes it on instead of calling it a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


async def _send_413(send: Send, limit: int) -> None:
    body = b'{"detail":"the request body is larger than %d bytes"}' % limit
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """413 for a body over `max_body_bytes`: at once when Content-Length says so, else as soon
    as the received chunks pass it. Outermost, so no route, dependency or key check runs first."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _send_413(send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await _send_413(send, limit)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a limit on the request line plus headers: llhttp has
    none, and uvicorn keeps every header it parses, so a 50 MB header was 50 MB (several times
    over) of memory before any route ran. Over the limit: 431 and the connection closes."""

    max_header_bytes = DEFAULT_MAX_HEADER_BYTES
    _header_bytes = 0
    _in_head = True
    _tail = b""  # the last bytes of the head so far: a CRLFCRLF may span two reads

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head, self._header_bytes, self._tail = True, 0, b""
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            # Only the bytes up to the blank line that ends the head count: a read may carry
            # the start of the body too (pipelined heads after it are not counted).
            window = self._tail + data
            end = window.find(b"\r\n\r\n")
            self._header_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._tail))
            if self._header_bytes > self.max_header_bytes:
                self._refuse_head()
                return
            self._tail = window[-3:]
        super().data_received(data)

    def _refuse_head(self) -> None:
        if self.transport.is_closing():
            return
        body = b"request header fields too large"
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
        )
        self.transport.close()


def _limits(app: ASGIApp) -> tuple[int, int]:
    """(max_body_bytes, max_header_bytes) of the app's config, or the defaults."""
    config = getattr(getattr(app, "state", None), "config", None)
    api = getattr(config, "api", None)
    return (
        getattr(api, "max_body_bytes", DEFAULT_MAX_BODY_BYTES),
        getattr(api, "max_header_bytes", DEFAULT_MAX_HEADER_BYTES),
    )


_SIGNATURE = re.compile(r"([?&]sig=)[^&\s]+")


class RedactSignatures(logging.Filter):
    """Access-log lines carry the query string; a change-page link's ``sig`` is a credential."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SIGNATURE.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def _uvicorn_config(app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSignatures) for f in access.filters):
        access.addFilter(RedactSignatures())
    _max_body, max_header = _limits(app)
    protocol = type(
        "BoundedHttpTools", (BoundedHttpToolsProtocol,), {"max_header_bytes": max_header}
    )
    # log_config=None: keep the service's own logging set-up (text or JSON lines).
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        lifespan="off",
        server_header=False,
        http=protocol,
        ws="none",  # the API has no WebSocket route: upgrades are not offered
        h11_max_incomplete_event_size=max_header,
    )


def _bound_url(server: uvicorn.Server, host: str) -> str:
    port = server.servers[0].sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class ApiServer:
    """The API served by uvicorn in a background thread; ``port=0`` picks a free port."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._server = uvicorn.Server(_uvicorn_config(app, host, port))
        self._thread = threading.Thread(target=self._server.run, name="api-server", daemon=True)
        self.url = ""

    def start(self, timeout: float = 15.0) -> str:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise MonitorError(f"the HTTP API did not start on {self.host}")
            time.sleep(0.02)
        self.url = _bound_url(self._server, self.host)
        return self.url

    def stop(self, timeout: float = 15.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> ApiServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def serve_forever(app: ASGIApp, *, host: str, port: int, on_ready: Callable[[str], None]) -> None:
    """Serve in the foreground until SIGTERM/SIGINT (uvicorn finishes requests in flight), then
    return, so the command exits 0 like `run` does."""

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                on_ready(_bound_url(self, host))

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # uvicorn records the signal and re-raises it after its graceful shutdown, so the
            # process would die of it (exit -15). A stop we asked for is a clean exit here.
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True  # a second Ctrl-C: stop waiting for open connections
            self.should_exit = True

    _Server(_uvicorn_config(app, host, port)).run()
