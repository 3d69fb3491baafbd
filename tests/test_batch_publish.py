"""Publishing several versions per transaction (monitor.pipeline.publish.publish_batch and
monitor.pipeline.batching), on SQLite and on PostgreSQL: a batch stores exactly what publishing
the same versions one by one stores, a failing batch falls back to one transaction per
document, and a batch waits neither forever nor for a slow source."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import text

from diffing.cms import cms_criteria, make_bundle
from diffing.diff import diff_criteria
from diffing.model import Criteria, PolicyDiff, RawDocument
from monitor.errors import MonitorError
from monitor.pipeline.batching import Batcher, ticking
from monitor.pipeline.publish import (
    Outcome,
    Pending,
    PublishContext,
    publish,
    publish_batch,
)
from monitor.store.core import Store
from sources.base import ListedDocument

TODAY = dt.date(2026, 11, 12)


def _lcd(number: int, version: int, indication: str) -> tuple[RawDocument, ListedDocument]:
    key = f"L{number}"
    row = {
        "document_id": number,
        "document_version": version,
        "document_display_id": key,
        "document_type": "LCD",
        "title": f"Policy {number}",
        "effective_date": "03/01/2026",
        "retirement_date": "N/A",
        "url": f"https://www.cms.gov/x?lcdid={number}&ver={version}",
    }
    content = make_bundle(
        doc_type="LCD", report=row, detail={"lcd_id": number, "indication": indication}, tables={}
    )
    raw = RawDocument(
        source="cms",
        key=key,
        url=row["url"],
        content=content,
        content_type="application/json",
        fetched_at=dt.datetime(2026, 11, 12, 8, 0, tzinfo=dt.UTC),
        source_version=str(version),
        doc_type="LCD",
        title=row["title"],
    )
    listed = ListedDocument(
        key=key,
        source_version=str(version),
        version_number=version,
        fingerprint=json.dumps(row, sort_keys=True)[:64],
        doc_type="LCD",
        title=row["title"],
        url=row["url"],
        row=row,
    )
    return raw, listed


# Three documents; L2 has two versions in the same batch, the second one changed.
DOCUMENTS = [
    _lcd(1, 1, "<p>The lesion bleeds.</p>"),
    _lcd(2, 1, "<p>The patient is 18 or older.</p>"),
    _lcd(2, 2, "<p>The patient is 21 or older. A photograph is on file.</p>"),
    _lcd(3, 4, "<p>Two prior treatments failed.</p>"),
]


@pytest.fixture
def stores(database_url: str, tmp_path: Any) -> Iterator[tuple[Store, Store]]:
    """The store under test and, on SQLite, a second one to publish one by one into."""
    batched = Store.open(database_url)
    alone = Store.open(f"sqlite:///{tmp_path / 'alone.db'}")
    yield batched, alone
    batched.close()
    alone.close()


def _context(store: Store, *, baseline: bool, **changes: Any) -> PublishContext:
    source = store.ensure_source("cms", "cms_coverage")
    run_id = store.start_run(source.id, baseline=baseline)
    ctx = PublishContext(
        source_id=source.id,
        run_id=run_id,
        baseline=baseline,
        today=TODAY,
        extract=lambda raw: cms_criteria(raw.content),
        extractor_name="cms/1",
    )
    return dataclasses.replace(ctx, **changes)


def _content(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """What is stored, without ids and clocks (row order is publishing order)."""
    queries = {
        "versions": "SELECT d.key, v.source_version, v.version_number, v.content_sha256, "
        "v.title FROM document_versions v JOIN documents d ON d.id = v.document_id "
        "ORDER BY v.id",
        "criteria": "SELECT v.source_version, c.sha256 FROM criteria c "
        "JOIN document_versions v ON v.id = c.version_id ORDER BY v.id",
        "rule_rows": "SELECT d.key, v.source_version, r.kind, r.code, r.text FROM rule_rows r "
        "JOIN document_versions v ON v.id = r.version_id JOIN documents d ON d.id = r.document_id "
        "ORDER BY r.id",
        "changes": "SELECT d.key, v.source_version, p.source_version, c.kind, c.field, "
        "c.before, c.after, c.severity FROM changes c JOIN documents d ON d.id = c.document_id "
        "JOIN document_versions v ON v.id = c.version_id "
        "LEFT JOIN document_versions p ON p.id = c.previous_version_id ORDER BY c.id",
        "outbox": "SELECT c.kind, c.field FROM outbox_events o JOIN changes c "
        "ON c.id = o.change_id ORDER BY o.id",
        "listing": "SELECT key, source_version, fingerprint FROM listing_entries "
        "ORDER BY key, source_version",
    }
    with store.session() as session:
        return {
            name: [tuple(row) for row in session.execute(text(sql))]
            for name, sql in queries.items()
        }


def test_a_batch_stores_what_publishing_one_by_one_stores(stores: tuple[Store, Store]) -> None:
    batched, alone = stores
    ctx = _context(batched, baseline=False)
    results = publish_batch(batched, ctx, [Pending(raw=r, listed=ld) for r, ld in DOCUMENTS])
    one_ctx = _context(alone, baseline=False)
    singles = [publish(alone, one_ctx, raw, listed) for raw, listed in DOCUMENTS]

    assert [raw.key for raw, _result, _error in results] == [raw.key for raw, _ in DOCUMENTS]
    assert [r.outcome for _raw, r, _e in results if r] == [s.outcome for s in singles]
    assert [r.changes for _raw, r, _e in results if r] == [s.changes for s in singles]
    assert [r.outcome for _raw, r, _e in results if r] == [
        Outcome.NEW,
        Outcome.NEW,
        Outcome.CHANGED,  # compared with version 1, published earlier in the same batch
        Outcome.NEW,
    ]
    stored = _content(batched)
    assert stored == _content(alone)
    assert any(change[1:3] == ("2", "1") for change in stored["changes"])  # v2 against v1
    assert stored["outbox"], "changes outside a baseline are announced"


def test_publishing_a_batch_again_publishes_nothing(stores: tuple[Store, Store]) -> None:
    batched, _alone = stores
    items = [Pending(raw=r, listed=ld) for r, ld in DOCUMENTS]
    publish_batch(batched, _context(batched, baseline=True), items)
    before = _content(batched)
    again = publish_batch(batched, _context(batched, baseline=False), items)
    assert {r.outcome for _raw, r, _e in again if r} == {Outcome.UNCHANGED}
    assert _content(batched) == before


def test_a_failing_batch_is_rolled_back_and_published_one_by_one(
    stores: tuple[Store, Store],
) -> None:
    batched, _alone = stores

    def diff(old: Criteria | None, new: Criteria, *, today: dt.date) -> PolicyDiff:
        if new.document_id == "L3":
            raise MonitorError("this document cannot be compared")
        return diff_criteria(old, new, today=today)

    ctx = _context(batched, baseline=False, diff=diff)
    results = publish_batch(batched, ctx, [Pending(raw=r, listed=ld) for r, ld in DOCUMENTS])

    failed = [(raw.key, error) for raw, result, error in results if result is None]
    assert len(failed) == 1
    assert failed[0][0] == "L3"
    assert "cannot be compared" in str(failed[0][1])
    stored = _content(batched)
    # The others are published, each once; nothing of L3 is (not even its listing memory).
    assert [v[:2] for v in stored["versions"]] == [("L1", "1"), ("L2", "1"), ("L2", "2")]
    assert ("L3", "4") not in {row[:2] for row in stored["listing"]}


def test_an_extraction_error_fails_that_document_only(stores: tuple[Store, Store]) -> None:
    batched, _alone = stores
    ctx = _context(batched, baseline=True)
    items = [Pending(raw=r, listed=ld) for r, ld in DOCUMENTS]
    items[1] = dataclasses.replace(items[1], criteria="extraction failed: a broken table")
    results = publish_batch(batched, ctx, items)
    assert [(raw.key, r.outcome if r else None) for raw, r, _e in results] == [
        ("L1", Outcome.NEW),
        ("L2", Outcome.ERROR),  # results come back in the order of the items
        ("L2", Outcome.NEW),  # version 2 is the first version of L2 stored
        ("L3", Outcome.NEW),
    ]
    by_key = {(raw.key, raw.source_version): r for raw, r, _e in results}
    assert by_key[("L2", "1")] is not None
    assert by_key[("L2", "1")].outcome is Outcome.ERROR
    assert by_key[("L2", "1")].error == "extraction failed: a broken table"
    versions = [v[:2] for v in _content(batched)["versions"]]
    assert versions == [("L1", "1"), ("L2", "2"), ("L3", "4")]


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_batcher_publishes_when_full_when_overdue_and_when_flushed(
    stores: tuple[Store, Store],
) -> None:
    batched, _alone = stores
    clock = _Clock()

    async def scenario() -> None:
        async with Batcher(
            batched, _context(batched, baseline=True), size=2, max_wait=1.0, clock=clock
        ) as batcher:
            assert await batcher.add(*DOCUMENTS[0]) == []
            assert not batcher.overdue()
            done = await batcher.add(*DOCUMENTS[1])  # full: both published
            assert [raw.key for raw, _r, _e in done] == ["L1", "L2"]
            assert await batcher.add(*DOCUMENTS[2]) == []
            clock.now += 1.5
            assert batcher.overdue()  # waited too long: the runner flushes it at the next tick
            assert [raw.source_version for raw, _r, _e in await batcher.flush()] == ["2"]
            assert await batcher.flush() == []
            assert await batcher.add(*DOCUMENTS[3]) == []
            assert [raw.key for raw, _r, _e in await batcher.flush()] == ["L3"]

    asyncio.run(scenario())
    assert len(_content(batched)["versions"]) == 4


def test_batches_published_in_a_thread_come_back_in_order_and_complete(
    stores: tuple[Store, Store],
) -> None:
    batched, alone = stores

    async def scenario() -> list[str]:
        seen: list[str] = []
        async with Batcher(
            batched, _context(batched, baseline=False), size=1, background=True
        ) as batcher:
            for raw, listed in DOCUMENTS:
                seen += [
                    f"{r.key}/{r.source_version}" for r, _res, _e in await batcher.add(raw, listed)
                ]
            seen += [f"{r.key}/{r.source_version}" for r, _res, _e in await batcher.flush()]
        return seen

    assert asyncio.run(scenario()) == ["L1/1", "L2/1", "L2/2", "L3/4"]
    one_ctx = _context(alone, baseline=False)
    for raw, listed in DOCUMENTS:
        publish(alone, one_ctx, raw, listed)
    assert _content(batched) == _content(alone)


def test_ticking_reports_quiet_spells_without_interrupting_the_source() -> None:
    closed: list[bool] = []

    async def slow() -> AsyncIterator[int]:
        try:
            for n in range(3):
                await asyncio.sleep(0.25 if n == 1 else 0)
                yield n
        finally:
            closed.append(True)

    async def collect() -> list[int | None]:
        return [item async for item in ticking(slow(), 0.05)]

    seen = asyncio.run(collect())
    assert [item for item in seen if item is not None] == [0, 1, 2]  # nothing lost
    assert seen.count(None) >= 2  # the quarter second without an item was noticed
    assert closed == [True]


def test_ticking_closes_the_source_when_the_consumer_stops_early() -> None:
    closed: list[bool] = []

    async def endless() -> AsyncIterator[int]:
        try:
            n = 0
            while True:
                await asyncio.sleep(0.01)
                yield n
                n += 1
        finally:
            closed.append(True)

    async def first_three() -> list[int]:
        taken: list[int] = []
        generator = ticking(endless(), 1.0)
        async for item in generator:
            if item is not None:
                taken.append(item)
            if len(taken) == 3:
                break
        await generator.aclose()
        return taken

    assert asyncio.run(first_three()) == [0, 1, 2]
    assert closed == [True]
