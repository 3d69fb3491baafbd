"""Publishing's per-version statements (monitor.store.publishing, monitor.store.inserts), on
SQLite and on PostgreSQL: built once and cacheable, and writing what the ORM's inserts wrote:
a document, its version and criteria read back through the ORM, the one-row ON CONFLICT
text with its columns' types (aware UTC datetimes), skipping and updating like the construct."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from diffing.model import Criteria, RawDocument
from monitor.store.core import Store
from monitor.store.inserts import _one_row_statement, _statement, insert_ignoring_duplicates
from monitor.store.models.core import (
    CriteriaRow,
    Document,
    DocumentVersion,
    ListingEntry,
    Payload,
)
from monitor.store.publishing import (
    _ADD_CRITERIA,
    _ADD_DOCUMENT,
    _ADD_VERSION,
    DeferredWrites,
    add_document,
    add_version,
    load_criteria,
    load_payload,
    store_payload,
)

FETCHED = dt.datetime(2026, 11, 12, 8, 0, 0, 123456, tzinfo=dt.UTC)
PUBLISHED = dt.datetime(2026, 11, 12, 9, 30, tzinfo=dt.UTC)


def _raw(key: str, content: bytes) -> RawDocument:
    return RawDocument(
        source="cms",
        key=key,
        url=f"https://example.test/{key}",
        content=content,
        content_type="application/json",
        fetched_at=FETCHED,
        source_version="3",
        doc_type="LCD",
        title=f"Policy {key}",
    )


def test_the_statements_are_cacheable() -> None:
    """SQLAlchemy compiles a statement without a cache key on every execution."""
    for statement in (_ADD_DOCUMENT, _ADD_VERSION, _ADD_CRITERIA):
        assert statement._generate_cache_key() is not None
    columns = ("sha256", "size", "compression", "data", "text", "text_parser")
    for dialect in ("sqlite", "postgresql"):
        one_row = _one_row_statement(dialect, Payload, columns, ("sha256",), ())
        assert one_row._generate_cache_key() is not None
        assert "ON CONFLICT (sha256) DO NOTHING" in str(one_row)
    # The construct itself has none (why one row goes through the text).
    assert _statement("sqlite", Payload, columns, ("sha256",), ())._generate_cache_key() is None


@pytest.mark.parametrize("deferred", [False, True])
def test_document_version_and_criteria_read_back(store: Store, deferred: bool) -> None:
    source_id = store.ensure_source("cms", "cms_coverage").id
    run_id = store.start_run(source_id, baseline=True)
    raw = _raw("L1", b'{"a": 1}')
    criteria = Criteria(
        document_id="L1",
        doc_type="LCD",
        title="Policy L1",
        version="3",
        status="active",
        effective_date=dt.date(2026, 3, 1),
        retirement_date=None,
    )
    writes = DeferredWrites() if deferred else None
    with store.session() as txn:
        document_id = add_document(txn, source_id, raw, title="Policy L1", first_seen_at=PUBLISHED)
        store_payload(txn, raw, "ab" * 32)
        store_payload(txn, raw, "ab" * 32)  # stored once
        version_id = add_version(
            txn,
            raw,
            criteria,
            document_id=document_id,
            sha256="ab" * 32,
            version_number=3,
            title="Policy L1",
            extractor="test",
            run_id=run_id,
            published_at=PUBLISHED,
            deferred=writes,
        )
        if writes is not None:
            assert writes.criteria and writes.criteria[0]["version_id"] == version_id
            writes.write(txn)
    with store.session() as txn:
        document = txn.get_one(Document, document_id)
        assert (document.source_id, document.key, document.doc_type) == (source_id, "L1", "LCD")
        assert (document.title, document.url, document.missing_runs) == (
            "Policy L1",
            raw.url,
            0,
        )
        assert document.first_seen_at == PUBLISHED
        version = txn.get_one(DocumentVersion, version_id)
        assert version.document_id == document_id
        assert (version.source_version, version.version_number) == ("3", 3)
        assert (version.status, version.effective_date, version.retirement_date) == (
            "active",
            dt.date(2026, 3, 1),
            None,
        )
        assert (version.fetched_at, version.published_at, version.run_id) == (
            FETCHED,
            PUBLISHED,
            run_id,
        )
        assert txn.get_one(CriteriaRow, version_id).extractor == "test"
        assert load_criteria(txn, version_id) == criteria
        assert load_payload(txn, version_id) == (b'{"a": 1}', "application/json")
        assert len(txn.scalars(select(Payload.sha256)).all()) == 1


def test_one_row_upsert_keeps_types_and_updates(store: Store) -> None:
    source_id = store.ensure_source("cms", "cms_coverage").id
    keys = ["source_id", "key", "source_version"]
    update = ["fingerprint", "last_seen_at", "etag", "last_modified"]

    def row(key: str, fingerprint: str, seen: dt.datetime) -> dict[str, object]:
        return {
            "source_id": source_id,
            "key": key,
            "source_version": "1",
            "fingerprint": fingerprint,
            "last_seen_at": seen,
            "etag": None,
            "last_modified": None,
        }

    later = PUBLISHED + dt.timedelta(hours=1)
    with store.session() as txn:
        written = insert_ignoring_duplicates(
            txn, ListingEntry, [row("A", "one", PUBLISHED)], keys=keys, update=update
        )
        assert written == 1
        # Several rows (the construct), one of them conflicting, then one row (the text).
        several = [row("A", "two", later), row("B", "b", PUBLISHED)]
        assert insert_ignoring_duplicates(txn, ListingEntry, several, keys=keys, update=update)
        assert insert_ignoring_duplicates(
            txn, ListingEntry, [row("B", "b2", later)], keys=keys, update=update
        )
        # Without `update`, a conflicting row is skipped and not counted.
        assert insert_ignoring_duplicates(txn, ListingEntry, [row("B", "x", FETCHED)]) == 0
    with store.session() as txn:
        stored = {
            entry.key: (entry.fingerprint, entry.last_seen_at)
            for entry in txn.scalars(select(ListingEntry))
        }
    assert stored == {"A": ("two", later), "B": ("b2", later)}
