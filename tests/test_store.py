"""Storage contract, on SQLite and on PostgreSQL: publish, idempotence, immutability, queries."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import text

from diffing.cms import cms_criteria, make_bundle
from diffing.model import RawDocument
from monitor.errors import PublishError, StoreError
from monitor.pipeline.publish import Outcome, PublishContext, publish, publish_withdrawals
from monitor.store.core import RunCounts, Store
from monitor.store.models.core import DocumentVersion, Payload
from sources.base import ListedDocument

TODAY = dt.date(2026, 11, 12)


def _lcd(version: int, indication: str, *, note: str = "") -> tuple[RawDocument, ListedDocument]:
    row = {
        "document_id": 33979,
        "document_version": version,
        "document_display_id": "L33979",
        "document_type": "LCD",
        "note": note,
        "title": "Removal of Benign Skin Lesions",
        "effective_date": "03/01/2026",
        "retirement_date": "N/A",
        "url": f"https://www.cms.gov/x?lcdid=33979&ver={version}",
    }
    content = make_bundle(
        doc_type="LCD", report=row, detail={"lcd_id": 33979, "indication": indication}, tables={}
    )
    raw = RawDocument(
        source="cms",
        key="L33979",
        url=row["url"],
        content=content,
        content_type="application/json",
        fetched_at=dt.datetime.now(dt.UTC),
        source_version=str(version),
        doc_type="LCD",
        title=row["title"],
    )
    listed = ListedDocument(
        key="L33979",
        source_version=str(version),
        version_number=version,
        fingerprint=json.dumps(row, sort_keys=True)[:64],
        doc_type="LCD",
        title=row["title"],
        url=row["url"],
        row=row,
    )
    return raw, listed


@pytest.fixture
def store(migrated_database_url: str) -> Store:
    opened = Store.open(migrated_database_url)
    yield opened
    opened.close()


def _context(store: Store, *, baseline: bool) -> PublishContext:
    source = store.ensure_source("cms", "cms_coverage")
    run_id = store.start_run(source.id, baseline=baseline)
    return PublishContext(
        source_id=source.id,
        run_id=run_id,
        baseline=baseline,
        today=TODAY,
        extract=lambda raw: cms_criteria(raw.content),
        extractor_name="cms/1",
    )


def test_publish_baseline_then_change_then_idempotent(store: Store) -> None:
    ctx = _context(store, baseline=True)
    first = publish(store, ctx, *_lcd(1, "<p>The lesion bleeds.</p>"))
    assert first.outcome is Outcome.NEW
    again = publish(store, ctx, *_lcd(1, "<p>The lesion bleeds.</p>"))
    assert again.outcome is Outcome.UNCHANGED
    assert again.version_id == first.version_id

    later = _context(store, baseline=False)
    second = publish(store, later, *_lcd(2, "<p>The lesion bleeds. It must be photographed.</p>"))
    assert second.outcome is Outcome.CHANGED
    changes = store.changes(source="cms")
    assert [(c.kind, c.baseline, c.severity) for c in changes] == [
        ("document_added", True, "low"),
        ("section_changed", False, "medium"),
    ]
    assert changes[1].after == "It must be photographed."
    assert changes[1].previous_version == "1" and changes[1].version == "2"
    assert store.count(DocumentVersion) == 2
    assert store.count(Payload) == 2
    assert [v.source_version for v in store.versions("cms", "L33979")] == ["1", "2"]
    assert store.criteria_of(second.version_id or 0).sections[0].text.endswith("photographed.")
    assert store.changes(include_baseline=False)[0].kind == "section_changed"
    assert store.changes(since=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)) == []


def test_published_versions_are_immutable_in_the_orm_and_the_database(store: Store) -> None:
    ctx = _context(store, baseline=True)
    result = publish(store, ctx, *_lcd(1, "<p>Text.</p>"))
    with pytest.raises(StoreError, match="immutable"), store.session() as session:
        version = session.get_one(DocumentVersion, result.version_id)
        version.title = "tampered"
    with pytest.raises(StoreError, match="immutable"), store.session() as session:
        session.execute(text("UPDATE document_versions SET title = 'tampered'"))
    with pytest.raises(StoreError, match="immutable"), store.session() as session:
        session.execute(text("DELETE FROM payloads"))
    assert store.versions("cms", "L33979")[0].title == "Removal of Benign Skin Lesions"


def test_a_parse_error_publishes_nothing(store: Store) -> None:
    ctx = _context(store, baseline=True)
    raw, listed = _lcd(1, "<p>Text.</p>")
    broken = RawDocument(**{**{f: getattr(raw, f) for f in raw.__slots__}, "content": b"{"})
    result = publish(store, ctx, broken, listed)
    assert result.outcome is Outcome.ERROR and "not a JSON bundle" in (result.error or "")
    assert store.count(DocumentVersion) == 0
    assert store.listing_state(ctx.source_id) == {}


def test_failed_transaction_leaves_nothing_half_written(store: Store) -> None:
    ctx = _context(store, baseline=True)
    bad_ctx = PublishContext(**{**ctx.__dict__, "run_id": 999_999})  # foreign key violation
    with pytest.raises(PublishError):
        publish(store, bad_ctx, *_lcd(1, "<p>Text.</p>"))
    assert store.count(DocumentVersion) == 0
    assert store.count(Payload) == 0


def test_runs_are_recorded_and_stale_runs_closed(store: Store) -> None:
    source = store.ensure_source("cms", "cms_coverage")
    finished = store.start_run(source.id, baseline=True)
    store.record_run_error(finished, key="L1", url="http://x", message="boom")
    store.finish_run(
        finished,
        outcome="partial",
        counts=RunCounts(listed=3, errors=1),
        error="1 failed",
        complete_baseline=True,
    )
    store.start_run(source.id, baseline=False)  # left "running", as after a kill -9
    assert store.close_stale_runs_of("cms") == 1
    [status] = store.source_statuses([("cms", "cms_coverage")])
    assert status.baseline_done
    assert status.last_run is not None and status.last_run.outcome == "failed"
    assert [e.message for e in store.run_errors(finished)] == ["boom"]


def test_source_kind_cannot_silently_change(store: Store) -> None:
    store.ensure_source("cms", "cms_coverage")
    with pytest.raises(StoreError, match="kind"):
        store.ensure_source("cms", "payer_policies")


def _publish_lcds(store: Store, ctx: PublishContext, count: int) -> list[str]:
    keys = []
    for number in range(count):
        raw, listed = _lcd(1, f"<p>Text {number}.</p>")
        key = f"L{40000 + number}"
        raw = RawDocument(**{**{f: getattr(raw, f) for f in raw.__slots__}, "key": key})
        listed = ListedDocument(**{**listed.__dict__, "key": key})
        assert publish(store, ctx, raw, listed).outcome is Outcome.NEW
        keys.append(key)
    return keys


def test_a_document_missing_twice_is_withdrawn_once(store: Store) -> None:
    ctx = _context(store, baseline=False)
    keys = _publish_lcds(store, ctx, 6)
    present = set(keys) - {keys[0]}
    first = publish_withdrawals(store, ctx, present)
    assert first.withdrawn == () and first.missing == 1
    second = publish_withdrawals(store, ctx, present)
    assert second.withdrawn == (keys[0],)
    # The listing state tells the source which documents are reported withdrawn (not probed).
    state = store.listing_state(ctx.source_id)
    assert {key for (key, _), v in state.items() if v.withdrawn} == {keys[0]}
    third = publish_withdrawals(store, ctx, present)
    assert third.withdrawn == () and third.missing == 0  # reported once, not every run
    withdrawn = [c for c in store.changes() if c.kind == "document_withdrawn"]
    assert [(c.document_id, c.severity) for c in withdrawn] == [(keys[0], "medium")]


def test_a_withdrawn_document_listed_again_is_reported_back_once(store: Store) -> None:
    ctx = _context(store, baseline=False)
    keys = _publish_lcds(store, ctx, 6)
    present = set(keys) - {keys[0]}
    publish_withdrawals(store, ctx, present)
    assert publish_withdrawals(store, ctx, present).withdrawn == (keys[0],)
    back = publish_withdrawals(store, ctx, set(keys))
    assert back.reinstated == (keys[0],) and back.withdrawn == ()
    assert publish_withdrawals(store, ctx, set(keys)).reinstated == ()  # once, not every run
    reinstated = [c for c in store.changes() if c.kind == "document_reinstated"]
    assert [(c.document_id, c.severity) for c in reinstated] == [(keys[0], "medium")]
    assert not any(v.withdrawn for v in store.listing_state(ctx.source_id).values())
    assert "reported withdrawn on" in (reinstated[0].evidence or "")


def test_a_document_missing_once_and_back_is_not_reported(store: Store) -> None:
    ctx = _context(store, baseline=False)
    keys = _publish_lcds(store, ctx, 6)
    publish_withdrawals(store, ctx, set(keys[1:]))  # missing once: not withdrawn
    assert publish_withdrawals(store, ctx, set(keys)).reinstated == ()
    assert not [c for c in store.changes() if c.kind == "document_reinstated"]


def test_a_flaky_listing_resets_the_count(store: Store) -> None:
    ctx = _context(store, baseline=False)
    keys = _publish_lcds(store, ctx, 6)
    publish_withdrawals(store, ctx, set(keys[1:]))
    publish_withdrawals(store, ctx, set(keys))  # back again
    assert publish_withdrawals(store, ctx, set(keys[1:])).withdrawn == ()


def test_a_listing_that_lost_half_its_documents_is_not_believed(store: Store) -> None:
    ctx = _context(store, baseline=False)
    keys = _publish_lcds(store, ctx, 6)
    for _ in range(3):
        check = publish_withdrawals(store, ctx, set(keys[:3]))
        assert check.skipped and "not believed" in check.skipped
        assert check.withdrawn == ()
    assert not [c for c in store.changes() if c.kind == "document_withdrawn"]
