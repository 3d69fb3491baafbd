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
import socket
import typing
from collections.abc import Awaitable, Callable, Collection, Mapping

import httpcore
import httpx

from monitor.errors import FetchError
from sources.fetching import (
    REDIRECT_STATUS,
    RETRYABLE_STATUS,
    BaseFetcher,
    FetchedBody,
    Retryable,
    RetryPolicy,
    retry_after_seconds,
)
from sources.outbound import OutboundPolicy, Refused

__all__ = [
    "REDIRECT_STATUS",
    "RETRYABLE_STATUS",
    "FetchedBody",
    "HttpFetcher",
    "RetryPolicy",
    "policy_client",
    "retry_after_seconds",
]


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


class HttpFetcher(BaseFetcher):
    """`BaseFetcher` whose one request goes through an httpx client (`policy_client`)."""

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
        super().__init__(
            source=source,
            retry=retry,
            max_response_bytes=max_response_bytes,
            concurrency=concurrency,
            sleep=sleep,
            allowed_hosts=allowed_hosts,
            max_redirects=max_redirects,
            deadline_seconds=deadline_seconds,
            policy=policy,
            redirect_hosts=redirect_hosts,
        )
        self.client = client

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
                return await self._answer(
                    shown,
                    response.status_code,
                    response.reason_phrase,
                    dict(response.headers),
                    response.aiter_bytes(),
                    not_modified,
                )
        except Refused as exc:  # from PolicyNetworkBackend: the address, after DNS
            raise FetchError(
                self.source, shown, f"refused by the outbound policy: {exc}; not requested"
            ) from exc
        except httpx.TimeoutException as exc:
            raise Retryable(
                FetchError(self.source, shown, f"timed out ({type(exc).__name__})"), None
            ) from exc
        except TimeoutError as exc:  # asyncio.timeout: the whole response took too long
            raise self._timed_out(shown, exc) from exc
        except httpx.TransportError as exc:
            # Includes a body cut short (RemoteProtocolError) and refused connections.
            detail = str(exc) or _PLAIN_TRANSPORT.get(type(exc).__name__, "transport error")
            raise Retryable(
                FetchError(self.source, shown, f"{type(exc).__name__}: {detail}"), None
            ) from exc


# httpx errors that often carry no message (a reset connection gives an empty ReadError).
_PLAIN_TRANSPORT = {
    "ReadError": "the connection was reset or closed while reading the response",
    "WriteError": "the connection was reset or closed while sending the request",
    "ConnectError": "could not connect",
    "RemoteProtocolError": "the server broke the HTTP exchange (incomplete body?)",
}
