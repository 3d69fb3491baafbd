"""Extraction that starts while the listing still downloads (`sources.base.Announcing`): the
run publishes what `fetch` yields, whatever was announced, with the same outcomes."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import pytest
from isolation_support import content_titled_extract

import sources
from diffing.model import RawDocument
from monitor.config import Schedule, SourceConfig
from monitor.pipeline.runner import _Extraction, run_source
from monitor.pipeline.workers import worker_context
from monitor.store.core import Store
from sources.base import (
    Announcing,
    Arrived,
    FetchResult,
    KnownListing,
    ListedDocument,
    Listing,
    SourceKind,
)

# What the listing downloads (and announces) and what `fetch` then yields, by key: /c changed
# in between (announced bytes are a hint only), /d is not announced at all.
ANNOUNCED = {"/a": b"a1", "/b": b"b1", "/c": b"c-stale", "/hang": b"h", "/crash": b"x"}
FETCHED = {"/a": b"a1", "/b": b"b1", "/c": b"c2", "/d": b"d1", "/hang": b"h", "/crash": b"x"}


def _raw(key: str, content: bytes) -> RawDocument:
    return RawDocument(
        source="early",
        key=key,
        url=f"http://127.0.0.1{key}",
        content=content,
        content_type="text/plain",
        fetched_at=dt.datetime.now(dt.UTC),
    )


@dataclass(frozen=True, kw_only=True)
class _Options:
    parse_timeout_seconds: float = 3.0


class _Source:
    name = "early"
    request_count = 0
    keys: tuple[str, ...] = ("/a", "/b", "/c", "/d")

    def __init__(self, **_: object) -> None:
        self.arrived: Arrived | None = None

    def announce_to(self, arrived: Arrived | None) -> None:
        self.arrived = arrived

    async def list_documents(self, known: KnownListing) -> Listing:
        for key in self.keys:
            if key in ANNOUNCED and self.arrived is not None:
                self.arrived(_raw(key, ANNOUNCED[key]))
        await asyncio.sleep(0.5)  # the rest of the listing: the workers extract meanwhile
        return Listing(
            documents=[
                ListedDocument(
                    key=k,
                    source_version="",
                    version_number=None,
                    fingerprint=hashlib.sha256(FETCHED[k]).hexdigest(),
                    doc_type="test",
                    title=k,
                    url=f"http://127.0.0.1{k}",
                )
                for k in self.keys
            ],
            complete=False,
        )

    async def fetch(self, wanted: Sequence[ListedDocument]) -> AsyncIterator[FetchResult]:
        for item in wanted:
            yield _raw(item.key, FETCHED[item.key])

    async def aclose(self) -> None:
        pass


class _FaultySource(_Source):
    keys = ("/a", "/hang", "/b", "/crash", "/c", "/d")


def _config(monkeypatch: pytest.MonkeyPatch, create: type[_Source]) -> SourceConfig:
    kind = SourceKind(
        kind="early",
        options=_Options,
        default_schedule="every 1h",
        create=create,
        extract=content_titled_extract,
        extractor_name="early/1",
        isolated_extract=True,
    )
    monkeypatch.setitem(sources.SOURCE_KINDS, "early", kind)
    return SourceConfig(
        name="early",
        kind="early",
        schedule=Schedule(expression="every 1h"),
        enabled=True,
        options=_Options(),
    )


@pytest.fixture
def ready_workers() -> Iterator[None]:
    """The fork server warmed before the run, so the 3 s parse timeout times documents."""
    with ProcessPoolExecutor(max_workers=1, mp_context=worker_context()) as pool:
        assert pool.submit(int).result(timeout=120) == 0
    yield


def _titles(store: Store) -> dict[str, str]:
    titles = {}
    for key in FETCHED:
        versions = store.versions("early", key)
        if versions:
            titles[key] = store.criteria_of(versions[-1].id).title
    return titles


def test_the_fake_source_announces() -> None:
    assert isinstance(_Source(), Announcing)


@pytest.mark.slow
def test_announced_documents_are_extracted_early_and_published_as_fetched(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: object,
    ready_workers: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/x.db")
    with caplog.at_level(logging.DEBUG, logger="policy_monitor.runner"):
        summary = asyncio.run(run_source(_config(monkeypatch, _Source), store))
    assert summary.outcome == "success"
    assert summary.counts.new_versions == 4
    # /a and /b were taken from the early extraction; /c's announced bytes were not the
    # fetched ones, so /c was extracted again; /d was never announced.
    assert "2 document(s) extracted while the source listed" in caplog.text
    assert _titles(store) == {"/a": "a1", "/b": "b1", "/c": "c2", "/d": "d1"}
    store.close()


@pytest.mark.slow
def test_a_hanging_and_a_crashing_announced_document_cost_one_document_each(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, ready_workers: None
) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/x.db")
    summary = asyncio.run(run_source(_config(monkeypatch, _FaultySource), store))
    errors = {e.document_key: e.message for e in store.run_errors(summary.run_id)}
    assert set(errors) == {"/hang", "/crash"}
    assert "longer than 3 s" in errors["/hang"]
    assert "worker died on this document" in errors["/crash"]
    assert summary.counts.new_versions == 4
    assert summary.outcome == "partial"
    assert _titles(store) == {"/a": "a1", "/b": "b1", "/c": "c2", "/d": "d1"}
    store.close()


def test_a_document_with_pages_waits_for_its_reference_outside_a_baseline() -> None:
    """Outside a baseline a PDF is parsed with its previous version's page edges, which only
    the store knows: it is not extracted early. A baseline has no references: it is."""

    async def started(baseline: bool, content: bytes) -> int:
        kind = SourceKind(
            kind="early",
            options=_Options,
            default_schedule="every 1h",
            create=_Source,
            extract=content_titled_extract,
            extractor_name="early/1",
            isolated_extract=True,
        )
        extraction = _Extraction(kind, timeout=30.0, baseline=baseline)
        try:
            extraction.arrived(_raw("/p", content))
            return len(extraction.early)
        finally:
            extraction.close()

    pdf = b"%PDF-1.4\n%%EOF\n"
    assert asyncio.run(started(False, pdf)) == 0
    assert asyncio.run(started(True, pdf)) == 1
    assert asyncio.run(started(False, b"<html><body><p>policy</p></body></html>")) == 1
