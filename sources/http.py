"""GET with timeouts, a size limit, and retries with backoff that honour Retry-After.

httpx errors are translated here into `FetchError`; nothing above this module sees httpx.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx

from monitor.errors import FetchError, ResponseTooLarge

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


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
    ) -> None:
        self.source = source
        self.client = client
        self.retry = retry
        self.max_response_bytes = max_response_bytes
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
    ) -> FetchedBody:
        """The body of a 2xx response; retryable failures are retried, others raise at once."""
        last_error: FetchError | None = None
        for attempt in range(self.retry.max_retries + 1):
            delay = self._backoff(attempt)
            try:
                async with self._slots:
                    self.request_count += 1
                    return await self._get_once(url, params, headers)
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
    ) -> FetchedBody:
        shown = url if not params else f"{url}?{httpx.QueryParams(params)}"
        try:
            async with self.client.stream("GET", url, params=params, headers=headers) as response:
                status = response.status_code
                if status in RETRYABLE_STATUS:
                    raise _Retryable(
                        FetchError(self.source, shown, "server asked to retry", status=status),
                        retry_after_seconds(response.headers.get("retry-after")),
                    )
                if status >= 400:
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
        except httpx.TimeoutException as exc:
            raise _Retryable(
                FetchError(self.source, shown, f"timed out ({type(exc).__name__})"), None
            ) from exc
        except httpx.TransportError as exc:
            # Includes a body cut short (RemoteProtocolError) and refused connections.
            raise _Retryable(
                FetchError(self.source, shown, f"{type(exc).__name__}: {exc}"), None
            ) from exc


class _Retryable(Exception):
    def __init__(self, error: FetchError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
