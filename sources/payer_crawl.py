"""The payer-policy crawl, run by Scrapy in a child process: ``python -m sources.payer_crawl JOB``.

The job file (JSON) says where to start, which links to follow, the validators of documents
already stored (for conditional GET) and where to write. The child writes each downloaded body
to ``<out>/bodies/<sha256 of url>`` and one JSON line per outcome to ``<out>/results.jsonl``:

    {"type": "index", "url": …}                                 an index page was read
    {"type": "document", "url": …, "path": …, "status": 200, "content_type": …, "etag": …,
     "last_modified": …, "title": …}
    {"type": "not_modified", "url": …}                          304 to a conditional GET
    {"type": "error", "url": …, "message": …, "index": bool}     after Scrapy's retries
    {"type": "skipped", "url": …, "message": …}                 robots.txt or off-site
    {"type": "probe", "url": …, "status": 404 | null}           a stored document not linked

A stored document (in the job's `known`) that no page linked this run is asked for once more,
at its path on each origin this run's documents came from, when the crawl is otherwise done
and every index page was read: its own URL answering 404 or 410 (not after a redirect) is
what lets the monitor report it withdrawn at once rather than after a second listing.

Every request -- start URLs, links, redirects, meta refreshes -- is first held to the job's
`sources.outbound.OutboundPolicy` (host, port, scheme, and after DNS no internal address the
configuration does not name); a refused one is never made, and is an error with its reason.
Records carry the URL that was linked (or configured), also after a redirect, so a document
keeps its key. Redirects are followed only to the allowed hosts (those of the start URLs and
documents, plus `allowed_hosts`); a redirect elsewhere, or a chain that never ends, is an error
of that document. Only http(s) is downloaded. An index page that looks like an error or
bot-challenge page, or links to no document at all, is an index error: the listing is then
incomplete and nothing is taken as withdrawn.

Keeping Scrapy (and its Twisted reactor) in a child keeps the daemon's process clean.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.exceptions import DontCloseSpider, IgnoreRequest
from scrapy.http import Request, Response, TextResponse
from scrapy.linkextractors import LinkExtractor
from scrapy.resolver import CachingThreadedResolver
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.defer import Deferred
from twisted.internet.error import DNSLookupError
from twisted.python.failure import Failure

from sources.outbound import DEFAULT_PORTS, OutboundPolicy, Refused
from sources.payer_links import index_text_problem
from sources.payer_policies import GONE, url_key
from sources.payer_recheck import MAX_PROBES


class RefusedRequest(IgnoreRequest):
    """A request not made: the source's outbound policy does not allow it. Refused before any
    connection; an error of the document (or index page), not a skip."""


class RefusedRedirect(RefusedRequest):
    """A redirect not followed: to a host the job does not allow, or back into its own chain."""


class OutboundPolicyMiddleware:
    """Downloader middleware that holds every request to the job's `OutboundPolicy` before
    anything else sees it (robots.txt included): links, start URLs, requests marked
    `dont_filter` (which Scrapy's offsite filter lets through) and the new requests that
    RedirectMiddleware and MetaRefreshMiddleware make. The host is resolved here and every
    address checked; `PolicyResolver` checks again at connection time (DNS may change)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self._checked: dict[tuple[str, int], str | None] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> OutboundPolicyMiddleware:
        return cls(OutboundPolicy.from_json(crawler.settings.getdict("OUTBOUND_POLICY")))

    def process_request(self, request: Request, spider: scrapy.Spider | None = None) -> None:
        reason = self.policy.refusal(request.url)
        if reason is None:
            parts = urlsplit(request.url)
            origin = (parts.hostname or "", parts.port or DEFAULT_PORTS[parts.scheme.lower()])
            if origin not in self._checked:  # a crawl asks for a handful of hosts, many times
                try:
                    self.policy.checked_addresses(request.url)
                    self._checked[origin] = None
                except Refused as refused:
                    self._checked[origin] = str(refused)
            reason = self._checked[origin]
        if reason is not None:
            raise RefusedRequest(f"refused by the outbound policy: {reason}; not requested")


class PolicyResolver(CachingThreadedResolver):
    """Scrapy's resolver, refusing an address the outbound policy does not allow: the check at
    the moment of connecting, so a name that resolved to a public address for the middleware
    and to an internal one now (DNS rebinding) still reaches nothing."""

    policy: OutboundPolicy

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> PolicyResolver:
        resolver = super().from_crawler(crawler, reactor)
        resolver.policy = OutboundPolicy.from_json(crawler.settings.getdict("OUTBOUND_POLICY"))
        return resolver

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:
        def check(address: str) -> str:
            reason = self.policy.address_refusal(name, address)
            if reason is not None:
                raise DNSLookupError(f"refused by the outbound policy: {reason}")
            return address

        return super().getHostByName(name, timeout).addCallback(check)


class AllowedHostsMiddleware:
    """Downloader middleware that sees each response before Scrapy's RedirectMiddleware: a
    redirect must stay on an allowed host (exactly, not a subdomain) and must not come back to
    a URL of its own chain. Raising here reaches the request's errback; Scrapy's own filters
    (offsite, duplicates) would drop the redirected request silently, and the document with it.
    """

    def process_response(
        self, request: Request, response: Response, spider: scrapy.Spider
    ) -> Response:
        location = response.headers.get("Location")
        if response.status not in _REDIRECTS or not location:
            return response
        target = urljoin(request.url, location.decode("latin-1"))
        host = (urlsplit(target).hostname or "").lower()
        if urlsplit(target).scheme not in ("http", "https") or host not in getattr(
            spider, "hosts", ()
        ):
            raise RefusedRedirect(f"redirected to another host ({target}); not followed")
        chain = [*request.meta.get("redirect_urls", ()), request.url]
        if target in chain:
            raise RefusedRedirect(f"redirect loop ({len(chain)} hop(s) back to {target}); gave up")
        return response


_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def linked_url(request: Request) -> str:
    """The URL that was linked or configured, before any redirect: the document's identity."""
    return str((request.meta.get("redirect_urls") or [request.url])[0])


class CrawlResults:
    """What a crawl child writes: one JSON line per outcome, bodies under ``bodies/`` named by
    the sha256 of their URL (never by anything the site sent)."""

    def __init__(self, out: Path) -> None:
        self.bodies = out / "bodies"
        self.bodies.mkdir(parents=True, exist_ok=True)
        self._file = (out / "results.jsonl").open("a", encoding="utf-8")

    def write(self, **record: Any) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def body_path(self, url: str) -> Path:
        return self.bodies / hashlib.sha256(url.encode()).hexdigest()

    def close(self) -> None:
        self._file.close()


class PolicySpider(scrapy.Spider):
    """Index pages -> links matching `allow` (not `deny`) -> documents, to `max_depth`."""

    name = "payer_policies"

    def __init__(self, job: dict[str, Any], results: CrawlResults, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.results = results
        self.known: dict[str, dict[str, str | bool | None]] = job.get("known", {})
        # deny_extensions=(): Scrapy skips .pdf links by default, and PDFs are the point here.
        self.links = LinkExtractor(
            allow=job.get("allow") or (),
            deny=job.get("deny") or (),
            unique=True,
            deny_extensions=(),
        )
        hosts = {urlsplit(u).hostname for u in job["start_urls"] + job["documents"]}
        hosts |= set(job.get("allowed_hosts") or ())
        self.allowed_domains = sorted(h for h in hosts if h)
        self.hosts = frozenset(h.lower() for h in self.allowed_domains)
        self.seen: set[str] = set()
        self.index_failed = False
        self.probed = False

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> PolicySpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.probe_unlinked, signal=signals.spider_idle)
        return spider

    def probe_unlinked(self) -> None:
        """When everything linked is done: ask for each stored document no page linked."""
        if self.probed:
            return
        self.probed = True
        if self.index_failed or not self.job["start_urls"]:
            return  # an incomplete listing withdraws nothing; nothing to probe for
        linked = {url_key(url) for url in self.seen}
        unlinked = sorted(
            key
            for key, validators in self.known.items()
            if key not in linked and not validators.get("withdrawn")  # reported already
        )
        if not unlinked or len(unlinked) > MAX_PROBES:
            return
        origins = sorted(
            {_origin(url) for url in self.seen} or set(map(_origin, self.job["start_urls"]))
        )
        for key in unlinked:
            for origin in origins:
                url = origin + key
                validators = self.known.get(key) or {}
                headers = (
                    {"If-None-Match": str(validators["etag"])} if validators.get("etag") else {}
                )
                self.crawler.engine.crawl(
                    scrapy.Request(
                        url,
                        headers=headers,
                        callback=self.probe_answered,
                        errback=self.probe_failed,
                        meta={"probe": True, "handle_httpstatus_list": [304, *sorted(GONE)]},
                        dont_filter=True,
                    )
                )
        raise DontCloseSpider

    def probe_answered(self, response: Response) -> None:
        request = response.request
        redirected = request is not None and bool(request.meta.get("redirect_urls"))
        url = linked_url(request) if request is not None else response.url
        # After a redirect the document lives on elsewhere: it answers.
        status = 200 if redirected and response.status in GONE else response.status
        self.results.write(type="probe", url=url, status=status)

    def probe_failed(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        url = linked_url(request) if request is not None else "?"
        status = failure.value.response.status if failure.check(HttpError) else None
        self.results.write(type="probe", url=url, status=status)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for url in self.job["start_urls"]:
            yield scrapy.Request(
                url,
                callback=self.parse_index,
                errback=self.failed,
                meta={"policy_depth": 0, "index": True},
                dont_filter=True,
            )
        for url in self.job["documents"]:
            for request in self._document_request(url, title="", depth=self.job["max_depth"]):
                yield request

    def _document_request(self, url: str, *, title: str, depth: int) -> Iterator[scrapy.Request]:
        if url in self.seen:
            return
        self.seen.add(url)
        host = (urlsplit(url).hostname or "").lower()
        if not any(host == h or host.endswith("." + h) for h in self.hosts):
            # What Scrapy's offsite filter did before these requests were marked dont_filter.
            self.results.write(type="skipped", url=url, message=f"off-site link to {host!r}")
            return
        headers: dict[str, str] = {}
        validators = self.known.get(url_key(url)) or {}
        if validators.get("etag"):
            headers["If-None-Match"] = str(validators["etag"])
        if validators.get("last_modified"):
            headers["If-Modified-Since"] = str(validators["last_modified"])
        yield scrapy.Request(
            url,
            headers=headers,
            callback=self.parse_document,
            errback=self.failed,
            meta={"policy_depth": depth, "title": title, "handle_httpstatus_list": [304]},
            # `seen` already de-duplicates links; Scrapy's filter would also drop a redirect to
            # a URL crawled before, silently, losing the document that redirected.
            dont_filter=True,
        )

    def _follow(self, response: Response, depth: int) -> Iterator[scrapy.Request]:
        if not isinstance(response, TextResponse) or depth >= self.job["max_depth"]:
            return
        for link in self.links.extract_links(response):
            yield from self._document_request(
                link.url, title=" ".join(link.text.split()), depth=depth + 1
            )

    def parse_index(self, response: Response) -> Iterator[scrapy.Request]:
        url = linked_url(response.request) if response.request else response.url
        problem = _index_problem(response)
        requests: list[scrapy.Request] = []
        if problem is None and self.job["max_depth"] > 0:
            requests = list(self._follow(response, 0))
            # (Links already requested from another index page count: only none at all fails.)
            if (
                not requests
                and isinstance(response, TextResponse)
                and not self.links.extract_links(response)
            ):
                problem = "links to no document (an error page, or the site changed?)"
        if problem is not None:
            self.index_failed = True
            self.results.write(type="error", url=url, message=f"index page {problem}", index=True)
            return
        self.results.write(type="index", url=url, status=response.status)
        yield from requests

    def parse_document(self, response: Response) -> Iterator[scrapy.Request]:
        request_url = linked_url(response.request) if response.request else response.url
        if response.status == 304:
            self.results.write(type="not_modified", url=request_url)
            return
        path = self.results.body_path(request_url)
        path.write_bytes(response.body)
        header = response.headers.get
        self.results.write(
            type="document",
            url=request_url,
            final_url=response.url,
            path=str(path),
            status=response.status,
            content_type=(header("Content-Type") or b"").decode("latin-1"),
            etag=(header("ETag") or b"").decode("latin-1") or None,
            last_modified=(header("Last-Modified") or b"").decode("latin-1") or None,
            title=response.meta.get("title", ""),
        )
        yield from self._follow(response, response.meta.get("policy_depth", 1))

    def failed(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        url = linked_url(request) if request is not None else "?"
        index = bool(request is not None and request.meta.get("index"))
        self.index_failed = self.index_failed or index
        redirected = request is not None and bool(request.meta.get("redirect_urls"))
        if failure.check(RefusedRequest) or (
            redirected and failure.check(IgnoreRequest) and not failure.check(HttpError)
        ):
            # Refused by the outbound policy, AllowedHostsMiddleware, the offsite filter or the
            # redirect limit: the document was linked from an allowed page, so this is its
            # error (its reason recorded), not a skip.
            message = str(failure.value)
            if "max redirections" in message:
                message = "too many redirects (a redirect loop?); gave up"
            self.results.write(type="error", url=url, message=message, index=index)
            return
        if failure.check(IgnoreRequest) and not failure.check(HttpError):
            self.results.write(
                type="skipped",
                url=url,
                message=str(failure.value) or "ignored (robots.txt or off-site)",
                index=index,
            )
            return
        if failure.check(HttpError):
            response = failure.value.response
            message = f"HTTP {response.status} after retries"
        else:
            message = _transfer_problem(failure, self.job["max_document_bytes"])
        self.results.write(type="error", url=url, message=message, index=index)


def settings_for(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "ROBOTSTXT_OBEY": job["obey_robots"],
        "USER_AGENT": job["user_agent"],
        "DOWNLOAD_DELAY": job["download_delay_seconds"],
        "RANDOMIZE_DOWNLOAD_DELAY": False,
        "CONCURRENT_REQUESTS": max(8, job["concurrency_per_host"]),
        "CONCURRENT_REQUESTS_PER_DOMAIN": job["concurrency_per_host"],
        "DOWNLOAD_TIMEOUT": job["timeout_seconds"],
        "DOWNLOAD_MAXSIZE": job["max_document_bytes"],
        "DOWNLOAD_WARNSIZE": 0,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": job["max_retries"],
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": job.get("log_level", "WARNING"),
        "REDIRECT_MAX_TIMES": 5,
        "OUTBOUND_POLICY": job["outbound"],
        "DOWNLOADER_MIDDLEWARES": {
            # First of all (before robots.txt at 100 and offsite at 50): nothing off-policy
            # is ever requested, whatever made the request.
            f"{__name__}.OutboundPolicyMiddleware": 10,
            # Above RedirectMiddleware (600), so responses reach it first.
            f"{__name__}.AllowedHostsMiddleware": 650,
        },
        "DNS_RESOLVER": f"{__name__}.PolicyResolver",
        # http(s) only: a link or redirect to file:, ftp:, s3: or data: is never downloaded.
        "DOWNLOAD_HANDLERS": {"file": None, "ftp": None, "s3": None, "data": None},
        "HTTPCACHE_ENABLED": False,
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
    }


# Twisted and Scrapy exceptions whose message is often empty, said plainly.
_PLAIN = {
    "ResponseDataLossError": "connection closed before the whole body arrived (truncated)",
    "PotentialDataLoss": "connection closed before the whole body arrived (truncated)",
    "ResponseFailed": "the connection was lost mid-response (reset or closed)",
    "ConnectionLost": "the connection was lost mid-response (reset or closed)",
    "ConnectionDone": "the connection was closed mid-response",
    "TCPTimedOutError": "timed out",
}


def _transfer_problem(failure: Failure, max_bytes: int) -> str:
    name = failure.type.__name__ if failure.type else "error"
    detail = failure.getErrorMessage().strip()
    if name == "DownloadCancelledError":
        return f"response larger than the {max_bytes}-byte limit; download cancelled ({detail})"
    plain = _PLAIN.get(name)
    if plain and (not detail or detail.startswith("[")):
        return f"{plain} ({name}{': ' + detail if detail else ''})"
    return f"{name}: {detail}" if detail else name


def _index_problem(response: Response) -> str | None:
    """Why an index page cannot be believed (it would list nothing, or the wrong things)."""
    if not isinstance(response, TextResponse):
        return "is not an HTML page"
    title = " ".join(response.css("title::text").getall())
    text = "\n".join(t.strip() for t in response.css("body *::text").getall() if t.strip())
    return index_text_problem(title, text)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def run_spider(
    module: str,
    spider: type[scrapy.Spider],
    argv: list[str],
    check: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """The child process of a crawl: read the job file, run `spider` once, close the results
    (the parent reads them from the job's `out` directory)."""
    if len(argv) != 1:
        print(f"usage: python -m {module} JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    if check is not None:
        check(job)
    results = CrawlResults(Path(job["out"]))
    try:
        process = CrawlerProcess(settings=settings_for(job), install_root_handler=True)
        process.crawl(spider, job=job, results=results)
        process.start()
    finally:
        results.close()
    return 0


def _check_patterns(job: dict[str, Any]) -> None:
    for pattern in (job.get("allow") or []) + (job.get("deny") or []):
        re.compile(pattern)  # a bad pattern fails here, before anything is fetched


def main(argv: list[str]) -> int:
    return run_spider("sources.payer_crawl", PolicySpider, argv, _check_patterns)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
