"""`BaseFetcher` over aiohttp: the same GET, for many small requests (the payer re-check, the
CMS Coverage API).

Measured on loopback (1,000 conditional GETs, six at a time, 2-core machine): httpx 2.4-2.9 s of
wall time (about 1 s of CPU), aiohttp 0.3-0.5 s (0.13-0.25 s of CPU). Everything but the one
request is `BaseFetcher`'s (`sources.fetching`) and unchanged: URLs held to the `OutboundPolicy`
before they are requested, redirects not followed by the client but hop by hop by `BaseFetcher.get`
(each hop checked), retries with backoff, a size limit and a whole-response deadline. What httpx's
`policy_client` does at connect time is done here by `PolicyResolver`: every address a host name
resolves to is checked when a connection is made (no DNS cache), and the connection goes to a
checked address. An IP literal is never resolved by aiohttp; `OutboundPolicy.refusal`, which every
URL passes before it is requested, has checked its address already. Proxy variables are ignored
(``trust_env=False``): a proxy would connect on our behalf, unchecked.

aiohttp errors are translated here into `FetchError`; nothing above this module sees aiohttp.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Collection, Mapping
from urllib.parse import urlencode

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from monitor.errors import FetchError
from sources.fetching import BaseFetcher, FetchedBody, Retryable, RetryPolicy
from sources.outbound import OutboundPolicy, Refused

CHUNK_BYTES = 64 * 1024


class PolicyResolver(AbstractResolver):
    """Resolves a host name and checks every address against the policy before aiohttp
    connects to any of them; a refusal raises `Refused` (aiohttp passes it through)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        except OSError as exc:
            raise Refused(f"{host!r} does not resolve ({exc})") from exc
        results: list[ResolveResult] = []
        for info_family, _type, proto, _name, address in infos:
            ip = str(address[0]).split("%", 1)[0]
            reason = self.policy.address_refusal(host, ip)
            if reason is not None:
                raise Refused(reason)
            results.append(
                ResolveResult(
                    hostname=host,
                    host=str(address[0]),
                    port=int(address[1]),
                    family=info_family,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST,
                )
            )
        if not results:
            raise Refused(f"{host!r} resolves to no address")
        return results

    async def close(self) -> None:
        return None


def policy_session(
    policy: OutboundPolicy,
    *,
    timeout_seconds: float,
    headers: Mapping[str, str],
    max_connections: int,
) -> aiohttp.ClientSession:
    """An aiohttp session that connects only where `policy` allows, follows no redirect by
    itself (`AiohttpFetcher` passes ``allow_redirects=False``) and ignores proxy variables."""
    connector = aiohttp.TCPConnector(
        resolver=PolicyResolver(policy),
        use_dns_cache=False,  # every connection checks what the name resolves to now
        limit=max_connections,
        limit_per_host=max_connections,
    )
    return aiohttp.ClientSession(
        connector=connector,
        headers=dict(headers),
        timeout=aiohttp.ClientTimeout(
            total=None,
            connect=timeout_seconds,
            sock_connect=timeout_seconds,
            sock_read=timeout_seconds,
        ),
        trust_env=False,
        auto_decompress=True,
    )


class AiohttpFetcher(BaseFetcher):
    """`BaseFetcher` whose one request goes through an aiohttp session (`policy_session`).

    `session` may be a function that makes one: it is called at the first request, inside the
    event loop (aiohttp refuses to make a session outside one), for a source built before its
    run starts. `aclose` closes a session made that way."""

    def __init__(
        self,
        *,
        source: str,
        session: aiohttp.ClientSession | Callable[[], aiohttp.ClientSession],
        retry: RetryPolicy,
        max_response_bytes: int,
        concurrency: int,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_redirects: int = 5,
        deadline_seconds: float | None = None,
        policy: OutboundPolicy,
        redirect_hosts: Collection[str] = (),
        allowed_hosts: Collection[str] = (),
    ) -> None:
        super().__init__(
            source=source,
            retry=retry,
            max_response_bytes=max_response_bytes,
            concurrency=concurrency,
            sleep=sleep,
            max_redirects=max_redirects,
            deadline_seconds=deadline_seconds,
            policy=policy,
            redirect_hosts=redirect_hosts,
            allowed_hosts=allowed_hosts,
        )
        self._session: aiohttp.ClientSession | None = None
        self._make_session: Callable[[], aiohttp.ClientSession] | None = None
        if isinstance(session, aiohttp.ClientSession):
            self._session = session
        else:
            self._make_session = session

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            assert self._make_session is not None
            self._session = self._make_session()
        return self._session

    async def aclose(self) -> None:
        """Close the session this fetcher made (one it was given is its owner's to close)."""
        if self._make_session is not None and self._session is not None:
            await self._session.close()
            self._session = None

    async def _get_once(
        self,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        not_modified: bool = False,
    ) -> FetchedBody:
        shown = url if not params else f"{url}?{urlencode(params)}"
        try:
            async with (
                asyncio.timeout(self.deadline_seconds),
                self.session.get(
                    url, params=params, headers=headers, allow_redirects=False
                ) as response,
            ):
                return await self._answer(
                    shown,
                    response.status,
                    response.reason or "",
                    _headers(response),
                    response.content.iter_chunked(CHUNK_BYTES),
                    not_modified,
                )
        except Refused as exc:  # from PolicyResolver: the address, after DNS
            raise FetchError(
                self.source, shown, f"refused by the outbound policy: {exc}; not requested"
            ) from exc
        except TimeoutError as exc:  # a read or connect timeout, or the whole deadline
            raise self._timed_out(shown, exc) from exc
        except aiohttp.ClientError as exc:
            # Refused connections, resets, a body cut short (ClientPayloadError), bad framing.
            name = type(exc).__name__
            plain = _PLAIN.get(name)
            # aiohttp's own text ("<ContentLengthError: 400, ...>") does not say what happened.
            detail = f"{plain} ({exc})" if plain and str(exc) else plain or str(exc) or "error"
            raise Retryable(FetchError(self.source, shown, f"{name}: {detail}"), None) from exc


def _headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    """Lower-case names, a repeated header's values joined with ", " (as httpx gives them)."""
    headers: dict[str, str] = {}
    for name, value in response.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


# aiohttp errors that often carry no message.
_PLAIN: dict[str, str] = {
    "ServerDisconnectedError": "the server closed the connection before answering",
    "ClientPayloadError": "the server broke the HTTP exchange (incomplete body?)",
    "ClientConnectorError": "could not connect",
    "ClientOSError": "the connection was reset or closed",
}
