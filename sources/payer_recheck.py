"""A payer source's fetch in-process, over aiohttp: the first fetch and every re-check of a
source whose links are followed one level deep, with the outcomes the Scrapy crawl would record.

When it runs instead of the crawl (`sources.payer_crawl`): ``max_depth = 1`` and at least one
start URL. Then the crawl's decisions are few and all reproduced here: index pages are read (an
error, a robots.txt refusal, an error or bot-challenge page or a page linking nothing is an index
error: the listing is incomplete), their links taken as Scrapy's LinkExtractor takes them
(`sources.payer_links`), off-site links skipped, robots.txt obeyed (also for index pages and
redirect targets), every linked document asked once with a conditional GET when the store knows
it (its ETag / Last-Modified), and -- when every index page was read -- each stored document no
page links any more probed at its URL, so a 404 or 410 withdraws it in this run. Whatever only
the crawl can judge -- an index page that is not HTML, a ``<meta http-equiv="refresh">`` Scrapy
would follow -- returns None and the caller runs the crawl.

Every request goes through `sources.fetching.BaseFetcher` (over aiohttp, `sources.http_aio`: five
times quicker than httpx for these many small requests) with the source's one `OutboundPolicy`:
URLs checked before they are requested, addresses checked after DNS at connect time, redirects
checked hop by hop (and, as in the crawl, only to the configured hosts exactly, never back into
their own chain), a size limit and a whole-download deadline. Outcomes are the crawl child's
records (``index``, ``document``, ``not_modified``, ``error``, ``skipped``, ``probe``), bodies
written under the same scratch directory, so the listing reads both alike. Error messages are the
crawl's for HTTP statuses, refusals and redirects; a transport failure (timeout, reset) is
worded by aiohttp rather than Twisted.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urldefrag, urlsplit

import aiohttp

from monitor.errors import FetchError, ResponseTooLarge
from sources.base import KnownListing
from sources.fetching import FetchedBody, RetryPolicy, StatusError
from sources.http_aio import AiohttpFetcher, policy_session
from sources.outbound import OutboundPolicy
from sources.payer_links import (
    extract_links,
    index_problem,
    is_html,
    may_refresh,
    meta_refresh,
    read_page,
)

Record = dict[str, Any]
MAX_PROBES = 200  # more stored documents unlinked at once is a broken listing, not withdrawals
RETRY_BACKOFF_SECONDS = 0.25  # Scrapy retries at once; a short pause is kinder and as quick


class RecheckOptions(Protocol):
    """What the re-check reads of a source's options (`PayerPoliciesOptions` has them all)."""

    @property
    def start_urls(self) -> tuple[str, ...]: ...
    @property
    def documents(self) -> tuple[str, ...]: ...
    @property
    def allow(self) -> tuple[str, ...]: ...
    @property
    def deny(self) -> tuple[str, ...]: ...
    @property
    def allowed_hosts(self) -> tuple[str, ...]: ...
    @property
    def max_depth(self) -> int: ...
    @property
    def obey_robots(self) -> bool: ...
    @property
    def download_delay_seconds(self) -> float: ...
    @property
    def concurrency_per_host(self) -> int: ...
    @property
    def timeout_seconds(self) -> float: ...
    @property
    def max_retries(self) -> int: ...
    @property
    def max_document_bytes(self) -> int: ...
    @property
    def user_agent(self) -> str: ...
    @property
    def outbound(self) -> OutboundPolicy: ...


class _Pacer:
    """`download_delay_seconds` between the starts of two requests to the same host, as
    Scrapy's DOWNLOAD_DELAY does; free when the delay is 0."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def wait(self, url: str) -> None:
        if self.delay <= 0:
            return
        host = (urlsplit(url).hostname or "").lower()
        async with self._locks.setdefault(host, asyncio.Lock()):
            pause = self._next.get(host, 0.0) - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            self._next[host] = time.monotonic() + self.delay


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _reason(error: FetchError) -> str:
    """The failure without the ``source 'x': GET url:`` prefix FetchError's message carries."""
    text = str(error)
    marker = f"GET {error.url}: "
    return text.split(marker, 1)[1] if marker in text else text


_T = TypeVar("_T")


async def _all(calls: Iterable[Awaitable[_T]]) -> list[_T]:
    """`asyncio.gather` that cancels the other calls when one raises (gather leaves them
    running, here against a session about to be closed)."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class _Unjudgeable(Exception):
    """Something only the crawl can judge (a page it would read differently): run it instead."""


def _crawl_message(error: FetchError, max_bytes: int) -> str:
    """A failure in the words the crawl records it with (`sources.payer_crawl.PolicySpider`)."""
    if isinstance(error, ResponseTooLarge):
        return f"response larger than the {max_bytes}-byte limit; download cancelled"
    if isinstance(error, StatusError):
        return f"HTTP {error.status} after retries"
    text = _reason(error)
    if error.status is not None:
        text = text.removesuffix(f" (HTTP {error.status})")
    if text.startswith("more than ") and "redirects" in text:
        return "too many redirects (a redirect loop?); gave up"
    refused = _REDIRECT_REFUSED.fullmatch(text)
    if refused is not None:  # the crawl refuses the redirected request itself
        return f"{refused.group(1)}; not requested"
    return text


_REDIRECT_REFUSED = re.compile(
    r"redirected (?:to|to another host) \(.*\); not followed: (refused by the outbound policy: .*)"
)
ROBOTS_FORBIDDEN = "Forbidden by robots.txt"  # Scrapy's RobotsTxtMiddleware


class Rechecker:
    """One in-process run: `run` returns the crawl-style records, or None (crawl instead).
    `discovered` says afterwards whether any linked document was new to the store."""

    def __init__(
        self,
        *,
        source: str,
        options: RecheckOptions,
        scratch: Path,
        url_key: Callable[[str], str],
        session: aiohttp.ClientSession | None = None,
        on_body: Callable[[Record, bytes], bool] | None = None,
    ) -> None:
        o = options
        # Told of each document body as it arrives (with its record), while the others are
        # still being downloaded: the source hands it on to the run (`sources.base.Announcing`)
        # and, when it keeps the body in memory (says True), it is not written to disk.
        self.on_body = on_body
        self.source = source
        self.options = options
        self.url_key = url_key
        self.bodies = scratch / "bodies"
        hosts = {urlsplit(u).hostname for u in o.start_urls + o.documents}
        self.hosts = frozenset(h.lower() for h in hosts | set(o.allowed_hosts) if h)
        self.policy = o.outbound
        connections = o.concurrency_per_host * max(1, len(self.hosts))
        self._session = session or policy_session(
            self.policy,
            timeout_seconds=o.timeout_seconds,
            headers={"User-Agent": o.user_agent},
            max_connections=connections,
        )
        self.fetcher = AiohttpFetcher(
            source=source,
            session=self._session,
            retry=RetryPolicy(
                max_retries=o.max_retries,
                backoff_seconds=RETRY_BACKOFF_SECONDS,
                max_backoff_seconds=5.0,
            ),
            max_response_bytes=o.max_document_bytes,
            concurrency=o.concurrency_per_host,
            max_redirects=5,
            deadline_seconds=o.timeout_seconds,
            policy=self.policy,
            redirect_hosts=self.hosts,
        )
        self._pacer = _Pacer(o.download_delay_seconds)
        self._robots: dict[str, asyncio.Future[Any]] = {}
        self._refusals: dict[str, str | None] = {}
        self.discovered = False

    @property
    def request_count(self) -> int:
        return self.fetcher.request_count

    async def aclose(self) -> None:
        await self._session.close()

    async def _get(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        *,
        not_modified: bool = False,
        robots: bool = True,
    ) -> FetchedBody:
        await self._pacer.wait(url)
        check = self._redirect_check if robots else self._loop_check
        return await self.fetcher.get(
            url, headers=headers, not_modified=not_modified, redirect_check=check
        )

    async def run(self, known: KnownListing) -> list[Record] | None:
        o = self.options
        if o.max_depth != 1 or not o.start_urls:
            return None
        self.bodies.mkdir(parents=True, exist_ok=True)
        try:
            pages = await _all(self._index(url) for url in o.start_urls)
        except _Unjudgeable:
            return None
        records: list[Record] = []
        # URL -> link text, first come first served: configured documents (as the crawl's
        # start requests, untitled), then each index page's links in page order.
        linked: dict[str, str] = dict.fromkeys(o.documents, "")
        index_failed = False
        for record, links in pages:
            records.append(record)
            index_failed = index_failed or record["type"] != "index"
            for url, text in links:
                linked.setdefault(url, " ".join(text.split()))
        known_keys = {key for key, _version in known}
        wanted: list[tuple[str, str]] = []
        for url, title in linked.items():
            host = (urlsplit(url).hostname or "").lower()
            if not any(host == h or host.endswith("." + h) for h in self.hosts):
                records.append(
                    {"type": "skipped", "url": url, "message": f"off-site link to {host!r}"}
                )
            else:
                wanted.append((url, title))
        self.discovered = any(self.url_key(url) not in known_keys for url, _ in wanted)
        validators = {key: v for (key, _version), v in known.items()}
        try:
            records += await _all(
                self._document(url, title, validators.get(self.url_key(url)))
                for url, title in wanted
            )
        except _Unjudgeable:
            return None
        if not index_failed:
            records += await self._probes(known_keys, validators, list(linked))
        return records

    async def _index(self, url: str) -> tuple[Record, list[tuple[str, str]]]:
        """An index page's record (``index``, or an ``error`` / ``skipped`` one with
        ``index: True``) and its links."""
        refused = await self._refusal(url)
        if refused is not None:
            return refused | {"index": True}, []
        try:
            fetched = await self._get(url)
        except FetchError as error:
            message = _crawl_message(error, self.options.max_document_bytes)
            return {"type": "error", "url": url, "message": message, "index": True}, []
        content_type = fetched.headers.get("content-type", "")
        if not is_html(content_type):
            raise _Unjudgeable(f"index page {url} is not declared HTML ({content_type!r})")
        page = read_page(fetched.content, fetched.url, content_type)
        if meta_refresh(page) is not None:
            raise _Unjudgeable(f"index page {url} refreshes to another page")
        problem = index_problem(page)
        links = (
            []
            if problem is not None
            else extract_links(page, allow=self.options.allow, deny=self.options.deny)
        )
        if problem is None and not links:
            problem = "links to no document (an error page, or the site changed?)"
        if problem is not None:
            return {
                "type": "error",
                "url": url,
                "message": f"index page {problem}",
                "index": True,
            }, []
        return {"type": "index", "url": url, "status": fetched.status}, links

    async def _refusal(self, url: str) -> Record | None:
        """The record of a request the crawl would not make: refused by the outbound policy (an
        error) or by robots.txt (a skip); None when it may be made."""
        origin = _origin(url)  # the policy judges scheme, host and port: once per origin
        if origin not in self._refusals:
            self._refusals[origin] = self.policy.refusal(url)
        reason = self._refusals[origin]
        if reason is not None:
            message = f"refused by the outbound policy: {reason}; not requested"
            return {"type": "error", "url": url, "message": message, "index": False}
        if self.options.obey_robots and not await self._robots_allow(url):
            return {"type": "skipped", "url": url, "message": ROBOTS_FORBIDDEN, "index": False}
        return None

    async def _loop_check(self, target: str, chain: Sequence[str]) -> str | None:
        """What the crawl's AllowedHostsMiddleware says of a redirect back into its chain."""
        if target in chain:
            return f"redirect loop ({len(chain)} hop(s) back to {target}); gave up"
        return None

    async def _redirect_check(self, target: str, chain: Sequence[str]) -> str | None:
        """What the crawl's AllowedHostsMiddleware and RobotsTxtMiddleware say of a redirect
        the host and policy checks let through."""
        loop = await self._loop_check(target, chain)
        if loop is not None:
            return loop
        if self.options.obey_robots and not await self._robots_allow(target):
            return ROBOTS_FORBIDDEN
        return None

    async def _robots_allow(self, url: str) -> bool:
        """Whether robots.txt of `url`'s host lets the user agent fetch it: read once per host
        (as Scrapy: by network location), a robots.txt that cannot be read allows everything."""
        parts = urlsplit(url)
        parser = self._robots.get(parts.netloc)
        if parser is None:
            parser = self._robots[parts.netloc] = asyncio.ensure_future(
                self._read_robots(f"{parts.scheme}://{parts.netloc}/robots.txt")
            )
        rules = await parser
        return rules is None or bool(rules.can_fetch(url, self.options.user_agent))

    async def _read_robots(self, url: str) -> Any:
        from protego import Protego  # only sources that obey robots.txt pay for the import

        if self.policy.refusal(url) is not None:
            return None
        try:
            # Not held to robots.txt itself (as Scrapy's robots.txt request): a redirect to
            # another robots.txt of the host would wait for this very read.
            fetched = await self._get(url, robots=False)
        except FetchError:
            return None  # as Scrapy when robots.txt cannot be read: everything allowed
        return Protego.parse(fetched.content.decode("utf-8-sig", errors="ignore"))

    async def _document(self, url: str, title: str, validators: Any) -> Record:
        refused = await self._refusal(url)
        if refused is not None:
            return refused
        headers: dict[str, str] = {}
        if validators is not None and validators.etag:
            headers["If-None-Match"] = str(validators.etag)
        if validators is not None and validators.last_modified:
            headers["If-Modified-Since"] = str(validators.last_modified)
        try:
            fetched = await self._get(url, headers, not_modified=True)
        except FetchError as error:
            message = _crawl_message(error, self.options.max_document_bytes)
            return {"type": "error", "url": url, "message": message, "index": False}
        if fetched.status == 304:
            return {"type": "not_modified", "url": url}
        header = fetched.headers.get
        content_type = header("content-type") or ""
        if may_refresh(fetched.content, content_type):
            raise _Unjudgeable(f"{url} refreshes to another page")
        path = self.bodies / hashlib.sha256(url.encode()).hexdigest()
        record: Record = {
            "type": "document",
            "url": url,
            "final_url": urldefrag(fetched.url)[0],  # as Scrapy's response.url
            "path": str(path),
            "status": fetched.status,
            "content_type": content_type,
            "etag": header("etag") or None,
            "last_modified": header("last-modified") or None,
            "title": title,
        }
        if self.on_body is None or not self.on_body(record, fetched.content):
            await asyncio.to_thread(path.write_bytes, fetched.content)
        return record

    async def _probes(
        self, known_keys: set[str], validators: dict[str, Any], linked: list[str]
    ) -> list[Record]:
        """The crawl's probes: each stored document no page linked, asked at its path on each
        origin this run's links came from (none when more than MAX_PROBES are unlinked).
        Documents reported withdrawn already are not asked again."""
        unlinked = sorted(
            key
            for key in known_keys - {self.url_key(url) for url in linked}
            if not validators[key].withdrawn
        )
        if not unlinked or len(unlinked) > MAX_PROBES:
            return []
        origins = sorted(
            {_origin(u) for u in linked} or {_origin(u) for u in self.options.start_urls}
        )
        return await _all(
            self._probe(origin + key, validators[key]) for key in unlinked for origin in origins
        )

    async def _probe(self, url: str, validators: Any) -> Record:
        """What a stored document's own URL answers now: 404 or 410 without a redirect is what
        lets the listing report it gone; a request not made or a failure answers None."""
        if await self._refusal(url) is not None:
            return {"type": "probe", "url": url, "status": None}
        headers = {"If-None-Match": str(validators.etag)} if validators.etag else {}
        try:
            fetched = await self._get(url, headers, not_modified=True)
        except StatusError as error:
            status = error.status
            if error.url != url and status in (404, 410):
                status = 200  # after a redirect the document lives on elsewhere: it answers
            return {"type": "probe", "url": url, "status": status}
        except FetchError:
            return {"type": "probe", "url": url, "status": None}
        return {"type": "probe", "url": url, "status": fetched.status}
