"""The MCD bulk exports (downloads.cms.gov): ``current_lcd.zip``, ``current_article.zip`` and
``ncd.zip``, each a zip holding a zip of CSV files.

Every run asks for each zip with a conditional GET (the ETag and Last-Modified of the last run
that published everything are kept as listing validators under ``mcd-export:<file>``). A 304, or
a body whose sha256 is the one already loaded, costs nothing more. A changed zip is streamed to
a temporary file (never held in memory), read row by row with zip-bomb guards
(`sources.mcd_archive`) and joined per (document, version) into the API source's bundle
(`diffing.mcd`), so the criteria and changes of a document are the same whichever of the two
sources saw it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import tempfile
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx

from diffing.cms import BUNDLE_CONTENT_TYPE
from diffing.mcd import EXPORTS, ExportBundles, ExportSpec, ExportVersion
from diffing.model import RawDocument
from monitor.errors import FetchError, ResponseTooLarge, SourceError
from sources.base import (
    FetchResult,
    KnownListing,
    ListedDocument,
    Listing,
    Validators,
)
from sources.http import (
    REDIRECT_STATUS,
    RETRYABLE_STATUS,
    RetryPolicy,
    policy_client,
    retry_after_seconds,
)
from sources.mcd_archive import read_export
from sources.options import MCD_EXPORTS_BASE_URL, McdDownloadsOptions
from sources.outbound import OutboundPolicy, Refused

DEFAULT_BASE_URL = MCD_EXPORTS_BASE_URL
VALIDATOR_PREFIX = "mcd-export:"  # listing-entry key of an export file's validators
MAX_REDIRECTS = 5
# A whole download (every redirect hop and the body) must finish within this many times the
# per-read timeout: 20 minutes by default, ample for the ~40 MB exports, and a server that
# trickles a byte at a time cannot hold the source for longer.
DEADLINE_FACTOR = 10
_CHUNK = 1 << 20

log = logging.getLogger("policy_monitor.sources.mcd")


@dataclass(frozen=True, kw_only=True)
class Download:
    """One export file this run: a temporary file, or ``path=None`` when unchanged."""

    name: str
    url: str
    path: Path | None
    sha256: str | None
    etag: str | None
    last_modified: str | None


def validator_key(zip_name: str) -> tuple[str, str]:
    return (VALIDATOR_PREFIX + zip_name, "")


class McdDownloadsSource:
    """Lists and "fetches" document versions from the three MCD export zips."""

    def __init__(
        self,
        *,
        name: str,
        options: McdDownloadsOptions,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        export_files: dict[str, Path] | None = None,
    ) -> None:
        self.name = name
        self.options = options
        self._base = options.base_url.rstrip("/")
        self._own_client = client is None
        # Redirects are followed here, hop by hop, each held to the policy (the export's own
        # host and port; after DNS, public addresses unless the base URL is an IP literal).
        self._policy = OutboundPolicy.for_source(
            [self._base], internal_hosts=options.internal_hosts
        )
        self._client = client or policy_client(
            self._policy,
            timeout=httpx.Timeout(options.timeout_seconds),
            headers={"User-Agent": options.user_agent},
        )
        self._retry = RetryPolicy(
            max_retries=options.max_retries,
            backoff_seconds=options.backoff_seconds,
            max_retry_after_seconds=options.max_retry_after_seconds,
        )
        self._sleep = sleep
        self._clock = clock
        # Local zips (backfill --file): read these instead of downloading.
        self._export_files = export_files or {}
        self._requests = 0
        self._bundles: dict[str, tuple[ExportBundles, dict[tuple[str, str], ExportVersion]]] = {}
        self._temporary: list[Path] = []

    @property
    def request_count(self) -> int:
        return self._requests

    async def aclose(self) -> None:
        self._bundles.clear()
        for path in self._temporary:
            with contextlib.suppress(OSError):
                path.unlink()
        if self._own_client:
            await self._client.aclose()

    # -- listing -------------------------------------------------------------------------------

    async def list_documents(self, known: KnownListing | None = None) -> Listing:
        known = known or {}
        listed: list[ListedDocument] = []
        validators: dict[tuple[str, str], Validators] = {}
        problems: list[str] = []
        complete = True
        for spec in EXPORTS:
            if spec.option not in self.options.document_types:
                continue
            previous = known.get(validator_key(spec.zip_name))
            download = await self._obtain(spec, previous)
            if download.path is None or (
                previous is not None and download.sha256 == previous.fingerprint
            ):
                log.info("%s: %s unchanged", self.name, spec.zip_name)
                complete = False  # documents of an unchanged export are not listed again
                if previous is not None:
                    validators[validator_key(spec.zip_name)] = Validators(
                        fingerprint=previous.fingerprint,
                        etag=download.etag or previous.etag,
                        last_modified=download.last_modified or previous.last_modified,
                    )
                self._discard(download)
                continue
            try:
                found, stats_problems = await asyncio.to_thread(self._read, spec, download)
            finally:
                self._discard(download)
            listed.extend(found)
            problems.extend(stats_problems)
            assert download.sha256 is not None
            validators[validator_key(spec.zip_name)] = Validators(
                fingerprint=download.sha256,
                etag=download.etag,
                last_modified=download.last_modified,
            )
        return Listing(
            documents=listed, complete=complete, problems=problems, validators=validators
        )

    def _read(self, spec: ExportSpec, download: Download) -> tuple[list[ListedDocument], list[str]]:
        assert download.path is not None
        data, stats = read_export(
            download.path,
            spec,
            source=self.name,
            limits=self.options.limits,
            temp_dir=self.options.download_dir or None,
        )
        bundles = ExportBundles(data)
        by_version: dict[tuple[str, str], ExportVersion] = {}
        listed: list[ListedDocument] = []
        for version in bundles.versions():
            by_version[(version.key, version.version)] = version
            listed.append(
                ListedDocument(
                    key=version.key,
                    source_version=version.version,
                    version_number=int(version.version) if version.version.isdigit() else None,
                    fingerprint=bundles.fingerprint(version),
                    doc_type=spec.doc_type,
                    title=version.title,
                    url=version.url,
                )
            )
        self._bundles[spec.doc_type] = (bundles, by_version)
        log.info(
            "%s: %s: %d rows, %d document versions%s",
            self.name,
            spec.zip_name,
            stats.rows,
            len(listed),
            f", header-less: {', '.join(stats.headerless_files)}" if stats.headerless_files else "",
        )
        return listed, stats.problems

    # -- fetching ------------------------------------------------------------------------------

    async def fetch(self, wanted: Sequence[ListedDocument]) -> AsyncIterator[FetchResult]:
        """Bundles of the wanted versions, each document's versions in order. Nothing is
        downloaded here: the listing read the whole export."""
        ordered = sorted(
            wanted, key=lambda d: (d.doc_type, d.key, d.version_number or 0, d.source_version)
        )
        for count, item in enumerate(ordered, start=1):
            bundles, by_version = self._bundles[item.doc_type]
            version = by_version[(item.key, item.source_version)]
            yield RawDocument(
                source=self.name,
                key=item.key,
                url=item.url,
                content=bundles.bundle(version),
                content_type=BUNDLE_CONTENT_TYPE,
                fetched_at=self._clock(),
                source_version=item.source_version,
                title=item.title,
                doc_type=item.doc_type,
            )
            if count % 64 == 0:
                await asyncio.sleep(0)  # let the loop breathe during a baseline

    # -- downloading ---------------------------------------------------------------------------

    def _discard(self, download: Download) -> None:
        if download.path is not None and download.path in self._temporary:
            self._temporary.remove(download.path)
            with contextlib.suppress(OSError):
                download.path.unlink()

    async def _obtain(self, spec: ExportSpec, previous: Validators | None) -> Download:
        local = self._export_files.get(spec.zip_name)
        if local is not None:
            digest = await asyncio.to_thread(_sha256_of, local)
            return Download(
                name=spec.zip_name,
                url=local.as_uri(),
                path=local,
                sha256=digest,
                etag=None,
                last_modified=None,
            )
        return await self._download(spec, previous)

    async def _download(self, spec: ExportSpec, previous: Validators | None) -> Download:
        url = f"{self._base}/{spec.zip_name}"
        last_error: FetchError | None = None
        for attempt in range(self._retry.max_retries + 1):
            delay = min(self._retry.max_backoff_seconds, self._retry.backoff_seconds * 2**attempt)
            try:
                return await self._download_once(spec, url, previous)
            except _Retry as retry:
                last_error = retry.error
                if retry.after is not None:
                    delay = min(retry.after, self._retry.max_retry_after_seconds)
            if attempt < self._retry.max_retries:
                log.info("%s: %s; retrying in %.1f s", self.name, last_error, delay)
                await self._sleep(delay)
        assert last_error is not None
        raise last_error

    async def _download_once(
        self, spec: ExportSpec, url: str, previous: Validators | None
    ) -> Download:
        """One attempt: the export at `url`, following redirects the policy allows, all of it
        within the deadline."""
        headers: dict[str, str] = {}
        if previous is not None and previous.etag:
            headers["If-None-Match"] = previous.etag
        if previous is not None and previous.last_modified:
            headers["If-Modified-Since"] = previous.last_modified
        deadline = self.options.timeout_seconds * DEADLINE_FACTOR
        chain: list[str] = []
        target = url
        try:
            async with asyncio.timeout(deadline):
                while True:
                    reason = self._policy.refusal(target)
                    if reason is not None:
                        moved = f"redirected to another host ({target}); not followed: "
                        if not chain:
                            moved = ""
                        raise FetchError(
                            self.name, url, f"{moved}refused by the outbound policy: {reason}"
                        )
                    fetched = await self._get(spec, target, headers)
                    if isinstance(fetched, Download):
                        return fetched
                    chain.append(target)
                    if fetched in chain or len(chain) > MAX_REDIRECTS:
                        raise FetchError(
                            self.name, url, f"more than {MAX_REDIRECTS} redirects or a loop"
                        )
                    target = fetched
        except TimeoutError as exc:
            raise _Retry(
                FetchError(
                    self.name, url, f"timed out: no complete download within {deadline:g} s"
                ),
                None,
            ) from exc

    async def _get(self, spec: ExportSpec, url: str, headers: dict[str, str]) -> Download | str:
        """One request: the download, or the absolute target of a redirect (not followed)."""
        limit = self.options.max_download_bytes
        self._requests += 1
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept past this block on success
            prefix="mcd-",
            suffix=f"-{spec.zip_name}",
            dir=self.options.download_dir or None,
            delete=False,
        )
        path = Path(handle.name)
        kept = False
        try:
            async with self._client.stream("GET", url, headers=headers) as response:
                status = response.status_code
                etag = response.headers.get("etag")
                modified = response.headers.get("last-modified")
                if status == 304:
                    return Download(
                        name=spec.zip_name,
                        url=url,
                        path=None,
                        sha256=None,
                        etag=etag,
                        last_modified=modified,
                    )
                location = response.headers.get("location")
                if status in REDIRECT_STATUS and location:
                    return urljoin(url, location)
                if status in RETRYABLE_STATUS:
                    raise _Retry(
                        FetchError(self.name, url, "server asked to retry", status=status),
                        retry_after_seconds(response.headers.get("retry-after")),
                    )
                if status >= 300:  # an error, or a redirect without a Location
                    raise FetchError(
                        self.name, url, response.reason_phrase or "error", status=status
                    )
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise ResponseTooLarge(self.name, url, limit)
                digest = hashlib.sha256()
                size = 0
                async for chunk in response.aiter_bytes(_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise ResponseTooLarge(self.name, url, limit)
                    digest.update(chunk)
                    handle.write(chunk)
                handle.close()
                kept = True
                self._temporary.append(path)
                log.info("%s: downloaded %s (%d bytes)", self.name, spec.zip_name, size)
                return Download(
                    name=spec.zip_name,
                    url=url,
                    path=path,
                    sha256=digest.hexdigest(),
                    etag=etag,
                    last_modified=modified,
                )
        except Refused as exc:  # from the client's network backend: the address, after DNS
            raise FetchError(
                self.name, url, f"refused by the outbound policy: {exc}; not requested"
            ) from exc
        except httpx.TimeoutException as exc:
            raise _Retry(
                FetchError(self.name, url, f"timed out ({type(exc).__name__})"), None
            ) from exc
        except httpx.TransportError as exc:
            # Includes a body cut short before its Content-Length (RemoteProtocolError).
            raise _Retry(FetchError(self.name, url, f"{type(exc).__name__}: {exc}"), None) from exc
        finally:
            if not kept:
                handle.close()
                with contextlib.suppress(OSError):
                    path.unlink()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _Retry(Exception):
    def __init__(self, error: FetchError, after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.after = after


def spec_for_file(path: Path) -> ExportSpec:
    """Which export a local zip is, by its name or else by the zip inside it."""
    name = path.name.lower()
    for token, doc_type in (("article", "Article"), ("ncd", "NCD"), ("lcd", "LCD")):
        if token in name:
            return next(spec for spec in EXPORTS if spec.doc_type == doc_type)
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info.filename.lower() for info in archive.infolist()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(path.name, f"not a readable zip file ({exc})") from exc
    for spec in EXPORTS:
        inner = spec.zip_name.removesuffix(".zip") + "_csv.zip"
        if any(member.endswith(inner) or member.endswith(spec.main_file) for member in members):
            return spec
    raise SourceError(
        path.name,
        "cannot tell which MCD export this is (expected current_lcd, current_article or ncd)",
    )
