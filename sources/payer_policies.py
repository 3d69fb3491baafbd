"""Commercial payer policy documents (PDF, HTML, text) read from index pages.

`list_documents` fetches a source whose links are followed one level deep in-process
(`sources.payer_recheck`, over aiohttp: first fetch and re-checks alike, with the crawl's
outcomes); deeper links, sources without index pages and pages only the crawl can judge run the
Scrapy crawl in a child process (`sources.payer_crawl`). Either way index pages are read, links
matching `allow` (and not `deny`) are fetched with conditional GET, bodies land on disk.
The listing's fingerprint of a document is the sha256 of its body, so an unchanged body is never
parsed again; a 304 keeps the stored fingerprint. `fetch` then hands over the new bodies.

A body that cannot be the document that was linked is refused here, before anything is parsed
or published: anything but a PDF where a ``.pdf`` was linked (an error, login or bot-challenge
page served with 200) is a per-document failure, retried next run; the stored version stays.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from diffing.model import RawDocument
from sources.base import (
    Arrived,
    FetchFailure,
    FetchResult,
    KnownListing,
    ListedDocument,
    Listing,
)
from sources.crawl_child import CrawledSource, crawl_timed_out
from sources.options import PayerPoliciesOptions

DOC_TYPE = "payer_policy"


# Bodies the in-process listing downloads are kept in memory up to this much in all (read back
# from disk, a thousand small pages cost the run more than their download); the rest go to disk.
KEPT_BODY_BYTES = 16 * 1024 * 1024

GONE = frozenset({404, 410})  # a document's own URL answering these: the page no longer exists


def url_key(url: str) -> str:
    """A document's key: its path and query (the host may change, a fixture's port does)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# Parts of an HTML page that change on every request without changing the policy: comments,
# scripts and styles (CSP nonces, request ids, analytics), nonce/csrf/request-id attributes.
_HTML_VOLATILE = re.compile(
    rb"<!--.*?-->|<script\b.*?</script\s*>|<style\b.*?</style\s*>"
    rb"|\s(?:nonce|data-[\w-]*(?:request|session|trace)[\w-]*|csrf[\w-]*)=(?:\"[^\"]*\"|'[^']*'|\S+)"
    rb"|<meta\b[^>]*(?:csrf|nonce|request-id)[^>]*>",
    re.IGNORECASE | re.DOTALL,
)


def content_fingerprint(body: bytes, content_type: str) -> str:
    """sha256 of a body; for HTML, of the body without its per-request parts, so a page whose
    only difference is a fresh nonce or request id is recognised as unchanged, never parsed
    again and never stored again."""
    head = body[:1024].lstrip().lower()
    if "html" in content_type.lower() or head.startswith((b"<!doctype html", b"<html")):
        return "html:" + hashlib.sha256(_HTML_VOLATILE.sub(b"", body)).hexdigest()
    return hashlib.sha256(body).hexdigest()


def unexpected_content(url: str, content: bytes, content_type: str) -> str | None:
    """Why `content` cannot be the document linked at `url`, or None.

    A link to a ``.pdf`` (or a body declared ``application/pdf``) must bring a PDF: anything
    else is an error, login or bot-challenge page, or a landing page the site redirected to.
    Parsing it as a policy would publish a version in which every criterion was "removed".
    """
    is_pdf = b"%PDF-" in content[:1024]
    declared = content_type.split(";", 1)[0].strip().lower()
    linked_pdf = urlsplit(url).path.lower().endswith(".pdf")
    if is_pdf or not (linked_pdf or declared == "application/pdf"):
        return None
    head = content[:2048].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<head", b"<body")) or b"<html" in head:
        got = "an HTML page"
        title = re.search(rb"<title[^>]*>([^<]{0,120})", content[:8192], re.IGNORECASE)
        if title and title.group(1).strip():
            got += f" titled {title.group(1).decode(errors='replace').strip()!r}"
    elif not content.strip():
        got = "an empty body"
    else:
        got = f"{len(content)} bytes without a %PDF- header"
    why = "the link ends in .pdf" if linked_pdf else "it was declared application/pdf"
    return f"expected a PDF ({why}) but got {got} (declared {content_type or 'no type'!r})"


class PayerPoliciesSource(CrawledSource):
    crawl_module = "sources.payer_crawl"
    options: PayerPoliciesOptions

    def __init__(self, *, name: str, options: PayerPoliciesOptions) -> None:
        super().__init__(name=name, options=options)
        self._documents: dict[str, dict[str, Any]] = {}
        # Whether this run discovered documents (a first fetch, a new link, or the Scrapy crawl)
        # rather than only re-checking stored ones; `crawled`: whether it ran the Scrapy crawl.
        self.discovered = False
        self.crawled = False
        self._arrived: Arrived | None = None
        self._fingerprints: dict[str, str] = {}  # this run's: by key, what the store knows
        self._computed: dict[str, str] = {}  # fingerprints taken as bodies arrived, by path
        self._kept: dict[str, bytes] = {}  # bodies kept in memory (`KEPT_BODY_BYTES`), by path
        self._kept_bytes = 0

    def announce_to(self, arrived: Arrived | None) -> None:
        """Hand each new or changed document the in-process listing downloads to `arrived`
        as it arrives (`sources.base.Announcing`); the Scrapy crawl hands over nothing."""
        self._arrived = arrived

    def _job(self, known: KnownListing) -> dict[str, Any]:
        o = self.options
        return {
            "start_urls": list(o.start_urls),
            "documents": list(o.documents),
            "allow": list(o.allow),
            "deny": list(o.deny),
            "max_depth": o.max_depth,
            "allowed_hosts": [h.lower() for h in o.allowed_hosts],
            **self._crawl_settings(known),
        }

    async def _recheck(self, known: KnownListing) -> list[dict[str, Any]] | None:
        """The records of the in-process fetch (`sources.payer_recheck`: first fetch or
        re-check), or None when this run needs the Scrapy crawl."""
        o = self.options
        if o.max_depth != 1 or not o.start_urls:
            return None  # links followed deeper, or no index page: the crawl (cheap to tell)
        from sources.payer_recheck import Rechecker  # aiohttp and lxml: not at CLI start-up

        rechecker = Rechecker(
            source=self.name,
            options=self.options,
            scratch=self._scratch,
            url_key=url_key,
            on_body=self._arrival,
        )
        try:
            async with asyncio.timeout(o.crawl_timeout_seconds):
                records = await rechecker.run(known)
            self.discovered = rechecker.discovered
            return records
        except TimeoutError:
            raise crawl_timed_out(self.name, o.crawl_timeout_seconds) from None
        finally:
            self._requests += rechecker.request_count
            await rechecker.aclose()

    def _arrival(self, record: dict[str, Any], content: bytes) -> bool:
        """A body the in-process listing just downloaded: its fingerprint (taken once, here,
        while the body is in memory) and, when it is new or changed and may be the document
        linked, the document as `fetch` will yield it, to whoever listens. Whether the body
        is kept in memory (else the listing writes it to disk)."""
        fingerprint = content_fingerprint(content, record.get("content_type") or "")
        path = record["path"]
        self._computed[path] = fingerprint
        key = url_key(record["url"])
        if self._arrived is not None and self._fingerprints.get(key) != fingerprint:
            document = self._raw(key, record["url"], record.get("title", ""), record, content)
            if isinstance(document, RawDocument):
                self._arrived(document)
        self._kept_bytes -= len(self._kept.pop(path, b""))  # (each URL is asked once)
        if self._kept_bytes + len(content) > KEPT_BODY_BYTES:
            return False
        self._kept[path] = content
        self._kept_bytes += len(content)
        return True

    def _body(self, record: dict[str, Any]) -> bytes:
        kept = self._kept.get(record["path"])
        return kept if kept is not None else super()._body(record)

    def _fingerprint(self, record: dict[str, Any]) -> str:
        computed = self._computed.get(record["path"])
        if computed is not None:
            return computed
        return content_fingerprint(self._body(record), record.get("content_type") or "")

    async def list_documents(self, known: KnownListing) -> Listing:
        self._requests = 0
        self._fingerprints = {key: v.fingerprint for (key, _version), v in known.items()}
        self._computed, self._kept, self._kept_bytes = {}, {}, 0
        records = await self._recheck(known)
        if records is None:
            # The crawl writes bodies of its own, where these would have been.
            self._computed, self._kept, self._kept_bytes = {}, {}, 0
            self.discovered = self.crawled = True
            records = await self._crawl(known)
            self._requests += sum(r["type"] != "skipped" for r in records)
        fingerprints = self._fingerprints
        listed: dict[str, ListedDocument] = {}
        problems: list[str] = []
        complete = True
        probes: dict[str, list[int | None]] = {}
        for record in records:
            kind, url = record["type"], record["url"]
            key = url_key(url)
            if kind == "probe":
                probes.setdefault(key, []).append(record.get("status"))
                continue
            if record.get("index") and kind in ("error", "skipped"):
                complete = False
                problems.append(f"index page {url}: {record['message']}")
                continue
            if kind == "index":
                continue
            if kind == "document":
                fingerprint = self._fingerprint(record)
                self._documents[key] = record
            elif kind == "not_modified":
                fingerprint = fingerprints.get(key, "")
            elif kind == "error":
                fingerprint = f"error:{record['message']}"
                self._errors[key] = record
            else:
                continue  # skipped by robots.txt or off-site: not ours to list
            listed[key] = ListedDocument(
                key=key,
                source_version="",
                version_number=None,
                fingerprint=fingerprint,
                doc_type=DOC_TYPE,
                title=record.get("title", ""),
                url=url,
                row={"url": url},
            )
        if not self.options.start_urls:
            complete = False  # explicit documents only: absence is a fetch failure, not news
        # Gone: every origin asked answered 404 or 410 (and no page linked it after all).
        gone = {
            key: f"HTTP {statuses[0]}"
            for key, statuses in probes.items()
            if key not in listed and all(status in GONE for status in statuses)
        }
        return Listing(
            documents=list(listed.values()), complete=complete, problems=problems, gone=gone
        )

    async def fetch(self, wanted: Sequence[ListedDocument]) -> AsyncIterator[FetchResult]:
        for item in wanted:
            error = self._errors.get(item.key)
            if error is not None:
                yield FetchFailure(
                    key=item.key,
                    source_version="",
                    url=item.url,
                    message=f"{item.url}: {error['message']}",
                )
                continue
            record = self._documents.get(item.key)
            if record is None:
                yield FetchFailure(
                    key=item.key,
                    source_version="",
                    url=item.url,
                    message=f"{item.url}: not downloaded (304 for a document "
                    "the store does not have)",
                )
                continue
            document = self._raw(item.key, item.url, item.title, record, self._body(record))
            self._kept_bytes -= len(self._kept.pop(record["path"], b""))  # handed over
            if isinstance(document, str):
                yield FetchFailure(
                    key=item.key, source_version="", url=item.url, message=f"{item.url}: {document}"
                )
                continue
            yield document

    def _raw(
        self, key: str, url: str, title: str, record: dict[str, Any], content: bytes
    ) -> RawDocument | str:
        """The document a record's body is, or why it cannot be the document linked."""
        refused = unexpected_content(url, content, record.get("content_type") or "")
        if refused is not None:
            return refused
        meta = [("payer", self.options.payer), ("max_pages", str(self.options.max_pages))]
        if record.get("last_modified"):
            meta.append(("last_modified", record["last_modified"]))
        return RawDocument(
            source=self.name,
            key=key,
            url=url,
            content=content,
            content_type=record.get("content_type") or "",
            fetched_at=dt.datetime.now(dt.UTC),
            source_version="",
            etag=record.get("etag"),
            title=title,
            doc_type=DOC_TYPE,
            source_meta=tuple(meta),
        )
