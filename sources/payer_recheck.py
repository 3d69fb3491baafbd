"""The re-check of a payer source's known documents, in-process: conditional GETs over aiohttp.

When to use it instead of the Scrapy crawl (`sources.payer_crawl`), the rule: the store already
knows the source's documents, links are followed one level deep (``max_depth = 1``), and this
run's index pages, read again here, link only documents the store knows (by key) and robots.txt
still allows every one of them. Then no discovery is needed: every linked document gets one
conditional GET (its stored ETag / Last-Modified) and only what changed is downloaded; a stored
document no page links any more is probed at its URL, as the crawl does, so a 404 or 410 still
withdraws it in this run. Anything else -- a first fetch, a new link, an index page that fails
or looks wrong, an off-site link, a robots.txt that now forbids a page -- returns None and the
caller runs the full crawl, which discovers and records index errors.

Every request goes through `sources.fetching.BaseFetcher` (over aiohttp, `sources.http_aio`: five
times quicker than httpx for these many small requests) with the source's one `OutboundPolicy`:
URLs checked before they are requested, addresses checked after DNS at connect time, redirects
checked hop by hop (and, as in the crawl, only to the configured hosts exactly), a size limit and
a whole-download deadline. Outcomes are the crawl child's records (``document``, ``not_modified``,
``error``), bodies written under the same scratch directory, so the listing reads both alike.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import aiohttp
import lxml.etree
import lxml.html

from diffing.parse.clean import error_page_reason
from monitor.errors import FetchError
from sources.base import KnownListing
from sources.fetching import FetchedBody, RetryPolicy
from sources.http_aio import AiohttpFetcher, policy_session
from sources.outbound import OutboundPolicy

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


def index_links(
    body: bytes, url: str, *, allow: Iterable[str], deny: Iterable[str]
) -> list[tuple[str, str]] | None:
    """(absolute URL, link text) of each ``a``/``area`` link matching `allow` and not `deny`,
    first occurrence only (as Scrapy's LinkExtractor with ``unique=True``); None when the page
    cannot be believed as an index (not HTML, or an error / bot-challenge page)."""
    try:
        root = lxml.html.document_fromstring(body)
    except (ValueError, lxml.etree.ParserError):
        return None
    title = " ".join(t.strip() for t in root.xpath("//title//text()"))
    text = "\n".join(t.strip() for t in root.xpath("//body//*/text()") if t.strip())
    reason = error_page_reason(title, text)
    if reason is not None and not reason.startswith("almost no text"):
        return None
    base = url
    for href in root.xpath("//base/@href")[:1]:
        base = urljoin(url, str(href).strip())
    allowed = [re.compile(p) for p in allow]
    denied = [re.compile(p) for p in deny]
    links: list[tuple[str, str]] = []
    seen: set[str] = set()
    for element in root.iter("a", "area"):
        href = element.get("href")
        if href is None:
            continue
        link = urljoin(base, href.strip(" \t\n\r\f"))
        unique = link.split("#", 1)[0]  # Scrapy's uniqueness ignores the fragment too
        if urlsplit(link).scheme not in ("http", "https") or unique in seen:
            continue
        if allowed and not any(p.search(link) for p in allowed):
            continue
        if any(p.search(link) for p in denied):
            continue
        seen.add(unique)
        links.append((link, " ".join(str(element.text_content()).split())))
    return links


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _reason(error: FetchError) -> str:
    """The failure without the ``source 'x': GET url:`` prefix FetchError's message carries."""
    text = str(error)
    marker = f"GET {error.url}: "
    return text.split(marker, 1)[1] if marker in text else text


class Rechecker:
    """One re-check run: `run` returns the crawl-style records, or None (crawl instead)."""

    def __init__(
        self,
        *,
        source: str,
        options: RecheckOptions,
        scratch: Path,
        url_key: Callable[[str], str],
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        o = options
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

    @property
    def request_count(self) -> int:
        return self.fetcher.request_count

    async def aclose(self) -> None:
        await self._session.close()

    async def _get(self, url: str, headers: dict[str, str] | None = None) -> FetchedBody:
        await self._pacer.wait(url)
        return await self.fetcher.get(url, headers=headers, not_modified=bool(headers))

    async def run(self, known: KnownListing) -> list[Record] | None:
        o = self.options
        if not known or o.max_depth != 1 or not o.start_urls:
            return None
        linked = await self._read_indexes()
        if linked is None:
            return None
        for url in o.documents:
            linked.setdefault(url, "")
        by_key = {self.url_key(url): url for url in linked}
        known_keys = {key for key, _version in known}
        if len(by_key) != len(linked) or not set(by_key) <= known_keys:
            return None  # a new (or a duplicated) link: discovery decides
        if any(not self.policy.host_allowed(urlsplit(u).hostname or "") for u in linked):
            return None
        if o.obey_robots and not await self._robots_allow(list(linked)):
            return None
        validators = {key: v for (key, _version), v in known.items()}
        self.bodies.mkdir(parents=True, exist_ok=True)
        unlinked = sorted(known_keys - set(by_key))
        origins = sorted({_origin(url) for url in linked} or {_origin(u) for u in o.start_urls})
        probes = (
            []
            if len(unlinked) > MAX_PROBES
            else [
                self._probe(origin + key, validators[key]) for key in unlinked for origin in origins
            ]
        )
        records = await asyncio.gather(
            *(
                self._recheck_one(url, title, validators[self.url_key(url)])
                for url, title in linked.items()
            ),
            *probes,
        )
        return [{"type": "index", "url": url} for url in o.start_urls] + list(records)

    async def _probe(self, url: str, validators: Any) -> Record:
        """A stored document no page links: what its own URL answers now (the crawl's probe:
        404 or 410 without a redirect is what lets the listing report it gone)."""
        headers = {"If-None-Match": str(validators.etag)} if validators.etag else {}
        try:
            fetched = await self._get(url, headers)
        except FetchError as error:
            redirected = error.url != url
            status = error.status
            if redirected and status in (404, 410):
                status = 200  # after a redirect the document lives on elsewhere: it answers
            return {"type": "probe", "url": url, "status": status}
        return {"type": "probe", "url": url, "status": fetched.status}

    async def _read_indexes(self) -> dict[str, str] | None:
        """Linked URL -> link text over every index page; None when any page fails."""
        pages = await asyncio.gather(
            *(self._index(url) for url in self.options.start_urls), return_exceptions=True
        )
        linked: dict[str, str] = {}
        for page in pages:
            if not isinstance(page, list):
                if isinstance(page, BaseException) and not isinstance(page, FetchError):
                    raise page
                return None
            for url, title in page:
                linked.setdefault(url, title)
        return linked

    async def _index(self, url: str) -> list[tuple[str, str]] | None:
        fetched = await self._get(url)
        content_type = fetched.headers.get("content-type", "")
        if content_type and "html" not in content_type.lower():
            return None
        return index_links(fetched.content, url, allow=self.options.allow, deny=self.options.deny)

    async def _robots_allow(self, urls: list[str]) -> bool:
        from protego import Protego  # only sources that obey robots.txt pay for the import

        origins = {f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in urls}
        parsers: dict[str, Any] = {}
        for origin in origins:
            try:
                fetched = await self._get(origin + "/robots.txt")
            except FetchError:
                continue  # as Scrapy: no readable robots.txt allows everything
            parsers[origin] = Protego.parse(fetched.content.decode("utf-8", errors="replace"))
        agent = self.options.user_agent
        for url in urls:
            parser = parsers.get(f"{urlsplit(url).scheme}://{urlsplit(url).netloc}")
            if parser is not None and not parser.can_fetch(url, agent):
                return False
        return True

    async def _recheck_one(self, url: str, title: str, validators: Any) -> Record:
        headers: dict[str, str] = {}
        if validators.etag:
            headers["If-None-Match"] = str(validators.etag)
        if validators.last_modified:
            headers["If-Modified-Since"] = str(validators.last_modified)
        try:
            fetched = await self._get(url, headers)
        except FetchError as error:
            return {"type": "error", "url": url, "message": _reason(error), "index": False}
        if fetched.status == 304:
            return {"type": "not_modified", "url": url}
        path = self.bodies / hashlib.sha256(url.encode()).hexdigest()
        await asyncio.to_thread(path.write_bytes, fetched.content)
        header = fetched.headers.get
        return {
            "type": "document",
            "url": url,
            "final_url": fetched.url,
            "path": str(path),
            "status": fetched.status,
            "content_type": header("content-type") or "",
            "etag": header("etag") or None,
            "last_modified": header("last-modified") or None,
            "title": title,
        }
