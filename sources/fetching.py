"""What every HTTP client of the sources shares, whatever carries the bytes (httpx or aiohttp).

`BaseFetcher.get` follows redirects hop by hop (each hop held to the allowed hosts or the
`OutboundPolicy` before it is requested, at most `max_redirects`), retries retryable failures
with jittered backoff that honours Retry-After, and hands one request to the subclass's
`_get_once`; `_answer` turns one response (status, headers, body chunks) into a `FetchedBody` or
the right error (retry, redirect, size limit). This module imports no HTTP library, so a command
that only needs one client (the payer re-check: aiohttp) does not load the other.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from monitor.errors import FetchError, ResponseTooLarge
from sources.outbound import OutboundPolicy

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


class BaseFetcher:
    """One source's HTTP access: bounded concurrency, retries, a maximum body size; the one
    request is the subclass's `_get_once`."""

    def __init__(
        self,
        *,
        source: str,
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
        redirect_check: Callable[[str, Sequence[str]], Awaitable[str | None]] | None = None,
    ) -> FetchedBody:
        """The body of a 2xx response, after redirects to allowed hosts; retryable failures are
        retried, others raise at once. With `not_modified` (a conditional request), a 304 is
        an answer too: a `FetchedBody` with status 304 and no content. `redirect_check`, given
        a redirect's target and the URLs of the chain so far, may refuse to follow it (its
        reason becomes the error) after the host and policy checks passed."""
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
            if redirect_check is not None:
                reason = await redirect_check(fetched.location, chain)
                if reason is not None:
                    raise FetchError(self.source, chain[0], reason, status=fetched.status)
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
            except Retryable as retryable:
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
        """One request: a `FetchedBody` (via `_answer`), `Retryable`, or a `FetchError`."""
        raise NotImplementedError

    async def _answer(
        self,
        shown: str,
        status: int,
        reason: str,
        headers: dict[str, str],
        body: AsyncIterator[bytes],
        not_modified: bool,
    ) -> FetchedBody:
        """One response, its `headers` with lower-case names: a redirect to follow, a 304
        answer, a retry, an error, or the body read to at most `max_response_bytes` (chunks
        as they arrive, decompressed: a compressed body is held to the limit as it inflates)."""
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
            raise Retryable(
                StatusError(self.source, shown, "server asked to retry", status=status),
                retry_after_seconds(headers.get("retry-after")),
            )
        if status >= 300:  # a 3xx without a Location cannot be followed either
            raise StatusError(self.source, shown, reason or "error", status=status)
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_response_bytes:
            raise ResponseTooLarge(self.source, shown, self.max_response_bytes)
        chunks: list[bytes] = []
        size = 0
        async for chunk in body:
            size += len(chunk)
            if size > self.max_response_bytes:
                raise ResponseTooLarge(self.source, shown, self.max_response_bytes)
            chunks.append(chunk)
        return FetchedBody(url=shown, status=status, headers=headers, content=b"".join(chunks))

    def _timed_out(self, shown: str, exc: BaseException) -> Retryable:
        """A read or connect timeout, or the whole-response deadline, as a retryable error."""
        detail = (
            f"timed out: no complete response within {self.deadline_seconds:g} s"
            if self.deadline_seconds is not None
            else f"timed out ({type(exc).__name__})"
        )
        return Retryable(FetchError(self.source, shown, detail), None)


class StatusError(FetchError):
    """The answer was an HTTP status that is not a body (4xx, 5xx, a 3xx that cannot be
    followed), after the retries a retryable one gets; `status` says which."""


class Retryable(Exception):
    """A failure worth another attempt, with the server's Retry-After when it gave one."""

    def __init__(self, error: FetchError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
