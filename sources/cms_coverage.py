"""The CMS Coverage API (api.coverage.cms.gov, v1.5): LCDs, billing-and-coding Articles, NCDs.

Every run lists the final-LCD, Article and NCD reports (three requests, whole lists) and fetches
only (document, version) pairs the store has not seen, or whose report row changed. The detail
and code tables of one version are written into one canonical JSON bundle (see `diffing.cms`).
The license-agreement token is fetched lazily, cached, and refreshed once on a 401.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import aiohttp

from diffing.cms import BUNDLE_CONTENT_TYPE, MCD_VIEW, display_id, make_bundle_of_json
from diffing.model import RawDocument
from diffing.serialize import canonical_json, json_value, json_value_unchecked, plain_json
from monitor.errors import FetchError
from sources.base import FetchFailure, FetchResult, KnownListing, ListedDocument, Listing
from sources.fetching import BaseFetcher, RetryPolicy
from sources.http_aio import AiohttpFetcher, policy_session
from sources.options import CMS_API_BASE_URL, CmsCoverageOptions
from sources.outbound import OutboundPolicy

DEFAULT_BASE_URL = CMS_API_BASE_URL

# doc type -> (option name, report path, detail path, id param, version param)
REPORTS: dict[str, tuple[str, str, str, str, str]] = {
    "LCD": ("lcd", "/v1/reports/local-coverage-final-lcds/", "/v1/data/lcd/", "lcdid", "ver"),
    "Article": (
        "article",
        "/v1/reports/local-coverage-articles/",
        "/v1/data/article/",
        "articleid",
        "ver",
    ),
    "NCD": ("ncd", "/v1/reports/national-coverage-ncd/", "/v1/data/ncd/", "ncdid", "ncdver"),
}
# Code tables fetched for each Article version: bundle table name -> path. The ICD-10 covered
# group paragraphs say which CPT/HCPCS codes each diagnosis group supports (code pairs); the
# other group endpoints only head their tables, so they are not worth a request per version.
ARTICLE_TABLES = {
    "hcpc_code": "/v1/data/article/hcpc-code",
    "icd10_covered": "/v1/data/article/icd10-covered",
    "icd10_covered_group": "/v1/data/article/icd10-covered-group",
    "icd10_noncovered": "/v1/data/article/icd10-noncovered",
    "hcpc_modifier": "/v1/data/article/hcpc-modifier",
}
LICENSE_PATH = "/v1/metadata/license-agreement/"
MAX_REPORT_PAGES = 1000
# A whole response (head and body) must arrive within this many times `timeout_seconds`, which
# the client applies to each connect and read: a body trickled slowly would otherwise never time
# out.
DEADLINE_FACTOR = 4


def _fingerprint(row: Any) -> str:
    return hashlib.sha256(canonical_json(row)).hexdigest()


def _numeric_id(value: object) -> str:
    """Report ids are JSON integers in practice and strings in the spec: accept both."""
    text = str(value).strip()
    return str(int(text)) if text.lstrip("-").isdigit() else text


def _data_rows(
    body: bytes, url: str, source: str, *, checked: bool = True
) -> tuple[list[dict[str, Any]], str]:
    """The `data` array of the API envelope and its `meta.next_token` ("" when absent), as
    `json.loads` reads them; unless not `checked`: then as `json_value_unchecked` does."""
    try:
        envelope = json_value(body) if checked else json_value_unchecked(body)
    except (ValueError, UnicodeDecodeError) as exc:
        # An error or bot-challenge page served with 200 is the usual culprit: say so.
        title = re.search(rb"<title[^>]*>([^<]{0,120})", body[:4096], re.IGNORECASE)
        page = ""
        if title is not None:
            page = f"; an HTML page titled {title.group(1).decode(errors='replace').strip()!r}"
        raise FetchError(source, url, f"response is not valid JSON ({exc}{page})") from exc
    if not isinstance(envelope, dict) or not isinstance(envelope.get("data"), list):
        raise FetchError(source, url, "response has no 'data' list")
    rows = [row for row in envelope["data"] if isinstance(row, dict)]
    meta = envelope.get("meta") if isinstance(envelope.get("meta"), dict) else {}
    return rows, str((meta or {}).get("next_token") or "")


class _Read(NamedTuple):
    """The rows of one response and the response they were read from."""

    rows: list[dict[str, Any]]
    content: bytes
    url: str


class LicenseToken:
    """The bearer token of the AMA/ADA/AHA license agreement: cached, refreshed on expiry."""

    def __init__(
        self,
        fetcher: BaseFetcher,
        url: str,
        lifetime_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetcher = fetcher
        self._url = url
        self._lifetime = lifetime_seconds
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        async with self._lock:
            if self._token is None or self._clock() >= self._expires:
                self._token = await self._fetch()
                self._expires = self._clock() + self._lifetime
            return self._token

    def invalidate(self, token: str) -> None:
        if self._token == token:
            self._token = None

    async def _fetch(self) -> str:
        response = await self._fetcher.get(self._url)
        rows, _ = _data_rows(response.content, response.url, self._fetcher.source)
        # The spec says {"token": …}; the live API answers data[0].Token.
        token = next((str(r.get("Token") or r.get("token") or "") for r in rows), "")
        if not token:
            raise FetchError(self._fetcher.source, response.url, "no token in the response")
        return token


class CmsCoverageSource:
    """Lists and fetches LCDs, Articles and NCDs from a CMS Coverage API base URL."""

    def __init__(
        self,
        *,
        name: str,
        options: CmsCoverageOptions,
        session: aiohttp.ClientSession | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.name = name
        self.options = options
        self._base = options.base_url.rstrip("/")
        # Only the API's own host, port and (after DNS) public addresses, unless the base URL
        # is an IP literal; a redirect elsewhere is a per-document error. aiohttp, not httpx:
        # a full baseline is some 14,000 small requests, and httpx's CPU per request (about
        # 1 ms) was a third of the run (bench/cms_full_scale.py).
        policy = OutboundPolicy.for_source([self._base], internal_hosts=options.internal_hosts)

        def own_session() -> aiohttp.ClientSession:  # made in the run's event loop
            return policy_session(
                policy,
                timeout_seconds=options.timeout_seconds,
                headers={"User-Agent": options.user_agent, "Accept": "application/json"},
                max_connections=options.concurrency,
            )

        self._http = AiohttpFetcher(
            source=name,
            session=session or own_session,
            concurrency=options.concurrency,
            max_response_bytes=options.max_response_bytes,
            sleep=sleep,
            allowed_hosts=(urlsplit(self._base).hostname or "",),
            policy=policy,
            deadline_seconds=options.timeout_seconds * DEADLINE_FACTOR,
            retry=RetryPolicy(
                max_retries=options.max_retries,
                backoff_seconds=options.backoff_seconds,
                max_retry_after_seconds=options.max_retry_after_seconds,
            ),
        )
        self._token = LicenseToken(
            self._http, self._base + LICENSE_PATH, options.token_lifetime_seconds
        )
        self._clock = clock

    @property
    def request_count(self) -> int:
        return self._http.request_count

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- listing ---------------------------------------------------------------------------

    async def list_documents(self, known: KnownListing | None = None) -> Listing:
        """The three reports, whole; `known` is not needed (report rows carry versions)."""
        listed: list[ListedDocument] = []
        for doc_type, (option, report_path, *_rest) in REPORTS.items():
            if option not in self.options.document_types:
                continue
            for row in await self._report(report_path):
                listed.append(self._listed(doc_type, row))
        return Listing(documents=listed)

    async def _report(self, path: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        params: dict[str, str] = {}
        for _page in range(MAX_REPORT_PAGES):
            response = await self._http.get(self._base + path, params=params or None)
            page, next_token = _data_rows(response.content, response.url, self.name)
            rows.extend(page)
            if not next_token or next_token == params.get("next_token"):
                return rows
            params = {"next_token": next_token}
        raise FetchError(self.name, self._base + path, f"more than {MAX_REPORT_PAGES} pages")

    def _listed(self, doc_type: str, row: dict[str, Any]) -> ListedDocument:
        version = str(row.get("document_version") or "").strip()
        return ListedDocument(
            key=display_id(doc_type, row),
            source_version=version,
            version_number=int(version) if version.isdigit() else None,
            fingerprint=_fingerprint(row),
            doc_type=doc_type,
            title=str(row.get("title") or ""),
            url=self._document_url(doc_type, row, version),
            row=row,
        )

    def _document_url(self, doc_type: str, row: dict[str, Any], version: str) -> str:
        """The page a biller opens; NCD report rows carry only an API-relative path."""
        url = str(row.get("url") or "").strip()
        if url.startswith(("http://", "https://")):
            return url
        number = _numeric_id(row.get("document_id"))
        if doc_type == "NCD":
            return f"{MCD_VIEW}/ncd.aspx?ncdid={number}&ncdver={version}"
        page, param = ("lcd.aspx", "lcdid") if doc_type == "LCD" else ("article.aspx", "articleid")
        return f"{MCD_VIEW}/{page}?{param}={number}&ver={version}"

    # -- fetching --------------------------------------------------------------------------

    async def fetch(self, wanted: Sequence[ListedDocument]) -> AsyncIterator[FetchResult]:
        by_key: dict[str, list[ListedDocument]] = {}
        for item in wanted:
            by_key.setdefault(item.key, []).append(item)
        groups: asyncio.Queue[list[ListedDocument]] = asyncio.Queue()
        for versions in by_key.values():
            versions.sort(key=lambda d: (d.version_number or 0, d.source_version))
            groups.put_nowait(versions)
        # Bounded: when publishing is slower than fetching, the workers wait here instead of
        # holding every fetched document in memory (with aiohttp, fetching runs well ahead).
        results: asyncio.Queue[FetchResult | None] = asyncio.Queue(
            maxsize=2 * self.options.concurrency
        )

        async def worker() -> None:
            cancelled = False
            try:
                while not groups.empty():
                    for item in groups.get_nowait():
                        await results.put(await self._fetch_one(item))
            except asyncio.CancelledError:
                cancelled = True  # the consumer is gone: nobody waits for the end marker
                raise
            finally:
                if not cancelled:
                    await results.put(None)

        workers = [
            asyncio.create_task(worker())
            for _ in range(min(self.options.concurrency, max(1, len(by_key))))
        ]
        try:
            running = len(workers)
            while running:
                result = await results.get()
                if result is None:
                    running -= 1
                else:
                    yield result
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _fetch_one(self, item: ListedDocument) -> FetchResult:
        try:
            content = await self._bundle(item)
        except FetchError as exc:
            return FetchFailure(
                key=item.key, source_version=item.source_version, url=exc.url, message=str(exc)
            )
        return RawDocument(
            source=self.name,
            key=item.key,
            url=item.url,
            content=content,
            content_type=BUNDLE_CONTENT_TYPE,
            fetched_at=self._clock(),
            source_version=item.source_version,
            title=item.title,
            doc_type=item.doc_type,
        )

    async def _bundle(self, item: ListedDocument) -> bytes:
        _option, _report, detail_path, id_param, ver_param = REPORTS[item.doc_type]
        params = {
            id_param: _numeric_id(item.row.get("document_id")),
            ver_param: item.source_version,
        }
        needs_token = item.doc_type in ("LCD", "Article")
        detail_read = await self._rows(detail_path, params, needs_token)
        detail = detail_read.rows
        if not detail:
            raise FetchError(
                self.name,
                self._base + detail_path,
                f"no detail record for {item.key} version {item.source_version}",
            )
        reads: dict[str, _Read] = {}
        if item.doc_type == "Article":
            # Every table's request runs to its end and is waited for (no orphan outlives the
            # run), and none is cancelled half-way: a request cancelled inside the connection
            # pool can keep its slot, and after a few refused tables the pool ran dry (the
            # other documents then waited out their whole timeout for a connection).
            names = list(ARTICLE_TABLES)
            results = await asyncio.gather(
                *(self._rows(ARTICLE_TABLES[name], params, True) for name in names),
                return_exceptions=True,
            )
            for name, result in zip(names, results, strict=True):
                if isinstance(result, BaseException):
                    raise result
                reads[name] = result
        tables = {name: read.rows for name, read in reads.items()}
        # The responses were read by orjson unchecked: what of them goes into the bundle is
        # checked here, once, and read again by json (exactly) if orjson may have read it
        # otherwise; checked, it need not be checked again to be written.
        plain = plain_json([detail[0], tables])
        if not plain:
            detail = self._exact(detail_read)
            tables = {name: self._exact(read) for name, read in reads.items()}
        # Every value is the API's decoded JSON: its criteria are worked out here, from them.
        return make_bundle_of_json(
            doc_type=item.doc_type,
            report=item.row,
            detail=detail[0],
            tables=tables,
            plain_detail_and_tables=plain,
        )

    def _exact(self, read: _Read) -> list[dict[str, Any]]:
        return _data_rows(read.content, read.url, self.name)[0]

    async def _rows(self, path: str, params: dict[str, str], needs_token: bool) -> _Read:
        """The `data` rows of one response, read by orjson unchecked (see `_bundle`)."""
        url = self._base + path
        for attempt in range(2):
            headers = {}
            token = ""
            if needs_token:
                token = await self._token.get()
                headers["Authorization"] = f"Bearer {token}"
            try:
                response = await self._http.get(url, params=params, headers=headers)
            except FetchError as exc:
                if exc.status == 401 and needs_token and attempt == 0:
                    self._token.invalidate(token)  # expired early: fetch a new one, once
                    continue
                raise
            rows, _ = _data_rows(response.content, response.url, self.name, checked=False)
            return _Read(rows=rows, content=response.content, url=response.url)
        raise FetchError(
            self.name, url, "still unauthorized after refreshing the token", status=401
        )
