"""The MAC bulletin crawl, run by Scrapy in a child process: ``python -m sources.mac_crawl JOB``.

The job file (JSON, written by `sources.mac_bulletins`) gives the listing pages and selectors or
the feed, the allowed hosts, the validators of bulletins already stored and where to write. The
child writes bodies to ``<out>/bodies/`` and one JSON line per outcome to ``<out>/results.jsonl``:

    {"type": "listing", "url": …, "page": 1, "items": 12}       a listing page or feed was read
    {"type": "listing_failed", "url": …, "message": …}          unreadable, or no items in it
    {"type": "entry_problem", "url": …, "message": …}           one item or feed entry unusable
    {"type": "bulletin", "url": …, "path": …, "content_type": …, "title": …, "date": ISO|null,
     "date_text": …, "etag": …, "last_modified": …, "listing": …}
    {"type": "not_modified", "url": …, …}                        304 to a conditional GET
    {"type": "error", "url": …, "message": …, …}                 the bulletin could not be read
    {"type": "skipped", "url": …, "message": …}                  off the allowed hosts, robots

An HTML article is kept as a small canonical page: its title, its date and the elements the
body selector picked, so site chrome (menus, per-request tokens) never makes a new version.
"""

from __future__ import annotations

import html
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import scrapy
from lxml import etree
from parsel import Selector, SelectorList
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from sources.mac_bulletins import bulletin_date, bulletin_key
from sources.options import selector_parts
from sources.payer_crawl import CrawlResults, RefusedRequest, linked_url, run_spider

ATOM = "{http://www.w3.org/2005/Atom}"
LAYOUT_HINT = "the site layout may have changed"


def select(node: Selector | TextResponse, selector: str) -> SelectorList[Selector]:
    kind, expression = selector_parts(selector)
    return node.xpath(expression) if kind == "xpath" else node.css(expression)


def _text_of(node: Selector) -> str:
    """An element's text, or a text/attribute node's value, whitespace collapsed."""
    if isinstance(node.root, str):
        return " ".join(node.root.split())
    return " ".join((node.xpath("string()").get() or "").split())


def _href_of(node: Selector) -> str | None:
    if isinstance(node.root, str):
        return node.root.strip() or None
    href = node.attrib.get("href")
    if href:
        return href.strip()
    inner = node.xpath(".//a/@href").get()  # the selector picked the cell around the link
    return inner.strip() if inner else None


def canonical_page(title: str, date: str | None, body_html: str) -> bytes:
    date_meta = f'<meta name="bulletin_date" content="{date}">' if date else ""
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>{date_meta}</head>\n"
        f"<body><article>\n{body_html}\n</article></body></html>\n"
    ).encode()


class BulletinSpider(scrapy.Spider):
    """Listing pages (with pagination) or a feed -> bulletin pages and PDFs."""

    name = "mac_bulletins"

    def __init__(self, job: dict[str, Any], results: CrawlResults, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.results = results
        self.selectors: dict[str, str] = job["selectors"]
        self.known: dict[str, dict[str, str | None]] = job.get("known", {})
        # No `allowed_domains`: Scrapy's offsite filter would drop a redirect or meta refresh
        # elsewhere silently at scheduling; OutboundPolicyMiddleware refuses it with a reason.
        self.hosts = set(job["allowed_hosts"])
        self.seen_keys: set[str] = set()
        self.seen_pages: set[str] = set()

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for url in self.job["listing_urls"]:
            self.seen_pages.add(url)
            yield scrapy.Request(
                url,
                callback=self.parse_listing,
                errback=self.failed,
                meta={"page": 1, "listing": url, "is_listing": True},
                dont_filter=True,
            )
        if self.job.get("feed_url"):
            yield scrapy.Request(
                self.job["feed_url"],
                callback=self.parse_feed,
                errback=self.failed,
                meta={"listing": self.job["feed_url"], "is_listing": True},
                dont_filter=True,
            )

    # --- listings --------------------------------------------------------------------------

    def parse_listing(self, response: Response) -> Iterator[scrapy.Request]:
        page = response.meta["page"]
        if not isinstance(response, TextResponse):
            self._listing_failed(response.url, "is not an HTML page")
            return
        items = select(response, self.selectors["item"])
        self.results.write(type="listing", url=response.url, page=page, items=len(items))
        if not items:
            self._listing_failed(
                response.url,
                f"matched 0 items with selector {self.selectors['item']!r}; {LAYOUT_HINT}",
            )
            return
        linked = 0
        for position, item in enumerate(items, start=1):
            links = select(item, self.selectors["link"])
            href = _href_of(links[0]) if links else None
            if not href:
                self.results.write(
                    type="entry_problem",
                    url=response.url,
                    message=f"listing {response.url} item {position}: no link with selector "
                    f"{self.selectors['link']!r}",
                )
                continue
            linked += 1
            titles = select(item, self.selectors["title"]) if self.selectors["title"] else links
            title = _text_of(titles[0]) if titles else ""
            if self.selectors["date"]:
                dates = select(item, self.selectors["date"])
                date_text = _text_of(dates[0]) if dates else ""
            else:
                date_text = _text_of(item)  # the first date anywhere in the item
            yield from self._bulletin_request(
                response.urljoin(href), title=title, date_text=date_text, listing=response.url
            )
        if linked == 0:
            self._listing_failed(
                response.url,
                f"matched {len(items)} items with selector {self.selectors['item']!r} but none "
                f"had a link with selector {self.selectors['link']!r}; {LAYOUT_HINT}",
            )
            return
        yield from self._next_page(response, page)

    def _next_page(self, response: TextResponse, page: int) -> Iterator[scrapy.Request]:
        if not self.selectors["next_page"] or page >= self.job["max_pages"]:
            return
        found = select(response, self.selectors["next_page"])
        href = _href_of(found[0]) if found else None
        if not href:
            return  # the last page
        url = response.urljoin(href)
        if url in self.seen_pages or urlsplit(url).hostname not in self.hosts:
            return
        self.seen_pages.add(url)
        yield scrapy.Request(
            url,
            callback=self.parse_listing,
            errback=self.failed,
            meta={"page": page + 1, "listing": response.meta["listing"], "is_listing": True},
        )

    def parse_feed(self, response: Response) -> Iterator[scrapy.Request]:
        parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True)
        try:
            root = etree.fromstring(response.body, parser=parser)
        except etree.XMLSyntaxError as exc:
            root = None
            reason = str(exc)
        else:
            reason = "no XML root element"
        if root is None:
            self._listing_failed(response.url, f"is not an RSS or Atom feed ({reason})")
            return
        entries = root.findall("./channel/item") or root.findall(f"./{ATOM}entry")
        self.results.write(type="listing", url=response.url, page=1, items=len(entries))
        if not entries:
            self._listing_failed(response.url, f"has no <item> or <entry>; {LAYOUT_HINT}")
            return
        for position, entry in enumerate(entries, start=1):
            title = _child_text(entry, "title", f"{ATOM}title")
            link = _child_text(entry, "link") or _atom_link(entry)
            if not link:
                self.results.write(
                    type="entry_problem",
                    url=response.url,
                    message=f"feed {response.url} entry {position} ({title or 'no title'!r}): "
                    "no link; skipped",
                )
                continue
            date_text = _child_text(entry, "pubDate", f"{ATOM}published", f"{ATOM}updated", "date")
            yield from self._bulletin_request(
                response.urljoin(link), title=title, date_text=date_text, listing=response.url
            )

    def _listing_failed(self, url: str, message: str) -> None:
        self.results.write(type="listing_failed", url=url, message=f"listing {url} {message}")

    # --- bulletins -------------------------------------------------------------------------

    def _bulletin_request(
        self, url: str, *, title: str, date_text: str, listing: str
    ) -> Iterator[scrapy.Request]:
        if urlsplit(url).hostname not in self.hosts:
            self.results.write(type="skipped", url=url, message="not on an allowed host")
            return
        key = bulletin_key(url)
        if key in self.seen_keys:
            return  # listed twice (Part A and Part B listings share articles)
        self.seen_keys.add(key)
        date = bulletin_date(date_text)
        info = {
            "title": title,
            "date_text": date_text if len(date_text) <= 200 else date_text[:200],
            "date": date.isoformat() if date else None,
            "listing": listing,
        }
        headers: dict[str, str] = {}
        validators = self.known.get(key) or {}
        if validators.get("etag"):
            headers["If-None-Match"] = str(validators["etag"])
        if validators.get("last_modified"):
            headers["If-Modified-Since"] = str(validators["last_modified"])
        yield scrapy.Request(
            url,
            headers=headers,
            callback=self.parse_bulletin,
            errback=self.failed,
            meta={"bulletin": info, "handle_httpstatus_list": [304]},
        )

    def parse_bulletin(self, response: Response) -> None:
        info = response.meta["bulletin"]
        url = response.request.url if response.request else response.url
        if response.status == 304:
            self.results.write(type="not_modified", url=url, **info)
            return
        header = response.headers.get
        content_type = (header("Content-Type") or b"").decode("latin-1")
        body = response.body
        html_page = "html" in content_type.lower()
        if isinstance(response, TextResponse) and html_page and self.selectors["body"]:
            nodes = select(response, self.selectors["body"])
            if not nodes:
                self.results.write(
                    type="error",
                    url=url,
                    message=f"article page matched 0 elements with body selector "
                    f"{self.selectors['body']!r}; {LAYOUT_HINT}",
                    **info,
                )
                return
            body = canonical_page(info["title"], info["date"], "\n".join(nodes.getall()))
            content_type = "text/html; charset=utf-8"
        path = self.results.body_path(url)
        path.write_bytes(body)
        self.results.write(
            type="bulletin",
            url=url,
            path=str(path),
            content_type=content_type,
            etag=(header("ETag") or b"").decode("latin-1") or None,
            last_modified=(header("Last-Modified") or b"").decode("latin-1") or None,
            **info,
        )

    def failed(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        # The URL the listing linked (not where a redirect or meta refresh led): its key.
        url = linked_url(request) if request is not None else "?"
        meta = request.meta if request is not None else {}
        if failure.check(HttpError):
            message = f"HTTP {failure.value.response.status} after retries"
        elif failure.check(IgnoreRequest):
            message = str(failure.value) or "ignored (robots.txt or off-site)"
        else:
            message = f"{failure.type.__name__}: {failure.getErrorMessage()}"
        if meta.get("is_listing"):
            self._listing_failed(url, f"could not be read: {message}")
        elif failure.check(RefusedRequest):
            # Off-policy (a meta refresh or redirect to an internal or foreign host): the
            # listing linked it, so it is this bulletin's error, its reason recorded.
            self.results.write(type="error", url=url, message=message, **meta.get("bulletin", {}))
        elif failure.check(IgnoreRequest) and not failure.check(HttpError):
            self.results.write(type="skipped", url=url, message=message)
        else:
            self.results.write(type="error", url=url, message=message, **meta.get("bulletin", {}))


def _child_text(entry: Any, *names: str) -> str:
    for name in names:
        child = entry.find(name)
        if child is not None:
            text = " ".join("".join(child.itertext()).split())
            if text:
                return text
    return ""


def _atom_link(entry: Any) -> str:
    links = entry.findall(f"{ATOM}link")
    hrefs = [
        str(link.get("href")).strip()
        for link in links
        if link.get("rel", "alternate") == "alternate" and link.get("href")
    ]
    return hrefs[0] if hrefs else ""


def main(argv: list[str]) -> int:
    return run_spider("sources.mac_crawl", BulletinSpider, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
