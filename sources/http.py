"""GET with timeouts, a size limit, and retries with backoff that honour Retry-After.

Redirects are followed here, not by httpx, and only to the allowed hosts: a redirect anywhere
else (or a chain longer than `max_redirects`) is a `FetchError`, never a request. With an
`OutboundPolicy`, every URL (the first and every hop) is held to it before it is requested, and
`policy_client` gives an httpx client whose connections go only to addresses the policy allows,
checked after DNS resolution at the moment of connecting. Besides
httpx's per-read timeouts, a whole response must arrive within `deadline_seconds`, so a body
trickled a byte at a time cannot hold a run forever.

httpx errors are translated here into `FetchError`; nothing above this module sees httpx.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import random
import socket
import typing
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from monitor.errors import FetchError, ResponseTooLarge
from sources.outbound import OutboundPolicy, Refused

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    max_retries: int = 4
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    max_retry_after_seconds: float = 120.0


@dataclass(frozen=True, kw_only=True)
class FetchedBody:
    url: str
    status: int
    headers: Mapping[str, str]
    content: bytes
    location: str | None = None  # absolute target of a redirect (not followed yet)


def retry_after_seconds(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or dt.datetime.now(dt.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


class PolicyNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the policy allows: the host is
    resolved here, every address checked, and the connection made to a checked address (TLS
    still verifies the host name). A refusal raises `Refused`, which httpx passes through."""

    def __init__(self, policy: OutboundPolicy, inner: httpcore.AsyncNetworkBackend) -> None:
        self.policy = policy
        self.inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host!r} does not resolve ({exc})") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:
            reason = self.policy.address_refusal(host, address)
            if reason is not None:
                raise Refused(reason)
        return await self.inner.connect_tcp(
            addresses[0],
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Refused(f"unix socket {path!r}: only TCP to allowed hosts")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def policy_client(
    policy: OutboundPolicy,
    *,
    timeout: httpx.Timeout,
    headers: Mapping[str, str],
    limits: httpx.Limits = httpx.Limits(),  # noqa: B008 - immutable
) -> httpx.AsyncClient:
    """An httpx client that follows no redirect by itself, ignores proxy variables (a proxy
    would connect on our behalf, unchecked) and connects only where `policy` allows."""
    transport = httpx.AsyncHTTPTransport(limits=limits)
    # httpx has no public seam for the network backend; its pool is built the same way here.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=PolicyNetworkBackend(policy, httpcore.AnyIOBackend()),
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        headers=dict(headers),
        follow_redirects=False,
        trust_env=False,
    )


class HttpFetcher:
    """One source's HTTP access: bounded concurrency, retries, a maximum body size."""

    def __init__(
        self,
        *,
        source: str,
        client: httpx.AsyncClient,
        retry: RetryPolicy,
        max_response_bytes: int,
        concurrency: int,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        allowed_hosts: Collection[str] = (),
        max_redirects: int = 5,
        deadline_seconds: float | None = None,
        policy: OutboundPolicy | None = None,
        redirect_hosts: Collection[str] = (),
    ) -> None:
        self.source = source
        self.client = client
        self.retry = retry
        self.max_response_bytes = max_response_bytes
        # Empty: redirects are not followed at all (each one is a FetchError).
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        # With a policy, every URL (not only a redirect's target) must pass it.
        self.policy = policy
        # Non-empty: a redirect must also land on one of these hosts exactly (the policy may
        # allow subdomains for links, as the payer crawl does, but not for redirects).
        self.redirect_hosts = frozenset(h.lower() for h in redirect_hosts)
        self.max_redirects = max_redirects
        self.deadline_seconds = deadline_seconds
        self._slots = asyncio.Semaphore(concurrency)
        self._sleep = sleep
        self._random = random.Random()
        self.request_count = 0

    def _backoff(self, attempt: int) -> float:
        base = min(self.retry.max_backoff_seconds, self.retry.backoff_seconds * 2**attempt)
        return base * (0.5 + self._random.random() / 2)  # jitter: 50-100 % of the step

    async def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        not_modified: bool = False,
    ) -> FetchedBody:
        """The body of a 2xx response, after redirects to allowed hosts; retryable failures are
        retried, others raise at once. With `not_modified` (a conditional request), a 304 is
        an answer too: a `FetchedBody` with status 304 and no content."""
        chain: list[str] = []
        target, query = url, params
        if self.policy is not None and (reason := self.policy.refusal(url)) is not None:
            raise FetchError(self.source, url, f"refused by the outbound policy: {reason}")
        while True:
            fetched = await self._get_retrying(target, query, headers, not_modified)
            if fetched.location is None:
                return fetched
            chain.append(fetched.url)
            host = (urlsplit(fetched.location).hostname or "").lower()
            if self.redirect_hosts and host not in self.redirect_hosts:
                raise FetchError(
                    self.source,
                    chain[0],
                    f"redirected to another host ({fetched.location}); not followed",
                    status=fetched.status,
                )
            if self.policy is not None:
                reason = self.policy.refusal(fetched.location)
                if reason is not None:
                    same_host = host == (urlsplit(fetched.url).hostname or "").lower()
                    moved = "to" if same_host else "to another host"
                    raise FetchError(
                        self.source,
                        chain[0],
                        f"redirected {moved} ({fetched.location}); not followed: "
                        f"refused by the outbound policy: {reason}",
                        status=fetched.status,
                    )
            elif urlsplit(fetched.location).scheme not in ("http", "https") or (
                host not in self.allowed_hosts
            ):
                raise FetchError(
                    self.source,
                    chain[0],
                    f"redirected to another host ({fetched.location}); not followed",
                    status=fetched.status,
                )
            if len(chain) > self.max_redirects:
                raise FetchError(
                    self.source,
                    chain[0],
                    f"more than {self.max_redirects} redirects (a redirect loop?); gave up",
                    status=fetched.status,
                )
            target, query = fetched.location, None

    async def _get_retrying(
        self,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        not_modified: bool = False,
    ) -> FetchedBody:
        last_error: FetchError | None = None
        for attempt in range(self.retry.max_retries + 1):
            delay = self._backoff(attempt)
            try:
                async with self._slots:
                    self.request_count += 1
                    return await self._get_once(url, params, headers, not_modified)
            except _Retryable as retryable:
                last_error = retryable.error
                if retryable.retry_after is not None:
                    delay = min(retryable.retry_after, self.retry.max_retry_after_seconds)
            if attempt < self.retry.max_retries:
                await self._sleep(delay)
        assert last_error is not None
        raise last_error

    async def _get_once(
        self,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        not_modified: bool = False,
    ) -> FetchedBody:
        shown = url if not params else f"{url}?{httpx.QueryParams(params)}"
        try:
            async with (
                asyncio.timeout(self.deadline_seconds),
                self.client.stream("GET", url, params=params, headers=headers) as response,
            ):
                status = response.status_code
                location = response.headers.get("location")
                if status in REDIRECT_STATUS and location:
                    return FetchedBody(
                        url=shown,
                        status=status,
                        headers=dict(response.headers),
                        content=b"",
                        location=urljoin(shown, location),
                    )
                if status == 304 and not_modified:
                    return FetchedBody(
                        url=shown, status=status, headers=dict(response.headers), content=b""
                    )
                if status in RETRYABLE_STATUS:
                    raise _Retryable(
                        FetchError(self.source, shown, "server asked to retry", status=status),
                        retry_after_seconds(response.headers.get("retry-after")),
                    )
                if status >= 300:  # a 3xx without a Location cannot be followed either
                    raise FetchError(
                        self.source, shown, response.reason_phrase or "error", status=status
                    )
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > self.max_response_bytes:
                    raise ResponseTooLarge(self.source, shown, self.max_response_bytes)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_response_bytes:
                        raise ResponseTooLarge(self.source, shown, self.max_response_bytes)
                    chunks.append(chunk)
                return FetchedBody(
                    url=shown,
                    status=status,
                    headers=dict(response.headers),
                    content=b"".join(chunks),
                )
        except Refused as exc:  # from PolicyNetworkBackend: the address, after DNS
            raise FetchError(
                self.source, shown, f"refused by the outbound policy: {exc}; not requested"
            ) from exc
        except httpx.TimeoutException as exc:
            raise _Retryable(
                FetchError(self.source, shown, f"timed out ({type(exc).__name__})"), None
            ) from exc
        except TimeoutError as exc:  # asyncio.timeout: the whole response took too long
            raise _Retryable(
                FetchError(
                    self.source,
                    shown,
                    f"timed out: no complete response within {self.deadline_seconds:g} s",
                ),
                None,
            ) from exc
        except httpx.TransportError as exc:
            # Includes a body cut short (RemoteProtocolError) and refused connections.
            detail = str(exc) or _PLAIN_TRANSPORT.get(type(exc).__name__, "transport error")
            raise _Retryable(
                FetchError(self.source, shown, f"{type(exc).__name__}: {detail}"), None
            ) from exc


# httpx errors that often carry no message (a reset connection gives an empty ReadError).
_PLAIN_TRANSPORT = {
    "ReadError": "the connection was reset or closed while reading the response",
    "WriteError": "the connection was reset or closed while sending the request",
    "ConnectError": "could not connect",
    "RemoteProtocolError": "the server broke the HTTP exchange (incomplete body?)",
}


class _Retryable(Exception):
    def __init__(self, error: FetchError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
