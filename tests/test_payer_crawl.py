"""The payer crawl (Scrapy in a child process) against a small local site."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from typing import ClassVar

import pytest
from http_support import QuietHandler, loopback_http

from diffing.model import RawDocument
from monitor.config import parse_config
from sources.base import FetchFailure, Validators
from sources.payer_policies import (
    PayerPoliciesOptions,
    PayerPoliciesSource,
    content_fingerprint,
    url_key,
)

PAGES: dict[str, tuple[str, bytes]] = {
    "/robots.txt": ("text/plain", b"User-agent: *\nDisallow: /private/\n"),
    "/index.html": (
        "text/html",
        b"""<html><body><h1>Policies</h1><ul>
        <li><a href="/policies/a.txt">Policy A</a></li>
        <li><a href="/policies/b.html">Policy B</a></li>
        <li><a href="/policies/broken.pdf">Broken</a></li>
        <li><a href="/private/policies/secret.txt">Secret</a></li>
        <li><a href="/news/today.html">News</a></li>
        </ul></body></html>""",
    ),
    "/policies/a.txt": ("text/plain", b"Policy A. Prior authorization is required."),
    "/policies/b.html": ("text/html", b"<html><body><h2>Criteria</h2><p>B.</p></body></html>"),
    "/private/policies/secret.txt": ("text/plain", b"secret"),
    "/news/today.html": ("text/html", b"<p>news</p>"),
}


class _Site(QuietHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        if self.path == "/policies/broken.pdf":
            self.send_body(500)
            return
        if self.path not in PAGES:
            self.send_body(404)
            return
        content_type, body = PAGES[self.path]
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if self.path == "/policies/a.txt" and self.headers.get("If-None-Match") == etag:
            self.send_body(304, headers={"ETag": etag})
            return
        headers = {"ETag": etag} if self.path == "/policies/a.txt" else {}
        self.send_body(200, body, content_type=content_type, headers=headers)


@pytest.fixture
def site() -> Iterator[str]:
    _Site.requests = []
    with loopback_http(_Site) as base_url:
        yield base_url


def _source(site: str, **options: object) -> PayerPoliciesSource:
    config = parse_config(
        {
            "sources": [
                {
                    "name": "acme",
                    "kind": "payer_policies",
                    "payer": "Acme Health",
                    "start_urls": [f"{site}/index.html"],
                    "allow": [r"/policies/"],
                    "download_delay_seconds": 0.0,
                    "max_retries": 1,
                    "timeout_seconds": 10.0,
                    **options,
                }
            ]
        }
    )
    return PayerPoliciesSource(name="acme", options=config.source("acme").options)


async def _crawl(source: PayerPoliciesSource, known: dict) -> tuple[object, list[object]]:
    listing = await source.list_documents(known)
    fetched = [r async for r in source.fetch(listing.documents)]
    await source.aclose()
    return listing, fetched


def test_crawl_follows_allowed_links_respects_robots_and_records_errors(site: str) -> None:
    listing, fetched = asyncio.run(_crawl(_source(site), {}))
    keys = sorted(d.key for d in listing.documents)
    assert keys == ["/policies/a.txt", "/policies/b.html", "/policies/broken.pdf"]
    assert listing.complete and not listing.problems
    assert "/private/policies/secret.txt" not in _Site.requests  # robots.txt
    assert "/news/today.html" not in _Site.requests  # not allowed
    raw = {r.key: r for r in fetched if isinstance(r, RawDocument)}
    failures = [r for r in fetched if isinstance(r, FetchFailure)]
    assert raw["/policies/a.txt"].content == PAGES["/policies/a.txt"][1]
    assert raw["/policies/a.txt"].etag and raw["/policies/a.txt"].meta("payer") == "Acme Health"
    assert raw["/policies/a.txt"].title == "Policy A"
    assert raw["/policies/b.html"].content_type.startswith("text/html")
    assert [f.key for f in failures] == ["/policies/broken.pdf"]
    assert "500" in failures[0].message
    assert _Site.requests.count("/policies/broken.pdf") == 2  # one retry


def test_second_crawl_uses_conditional_get(site: str) -> None:
    first, fetched = asyncio.run(_crawl(_source(site), {}))
    a = next(r for r in fetched if isinstance(r, RawDocument) and r.key == "/policies/a.txt")
    fingerprint = next(d.fingerprint for d in first.documents if d.key == a.key)
    known = {(a.key, ""): Validators(fingerprint=fingerprint, etag=a.etag)}
    second, _ = asyncio.run(_crawl(_source(site), known))
    again = next(d for d in second.documents if d.key == a.key)
    assert again.fingerprint == fingerprint  # a 304 keeps what the store has
    assert fingerprint == hashlib.sha256(PAGES["/policies/a.txt"][1]).hexdigest()


def test_robots_can_be_switched_off(site: str) -> None:
    listing, _ = asyncio.run(_crawl(_source(site, obey_robots=False), {}))
    assert "/private/policies/secret.txt" in {d.key for d in listing.documents}


def test_a_failed_index_page_makes_the_listing_incomplete(site: str) -> None:
    source = _source(site, start_urls=[f"{site}/missing-index.html"])
    listing, _ = asyncio.run(_crawl(source, {}))
    assert not listing.complete
    assert listing.problems and "missing-index.html" in listing.problems[0]
    assert "404" in listing.problems[0]


def test_url_key_drops_scheme_and_host() -> None:
    assert url_key("http://127.0.0.1:8000/p/a.pdf?x=1") == "/p/a.pdf?x=1"


def test_options_are_validated() -> None:
    from monitor.errors import ConfigError

    with pytest.raises(ConfigError, match="payer"):
        parse_config(
            {
                "sources": [
                    {"name": "x", "kind": "payer_policies", "start_urls": ["http://127.0.0.1/"]}
                ]
            }
        )
    with pytest.raises(ConfigError, match="does not compile"):
        parse_config(
            {
                "sources": [
                    {
                        "name": "x",
                        "kind": "payer_policies",
                        "payer": "P",
                        "start_urls": ["http://127.0.0.1/"],
                        "allow": ["("],
                    }
                ]
            }
        )
    assert PayerPoliciesOptions(payer="P", documents=("http://h/a.pdf",)).max_depth == 1


def test_html_fingerprint_ignores_per_request_parts() -> None:
    page = (
        b'<html><head><script nonce="n1">window.requestId = "r1";</script></head>'
        b'<body data-request-id="r1"><!-- served by web-3, request r1 -->'
        b"<h2>Criteria</h2><p>At least 8 weeks.</p></body></html>"
    )
    again = page.replace(b"r1", b"r2").replace(b"n1", b"n2")
    edited = page.replace(b"8 weeks", b"12 weeks")
    assert content_fingerprint(page, "text/html") == content_fingerprint(again, "text/html")
    assert content_fingerprint(page, "text/html") != content_fingerprint(edited, "text/html")
    pdf = b"%PDF-1.7 <!-- not html -->"
    assert content_fingerprint(pdf, "application/pdf") == hashlib.sha256(pdf).hexdigest()


@pytest.mark.parametrize("max_depth", [1, 2])  # 1: fetched in-process; 2: the Scrapy crawl
def test_a_document_reported_withdrawn_is_not_probed_again(site: str, max_depth: int) -> None:
    known = {
        ("/policies/dropped.txt", ""): Validators(fingerprint="x"),
        ("/policies/withdrawn.txt", ""): Validators(fingerprint="y", withdrawn=True),
    }
    listing, _ = asyncio.run(_crawl(_source(site, max_depth=max_depth), known))
    assert "/policies/dropped.txt" in _Site.requests  # probed: answers 404
    assert listing.gone == {"/policies/dropped.txt": "HTTP 404"}
    assert "/policies/withdrawn.txt" not in _Site.requests
