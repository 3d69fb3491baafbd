"""`HttpFetcher` over a small pool of threads with `http.client` keep-alive connections.

For the payer re-check's many small conditional requests this is the quickest client measured
(`bench/recheck_http.py`: 1,000 conditional GETs on loopback, six at a time, 0.19 s against
aiohttp's 0.3-0.9 s and httpx's 2.4-6.3 s), and it imports nothing beyond the standard library.
Everything but the one request is `HttpFetcher`'s and unchanged: URLs held to the
`OutboundPolicy` before they are requested, redirects not followed by the client but hop by hop
by `HttpFetcher.get` (each hop checked), retries with backoff.

What this module keeps of the httpx path, for each request it makes:
- connections go only to addresses the policy allows, checked after DNS at the moment of
  connecting (`_PolicyConnection.connect`: every address the name resolves to is checked, and
  the socket connects to a checked address; TLS still verifies the host name); no proxy;
- a body larger than the size limit is refused (by its Content-Length, and by counting what
  arrives, after decompression for a gzip or deflate body, so a small compressed body cannot
  inflate past the limit);
- a whole response must arrive within the deadline: each socket read waits at most the time
  left, so a body trickled a byte at a time ends at the deadline.
http.client bounds header lines (64 KB) and their number (100).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin, urlsplit

from monitor.errors import FetchError, ResponseTooLarge
from sources.http import (
    REDIRECT_STATUS,
    RETRYABLE_STATUS,
    FetchedBody,
    HttpFetcher,
    RetryPolicy,
    _Retryable,
    retry_after_seconds,
)
from sources.outbound import DEFAULT_PORTS, OutboundPolicy, Refused

CHUNK_BYTES = 64 * 1024
_Origin = tuple[str, str, int]  # scheme, host, port


class _PolicyConnection(http.client.HTTPConnection):
    """An HTTP connection that connects only to an address the policy allows."""

    def __init__(self, host: str, port: int, *, policy: OutboundPolicy, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.policy = policy

    def connect(self) -> None:
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise Refused(f"{self.host!r} does not resolve ({exc})") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise Refused(f"{self.host!r} resolves to no address")
        for address in addresses:
            reason = self.policy.address_refusal(self.host, address)
            if reason is not None:
                raise Refused(reason)
        self.sock = socket.create_connection((addresses[0], self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PolicyTlsConnection(_PolicyConnection):
    def __init__(
        self,
        host: str,
        port: int,
        *,
        policy: OutboundPolicy,
        timeout: float,
        context: ssl.SSLContext,
    ) -> None:
        super().__init__(host, port, policy=policy, timeout=timeout)
        self.context = context

    def connect(self) -> None:
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.host)


class _Flight:
    """The connection a request is using, so the event loop can cut it at the deadline (a
    response head trickled a byte at a time would otherwise hold its thread)."""

    def __init__(self) -> None:
        self.connection: _PolicyConnection | None = None
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True
        connection = self.connection
        if connection is not None and connection.sock is not None:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class _Answer:
    status: int
    reason: str
    headers: dict[str, str]
    content: bytes


class _Connections:
    """Idle keep-alive connections per origin; a connection is used by one thread at a time."""

    def __init__(self, policy: OutboundPolicy, timeout: float) -> None:
        self.policy = policy
        self.timeout = timeout
        self._idle: dict[_Origin, list[_PolicyConnection]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

    def take(self, origin: _Origin) -> tuple[_PolicyConnection, bool]:
        """A connection to `origin`, and whether it was idle (may have been closed since)."""
        with self._lock:
            idle = self._idle.get(origin)
            if idle:
                return idle.pop(), True
            if origin[0] == "https" and self._tls is None:
                self._tls = ssl.create_default_context()
        scheme, host, port = origin
        if scheme == "https":
            assert self._tls is not None
            made: _PolicyConnection = _PolicyTlsConnection(
                host, port, policy=self.policy, timeout=self.timeout, context=self._tls
            )
        else:
            made = _PolicyConnection(host, port, policy=self.policy, timeout=self.timeout)
        return made, False

    def give(self, origin: _Origin, connection: _PolicyConnection) -> None:
        with self._lock:
            self._idle.setdefault(origin, []).append(connection)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()


class ThreadedFetcher(HttpFetcher):
    """`HttpFetcher` whose one request runs on one of `concurrency` threads over keep-alive
    `http.client` connections; `aclose` ends the threads and the connections."""

    def __init__(
        self,
        *,
        source: str,
        policy: OutboundPolicy,
        retry: RetryPolicy,
        max_response_bytes: int,
        concurrency: int,
        timeout_seconds: float,
        headers: Mapping[str, str],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_redirects: int = 5,
        deadline_seconds: float | None = None,
        redirect_hosts: Collection[str] = (),
    ) -> None:
        super().__init__(
            source=source,
            client=None,  # type: ignore[arg-type]  # `_get_once` below makes its own requests
            retry=retry,
            max_response_bytes=max_response_bytes,
            concurrency=concurrency,
            sleep=sleep,
            max_redirects=max_redirects,
            deadline_seconds=deadline_seconds,
            policy=policy,
            redirect_hosts=redirect_hosts,
        )
        self.timeout_seconds = timeout_seconds
        self.headers = {"Accept-Encoding": "gzip, deflate", **headers}
        self._connections = _Connections(policy, timeout_seconds)
        self._threads = ThreadPoolExecutor(
            max_workers=max(1, concurrency), thread_name_prefix=f"fetch-{source}"
        )

    async def aclose(self) -> None:
        self._threads.shutdown(wait=True)
        self._connections.close()

    async def _get_once(
        self,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        not_modified: bool = False,
    ) -> FetchedBody:
        shown = url if not params else f"{url}?{urlencode(params)}"
        loop = asyncio.get_running_loop()
        flight = _Flight()
        try:
            try:
                running = loop.run_in_executor(
                    self._threads, self._request, shown, dict(headers or {}), flight
                )
                running.add_done_callback(_retrieve)  # after a timeout nobody awaits it
                async with asyncio.timeout(self.deadline_seconds):
                    answer = await asyncio.shield(running)
            except TimeoutError:
                flight.abort()
                raise
        except Refused as exc:  # from _PolicyConnection: the address, after DNS
            raise FetchError(
                self.source, shown, f"refused by the outbound policy: {exc}; not requested"
            ) from exc
        except TimeoutError as exc:
            raise _Retryable(
                FetchError(
                    self.source,
                    shown,
                    f"timed out: no complete response within {self.deadline_seconds:g} s",
                ),
                None,
            ) from exc
        except (OSError, http.client.HTTPException, zlib.error) as exc:
            detail = str(exc) or _PLAIN.get(type(exc).__name__, "transport error")
            raise _Retryable(
                FetchError(self.source, shown, f"{type(exc).__name__}: {detail}"), None
            ) from exc
        return self._answer(shown, answer, not_modified)

    def _answer(self, shown: str, answer: _Answer, not_modified: bool) -> FetchedBody:
        status, headers = answer.status, answer.headers
        location = headers.get("location")
        if status in REDIRECT_STATUS and location:
            return FetchedBody(
                url=shown,
                status=status,
                headers=headers,
                content=b"",
                location=urljoin(shown, location),
            )
        if status == 304 and not_modified:
            return FetchedBody(url=shown, status=status, headers=headers, content=b"")
        if status in RETRYABLE_STATUS:
            raise _Retryable(
                FetchError(self.source, shown, "server asked to retry", status=status),
                retry_after_seconds(headers.get("retry-after")),
            )
        if status >= 300:  # a 3xx without a Location cannot be followed either
            raise FetchError(self.source, shown, answer.reason or "error", status=status)
        return FetchedBody(url=shown, status=status, headers=headers, content=answer.content)

    # -- on a fetch thread -----------------------------------------------------------------

    def _request(self, url: str, headers: dict[str, str], flight: _Flight) -> _Answer:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        origin = (scheme, host, parts.port or DEFAULT_PORTS[scheme])
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        started = time.monotonic()
        deadline = None if self.deadline_seconds is None else started + self.deadline_seconds
        for _attempt in range(2):
            connection, reused = self._connections.take(origin)
            flight.connection = connection
            if flight.aborted:
                raise TimeoutError("no complete response within the deadline")
            try:
                connection.request("GET", target, headers={**self.headers, **headers})
                response = connection.getresponse()
            except (OSError, http.client.HTTPException):
                connection.close()
                if reused:
                    continue  # the server closed an idle connection: once more, on a new one
                raise
            break
        try:
            answer = self._read(url, response, connection, deadline)
        except BaseException:
            response.close()
            connection.close()
            raise
        if response.will_close or not response.isclosed() or flight.aborted:
            response.close()
            connection.close()
        else:
            self._connections.give(origin, connection)
        return answer

    def _read(
        self,
        url: str,
        response: http.client.HTTPResponse,
        connection: _PolicyConnection,
        deadline: float | None,
    ) -> _Answer:
        headers: dict[str, str] = {}
        for name, value in response.getheaders():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        status = response.status
        content = b""
        # Only a 2xx body is read; another answer's (a redirect's, an error page) is not, and
        # its connection is closed rather than reused.
        if 200 <= status < 300:
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_response_bytes:
                raise ResponseTooLarge(self.source, url, self.max_response_bytes)
            content = self._body(url, response, connection, headers, deadline)
        return _Answer(status, response.reason or "", headers, content)

    def _body(
        self,
        url: str,
        response: http.client.HTTPResponse,
        connection: _PolicyConnection,
        headers: dict[str, str],
        deadline: float | None,
    ) -> bytes:
        encoding = headers.get("content-encoding", "").strip().lower()
        inflate = None
        if encoding in ("gzip", "x-gzip"):
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            inflate = zlib.decompressobj()
        limit = self.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        sock = connection.sock
        while True:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no complete response within the deadline")
                if sock is not None:
                    sock.settimeout(min(self.timeout_seconds, left))
            chunk = response.read1(CHUNK_BYTES)
            if not chunk:
                if response.length:  # the server closed before the declared length
                    raise http.client.IncompleteRead(b"", response.length)
                break
            if inflate is not None:
                # At most one byte over the limit comes out; the rest stays compressed.
                chunk = inflate.decompress(chunk, limit + 1 - size)
            size += len(chunk)
            if size > limit:
                raise ResponseTooLarge(self.source, url, limit)
            chunks.append(chunk)
        if inflate is not None:
            rest = inflate.flush()
            size += len(rest)
            if size > limit:
                raise ResponseTooLarge(self.source, url, limit)
            chunks.append(rest)
        if sock is not None:
            sock.settimeout(self.timeout_seconds)
        return b"".join(chunks)


def _retrieve(future: asyncio.Future[_Answer]) -> None:
    if not future.cancelled():
        future.exception()


# Errors that often carry no message.
_PLAIN = {
    "RemoteDisconnected": "the server closed the connection before answering",
    "IncompleteRead": "the server broke the HTTP exchange (incomplete body?)",
    "ConnectionResetError": "the connection was reset or closed",
    "ConnectionRefusedError": "could not connect",
}
