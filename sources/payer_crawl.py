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

Keeping Scrapy (and its Twisted reactor) in a child keeps the daemon's process clean.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.linkextractors import LinkExtractor
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from sources.payer_policies import url_key


class _Results:
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

    def __init__(self, job: dict[str, Any], results: _Results, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.results = results
        self.known: dict[str, dict[str, str | None]] = job.get("known", {})
        # deny_extensions=(): Scrapy skips .pdf links by default, and PDFs are the point here.
        self.links = LinkExtractor(
            allow=job.get("allow") or (),
            deny=job.get("deny") or (),
            unique=True,
            deny_extensions=(),
        )
        hosts = {urlsplit(u).hostname for u in job["start_urls"] + job["documents"]}
        self.allowed_domains = sorted(h for h in hosts if h)
        self.seen: set[str] = set()

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
        )

    def _follow(self, response: Response, depth: int) -> Iterator[scrapy.Request]:
        if not isinstance(response, TextResponse) or depth >= self.job["max_depth"]:
            return
        for link in self.links.extract_links(response):
            yield from self._document_request(
                link.url, title=" ".join(link.text.split()), depth=depth + 1
            )

    def parse_index(self, response: Response) -> Iterator[scrapy.Request]:
        self.results.write(type="index", url=response.url, status=response.status)
        yield from self._follow(response, 0)

    def parse_document(self, response: Response) -> Iterator[scrapy.Request]:
        request_url = response.request.url if response.request else response.url
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
        url = request.url if request is not None else "?"
        index = bool(request is not None and request.meta.get("index"))
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
            message = f"{failure.type.__name__}: {failure.getErrorMessage()}"
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
        "HTTPCACHE_ENABLED": False,
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m sources.payer_crawl JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    for pattern in (job.get("allow") or []) + (job.get("deny") or []):
        re.compile(pattern)
    results = _Results(Path(job["out"]))
    try:
        process = CrawlerProcess(settings=settings_for(job), install_root_handler=True)
        process.crawl(PolicySpider, job=job, results=results)
        process.start()
    finally:
        results.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
