"""MAC bulletins and news (Novitas, Noridian, Palmetto, WPS, CGS, First Coast …), crawled from
listing pages or an RSS/Atom feed with Scrapy in a child process (`sources.mac_crawl`).

Each bulletin is a document keyed by its canonical URL path: an article page (its body, picked
by `body_selector`, kept as a small canonical HTML page) or a PDF bulletin (kept as is). A
listing page that yields no item fails the run ("the site layout may have changed"), so a
broken selector never looks like every bulletin vanishing. Bulletins age off listings and
feeds, so one that is no longer listed is never reported as withdrawn.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from diffing.extract.dates import parse_date
from diffing.mentions import BULLETIN_DOC_TYPE
from diffing.model import RawDocument
from monitor.errors import SourceError
from sources.base import FetchFailure, FetchResult, KnownListing, ListedDocument, Listing, check
from sources.crawl_child import CrawledSource
from sources.outbound import OutboundPolicy
from sources.payer_policies import content_fingerprint

XPATH_PREFIX = "xpath:"
CSS_PREFIX = "css:"
_TRACKING_PARAMS = re.compile(r"^(?:utm_\w+|jsessionid|_ga|fbclid|gclid)$", re.IGNORECASE)


def bulletin_key(url: str) -> str:
    """A bulletin's key: the URL's path and query without tracking parameters (the host may
    change, a fixture's port does; "?contentId=00284581" is what names a Novitas article)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, True) if not _TRACKING_PARAMS.match(k)]
    return parts.path + (f"?{urlencode(query)}" if query else "")


def bulletin_date(text: str | None) -> dt.date | None:
    """The date a listing, feed or page gives a bulletin, in any format MACs use:
    "02/03/2026", "02-03-2026", "02.03.2026" (US month first), "February 3, 2026",
    "Feb 3, 2026", "2026-02-03", ISO date-times ("2026-02-03T14:00:00Z", Atom) and RFC 822
    ("Tue, 03 Feb 2026 14:00:00 -0500", RSS). A date-time keeps the date of its own time
    zone: that is the day the MAC published it. None when no date is found."""
    if not text or not text.strip():
        return None
    value = " ".join(text.split())
    try:
        return email.utils.parsedate_to_datetime(value).date()
    except (TypeError, ValueError, IndexError):
        pass
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        pass
    return parse_date(value)


def selector_parts(selector: str) -> tuple[str, str]:
    """("xpath", expr) for a selector written ``xpath:EXPR``, else ("css", expr); a ``css:``
    prefix is allowed for symmetry."""
    if selector.startswith(XPATH_PREFIX):
        return "xpath", selector[len(XPATH_PREFIX) :].strip()
    return "css", selector.removeprefix(CSS_PREFIX).strip()


def _check_selector(name: str, selector: str) -> None:
    if not selector:
        return
    kind, expression = selector_parts(selector)
    check(bool(expression), f"{name} {selector!r} is empty after its prefix")
    try:
        if kind == "xpath":
            from lxml import etree

            etree.XPath(expression)
        else:
            from parsel.csstranslator import HTMLTranslator

            HTMLTranslator().css_to_xpath(expression)
    except Exception as exc:  # lxml and cssselect raise their own error families
        raise ValueError(f"{name} {selector!r} is not a valid {kind} selector: {exc}") from exc


@dataclass(frozen=True, kw_only=True)
class MacBulletinsOptions:
    """Options of a ``kind = "mac_bulletins"`` source."""

    mac: str
    listing_urls: tuple[str, ...] = ()
    feed_url: str = ""
    item_selector: str = ""
    title_selector: str = "a"
    date_selector: str = ""  # empty: the first date anywhere in the item's text
    link_selector: str = "a"
    next_page_selector: str = ""
    max_pages: int = 5
    body_selector: str = ""  # empty: the whole article page (the parser drops site chrome)
    allowed_hosts: tuple[str, ...] = ()  # empty: the hosts of listing_urls and feed_url
    internal_hosts: tuple[str, ...] = ()  # hosts or CIDR networks allowed to be internal
    obey_robots: bool = True
    download_delay_seconds: float = 1.0
    concurrency_per_host: int = 2
    timeout_seconds: float = 60.0
    max_retries: int = 3
    max_document_bytes: int = 50_000_000
    crawl_timeout_seconds: float = 1800.0
    parse_timeout_seconds: float = 300.0
    user_agent: str = "payer-policy-monitor/0.1 (policy change monitor)"

    def validate(self) -> None:
        check(bool(self.mac.strip()), "mac must not be empty")
        check(
            bool(self.listing_urls or self.feed_url),
            "give listing_urls (with item_selector) or feed_url (RSS or Atom)",
        )
        for url in (*self.listing_urls, *([self.feed_url] if self.feed_url else [])):
            check(url.startswith(("http://", "https://")), f"{url!r} is not an http(s) URL")
        check(
            not self.listing_urls or bool(self.item_selector.strip()),
            "listing_urls need an item_selector (CSS, or XPath written 'xpath:…')",
        )
        for name in ("item", "title", "date", "link", "next_page", "body"):
            _check_selector(f"{name}_selector", getattr(self, f"{name}_selector"))
        check(1 <= self.max_pages <= 100, "max_pages must be between 1 and 100")
        check(self.download_delay_seconds >= 0, "download_delay_seconds must not be negative")
        check(1 <= self.concurrency_per_host <= 16, "concurrency_per_host must be 1-16")
        check(self.timeout_seconds > 0, "timeout_seconds must be positive")
        check(self.max_document_bytes > 0, "max_document_bytes must be positive")
        check(self.crawl_timeout_seconds > 0, "crawl_timeout_seconds must be positive")
        check(self.parse_timeout_seconds > 0, "parse_timeout_seconds must be positive")

    @property
    def hosts(self) -> tuple[str, ...]:
        if self.allowed_hosts:
            return self.allowed_hosts
        urls = (*self.listing_urls, *([self.feed_url] if self.feed_url else []))
        return tuple(sorted({h for u in urls if (h := urlsplit(u).hostname)}))

    @property
    def outbound(self) -> OutboundPolicy:
        """The listing pages' and feed's hosts and `allowed_hosts`, exactly (no subdomains)."""
        urls = (*self.listing_urls, *([self.feed_url] if self.feed_url else []))
        return OutboundPolicy.for_source(
            urls, extra_hosts=self.hosts, internal_hosts=self.internal_hosts
        )


class MacBulletinsSource(CrawledSource):
    crawl_module = "sources.mac_crawl"
    options: MacBulletinsOptions

    def __init__(self, *, name: str, options: MacBulletinsOptions) -> None:
        super().__init__(name=name, options=options)
        self._bulletins: dict[str, dict[str, Any]] = {}

    def _job(self, known: KnownListing) -> dict[str, Any]:
        o = self.options
        return {
            "listing_urls": list(o.listing_urls),
            "feed_url": o.feed_url,
            "selectors": {
                "item": o.item_selector,
                "title": o.title_selector,
                "date": o.date_selector,
                "link": o.link_selector,
                "next_page": o.next_page_selector,
                "body": o.body_selector,
            },
            "max_pages": o.max_pages,
            "allowed_hosts": list(o.hosts),
            **self._crawl_settings(known),
        }

    async def list_documents(self, known: KnownListing) -> Listing:
        records = await self._crawl(known)
        self._requests = sum(r["type"] not in ("skipped", "entry_problem") for r in records)
        failed = [r["message"] for r in records if r["type"] == "listing_failed"]
        if failed:
            # Publishing the rest would make a broken selector look like quiet news; fail the
            # run instead: nothing is published and nothing is counted as gone.
            raise SourceError(self.name, "; ".join(failed))
        fingerprints = {key: v.fingerprint for (key, _version), v in known.items()}
        listed: dict[str, ListedDocument] = {}
        problems = [r["message"] for r in records if r["type"] == "entry_problem"]
        for record in records:
            kind = record["type"]
            if kind not in ("bulletin", "not_modified", "error"):
                continue
            key = bulletin_key(record["url"])
            if kind == "bulletin":
                content = self._body(record)
                fingerprint = content_fingerprint(content, record.get("content_type") or "")
                self._bulletins[key] = record
            elif kind == "not_modified":
                fingerprint = fingerprints.get(key, "")
            else:
                digest = hashlib.sha256(record["message"].encode()).hexdigest()[:32]
                fingerprint = f"error:{digest}"  # never stored; differs from any body's
                self._errors[key] = record
            if record.get("date_text") and not record.get("date"):
                problems.append(
                    f"{record['url']}: date {record['date_text']!r} not understood; "
                    "the bulletin is kept without a date"
                )
            listed[key] = ListedDocument(
                key=key,
                source_version="",
                version_number=None,
                fingerprint=fingerprint,
                doc_type=BULLETIN_DOC_TYPE,
                title=record.get("title") or "",
                url=record["url"],
                row={"url": record["url"], "date": record.get("date")},
            )
        # A listing shows the latest bulletins only: one that drops off has aged out, it has
        # not been withdrawn, so the listing is never "complete" in the withdrawal sense.
        return Listing(documents=list(listed.values()), complete=False, problems=problems)

    async def fetch(self, wanted: Sequence[ListedDocument]) -> AsyncIterator[FetchResult]:
        for item in wanted:
            error = self._errors.get(item.key)
            record = self._bulletins.get(item.key)
            if error is not None or record is None:
                message = (
                    error["message"]
                    if error is not None
                    else "not downloaded (304 for a bulletin the store does not have)"
                )
                yield FetchFailure(
                    key=item.key, source_version="", url=item.url, message=f"{item.url}: {message}"
                )
                continue
            meta = [("mac", self.options.mac)]
            if record.get("date"):
                meta.append(("bulletin_date", record["date"]))
            if record.get("last_modified"):
                meta.append(("last_modified", record["last_modified"]))
            if record.get("listing"):
                meta.append(("listing_url", record["listing"]))
            yield RawDocument(
                source=self.name,
                key=item.key,
                url=item.url,
                content=self._body(record),
                content_type=record.get("content_type") or "",
                fetched_at=dt.datetime.now(dt.UTC),
                source_version="",
                etag=record.get("etag"),
                title=item.title,
                doc_type=BULLETIN_DOC_TYPE,
                source_meta=tuple(meta),
            )
