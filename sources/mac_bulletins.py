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
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from diffing.extract.dates import parse_date
from diffing.mentions import BULLETIN_DOC_TYPE
from diffing.model import RawDocument
from monitor.errors import SourceError
from sources.base import FetchFailure, FetchResult, KnownListing, ListedDocument, Listing
from sources.crawl_child import CrawledSource
from sources.options import MacBulletinsOptions
from sources.payer_policies import content_fingerprint

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
