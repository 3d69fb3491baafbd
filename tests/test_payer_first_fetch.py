"""The in-process fetch of a depth-1 payer source (`sources.payer_recheck.Rechecker`) against the
Scrapy crawl (`sources.payer_crawl`) on the same loopback site: the same records, the same
listing, the same pages requested -- for a first fetch and for a run that finds new links."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from http_support import QuietHandler, loopback_http

from monitor.config import parse_config
from sources.base import KnownListing, Listing, Validators
from sources.payer_policies import PayerPoliciesSource, url_key
from sources.payer_recheck import Rechecker

PDF = b"%PDF-1.4\n% policy A\n%%EOF\n"
POLICY_HTML = b"<html><head><title>B</title></head><body><h2>Criteria</h2><p>B.</p></body></html>"
ETAG = '"a-1"'


def _index(links: list[str]) -> bytes:
    items = "".join(f'<li><a href="{href}">{text}</a></li>' for href, text in links)
    return (
        "<html><head><title>Medical policies</title></head><body><h1>Policies</h1>"
        "<p>Clinical policy bulletins of the plan, with their review dates.</p>"
        f"<ul>{items}</ul></body></html>"
    ).encode()


class _Site(QuietHandler):
    """Every case the crawl decides: documents, errors, redirects, robots.txt, allow/deny."""

    requests: ClassVar[list[str]] = []
    lock = threading.Lock()
    robots_moved = False  # robots.txt answers with a redirect to the real one

    def do_GET(self) -> None:
        with self.lock:
            type(self).requests.append(self.path)
        here = f"http://127.0.0.1:{self.server.server_address[1]}"
        pages: dict[str, tuple[int, str, bytes, dict[str, str]]] = {
            "/robots.txt": (200, "text/plain", b"User-agent: *\nDisallow: /private/\n", {}),
            "/robots-moved.txt": (200, "text/plain", b"User-agent: *\nDisallow: /private/\n", {}),
            "/index.html": (200, "text/html; charset=utf-8", _index(INDEX_LINKS), {}),
            "/more.html": (200, "text/html", _index(MORE_LINKS), {}),
            "/challenge.html": (
                200,
                "text/html",
                b"<html><head><title>Access Denied</title></head><body><h1>Access Denied</h1>"
                b"<p>You don't have permission to access this page on this server.</p>"
                b"</body></html>",
                {},
            ),
            "/policies/a.pdf": (200, "application/pdf", PDF, {"ETag": ETAG}),
            "/policies/b.html": (200, "text/html", POLICY_HTML, {"Last-Modified": "x"}),
            "/policies/new.pdf": (200, "application/pdf", PDF.replace(b"A", b"N"), {}),
            "/policies/c.html": (200, "text/html", POLICY_HTML.replace(b"B.", b"C."), {}),
            "/policies/login.pdf": (200, "text/html", b"<html><title>Log in</title></html>", {}),
            "/policies/moved.html": (302, "text/html", b"", {"Location": "/policies/c.html"}),
            "/policies/away.pdf": (
                302,
                "text/html",
                b"",
                {"Location": here.replace("127.0.0.1", "localhost") + "/policies/a.pdf"},
            ),
            "/policies/loop.pdf": (302, "text/html", b"", {"Location": "/policies/loop2.pdf"}),
            "/policies/loop2.pdf": (302, "text/html", b"", {"Location": "/policies/loop.pdf"}),
            "/policies/to-private.pdf": (
                301,
                "text/html",
                b"",
                {"Location": "/private/policies/x.pdf"},
            ),
            "/policies/broken.pdf": (500, "text/html", b"oops", {}),
            "/policies/old.pdf": (404, "text/html", b"gone", {}),
            "/private/policies/secret.pdf": (200, "application/pdf", PDF, {}),
            "/private/index.html": (200, "text/html", _index(INDEX_LINKS), {}),
        }
        if self.robots_moved:
            pages["/robots.txt"] = (301, "text/plain", b"", {"Location": "/robots-moved.txt"})
        status, content_type, body, headers = pages.get(
            self.path.split("#")[0], (404, "text/html", b"<html>not found</html>", {})
        )
        if status == 200 and headers.get("ETag") and self.headers.get("If-None-Match") == ETAG:
            self.send_body(304, headers=headers)
            return
        self.send_body(status, body, content_type=content_type, headers=headers)


INDEX_LINKS = [
    ("/policies/a.pdf", "Policy A (PDF)"),
    ("/policies/b.html", " Policy\n  B "),
    ("/policies/b.html", "B again"),
    ("/policies/b.html#criteria", "B, criteria"),
    ("/policies/missing.pdf", "Missing"),
    ("/policies/broken.pdf", "Broken"),
    ("/policies/login.pdf", "Login instead of a PDF"),
    ("/policies/moved.html", "Moved"),
    ("/policies/away.pdf", "Away"),
    ("/policies/loop.pdf", "Loop"),
    ("/policies/to-private.pdf", "Redirect into robots-disallowed"),
    ("/private/policies/secret.pdf", "Secret"),
    ("/news/today.html", "News, not allowed"),
    ("/policies/denied.pdf", "Denied"),
    ("http://other.example/policies/x.pdf", "Off site"),
    ("mailto:policies@example.org", "Mail"),
]
# a.pdf is linked from both index pages with one text: the crawl takes a document's title from
# the page whose response came first, the in-process fetch from the first start URL.
MORE_LINKS = [("/policies/a.pdf", "Policy A (PDF)"), ("/policies/new.pdf", "New")]


@pytest.fixture
def site() -> Iterator[str]:
    _Site.requests = []
    with loopback_http(_Site) as base_url:
        yield base_url


def _source(site: str, *indexes: str, **options: Any) -> PayerPoliciesSource:
    config = parse_config(
        {
            "sources": [
                {
                    "name": "acme",
                    "kind": "payer_policies",
                    "payer": "Acme Health",
                    "start_urls": [f"{site}{path}" for path in indexes],
                    "allow": [r"/policies/"],
                    "deny": [r"denied"],
                    "download_delay_seconds": 0.0,
                    "max_retries": 1,
                    "timeout_seconds": 10.0,
                    **options,
                }
            ]
        }
    )
    return PayerPoliciesSource(name="acme", options=config.source("acme").options)


def _comparable(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Records in a fixed order (the crawl writes them as responses arrive), a body by its
    sha256 instead of its path (each run has its own scratch directory)."""
    rows = []
    for record in records:
        record = dict(record)
        path = record.pop("path", None)
        if path is not None:
            record["body"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        rows.append(tuple(sorted(record.items())))
    return sorted(rows, key=repr)


async def _both(
    site: str, known: KnownListing, *indexes: str, **options: Any
) -> tuple[list[Any], list[Any], list[str], list[str]]:
    """(crawl records, in-process records, paths the crawl asked, paths in-process asked)."""
    crawled = _source(site, *indexes, **options)
    _Site.requests = []
    crawl_records = await crawled._crawl(known)
    crawl_requests = sorted(set(_Site.requests))
    ours = _source(site, *indexes, **options)
    rechecker = Rechecker(
        source="acme", options=ours.options, scratch=ours._scratch, url_key=url_key
    )
    _Site.requests = []
    try:
        records = await rechecker.run(known)
    finally:
        await rechecker.aclose()
    assert records is not None, "the in-process fetch gave the case to the crawl"
    our_requests = sorted(set(_Site.requests))
    comparable = _comparable(crawl_records), _comparable(records)
    await crawled.aclose()
    await ours.aclose()
    return comparable[0], comparable[1], crawl_requests, our_requests


def test_first_fetch_records_equal_the_crawls(site: str) -> None:
    crawl, ours, crawl_asked, we_asked = asyncio.run(_both(site, {}, "/index.html", "/more.html"))
    assert ours == crawl
    assert we_asked == crawl_asked
    kinds = {dict(r)["type"] for r in ours}
    assert kinds == {"index", "document", "error", "skipped"}  # every outcome was exercised
    assert "/private/policies/secret.pdf" not in we_asked  # robots.txt
    assert "/private/policies/x.pdf" not in we_asked  # a redirect into it, too
    assert "/news/today.html" not in we_asked and "/policies/denied.pdf" not in we_asked


def test_a_redirected_robots_txt_is_read_and_obeyed(site: str) -> None:
    _Site.robots_moved = True
    try:
        crawl, ours, crawl_asked, we_asked = asyncio.run(_both(site, {}, "/index.html"))
    finally:
        _Site.robots_moved = False
    assert ours == crawl
    assert we_asked == crawl_asked
    assert "/robots-moved.txt" in we_asked and "/private/policies/secret.pdf" not in we_asked


@pytest.mark.parametrize(
    "indexes",
    [
        ("/index.html", "/gone-index.html", "/challenge.html"),
        # Alone: Scrapy's RobotsTxtMiddleware was seen to let a third start request that waited
        # for robots.txt at the same time through (its Deferred reaches only the first two
        # waiters); the in-process fetch always obeys robots.txt.
        ("/private/index.html",),
    ],
    ids=["404-and-challenge", "robots"],
)
def test_index_errors_equal_the_crawls(site: str, indexes: tuple[str, ...]) -> None:
    """A 404 index page, a bot-challenge one and a robots-disallowed one: index errors."""
    crawl, ours, crawl_asked, we_asked = asyncio.run(_both(site, {}, *indexes))
    assert ours == crawl
    assert we_asked == crawl_asked
    index_errors = [r for r in map(dict, ours) if r.get("index")]
    assert len(index_errors) == len(indexes) - indexes.count("/index.html")


def test_new_links_with_known_documents_equal_the_crawl(site: str) -> None:
    """Stored documents: conditional GETs (a 304), a new link, and an unlinked stored
    document probed (its URL answers 404: gone)."""
    known = {
        ("/policies/a.pdf", ""): Validators(fingerprint="f", etag=ETAG),
        ("/policies/b.html", ""): Validators(fingerprint="g", last_modified="x"),
        ("/policies/old.pdf", ""): Validators(fingerprint="h", etag='"old"'),
    }
    crawl, ours, crawl_asked, we_asked = asyncio.run(_both(site, known, "/more.html"))
    assert ours == crawl
    assert we_asked == crawl_asked
    types = sorted(dict(r)["type"] for r in ours)
    assert types == ["document", "index", "not_modified", "probe", "probe"]


def _listing(source: PayerPoliciesSource, known: KnownListing, *, crawl: bool) -> Listing:
    async def go() -> Listing:
        if crawl:

            async def no_recheck(known: KnownListing) -> None:
                return None

            source._recheck = no_recheck  # type: ignore[method-assign]
        try:
            return await source.list_documents(known)
        finally:
            await source.aclose()

    return asyncio.run(go())


def test_listings_equal_the_crawls(site: str) -> None:
    indexes = ("/index.html", "/more.html", "/gone-index.html")
    crawled = _listing(_source(site, *indexes), {}, crawl=True)
    source = _source(site, *indexes)
    ours = _listing(source, {}, crawl=False)
    assert source.discovered and not source.crawled
    # b.html is linked with and without a fragment: two records of one key, and the crawl's
    # listing keeps whichever response came last. Every other document is listed alike.
    twice = "/policies/b.html"
    assert {d.key: d.fingerprint for d in ours.documents} == {
        d.key: d.fingerprint for d in crawled.documents
    }
    assert sorted((d for d in ours.documents if d.key != twice), key=repr) == sorted(
        (d for d in crawled.documents if d.key != twice), key=repr
    )
    assert (ours.complete, sorted(ours.problems), ours.gone) == (
        crawled.complete,
        sorted(crawled.problems),
        crawled.gone,
    )
    assert not ours.complete and len(ours.problems) == 1


def test_what_only_the_crawl_can_judge_goes_to_the_crawl(site: str) -> None:
    """An index page not declared HTML (text/plain): the crawl decides how to read it."""
    source = _source(site, "/robots.txt")
    listing = _listing(source, {}, crawl=False)
    assert source.crawled
    assert not listing.complete and "index page" in listing.problems[0]


def test_deeper_links_still_go_to_the_crawl(site: str) -> None:
    source = _source(site, "/index.html", max_depth=2)
    _listing(source, {}, crawl=False)
    assert source.crawled
