"""Change ids follow the order the changes were given in (the change feed's order), on SQLite
(several rows in one statement, ids read back in order) and on PostgreSQL (RETURNING)."""

from __future__ import annotations

import datetime as dt
from typing import cast

import pytest
from sqlalchemy import Table, event, insert, select, text

from diffing.model import Change, ChangeKind, Criteria, RawDocument, Severity
from monitor.store.core import Store
from monitor.store.inserts import insert_ids_in_order
from monitor.store.models.core import ChangeRow
from monitor.store.models.rules import ChecklistModel
from monitor.store.publishing import (
    ChangeOrigin,
    add_document,
    add_version,
    change_rows,
    insert_change_rows,
    store_payload,
)

WHEN = dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC)


def _origin(store: Store) -> ChangeOrigin:
    source_id = store.ensure_source("cms", "cms_coverage").id
    run_id = store.start_run(source_id, baseline=False)
    raw = RawDocument(
        source="cms",
        key="L1",
        url="https://example.test/L1",
        content=b"{}",
        content_type="application/json",
        fetched_at=WHEN,
        source_version="1",
    )
    criteria = Criteria(document_id="L1", doc_type="LCD", title="L1", version="1", status="active")
    with store.session() as txn:
        document_id = add_document(txn, source_id, raw, title="L1", first_seen_at=WHEN)
        store_payload(txn, raw, "cd" * 32)
        version_id = add_version(
            txn,
            raw,
            criteria,
            document_id=document_id,
            sha256="cd" * 32,
            version_number=1,
            title="L1",
            extractor="test",
            run_id=run_id,
            published_at=WHEN,
        )
    return ChangeOrigin(
        source_id=source_id,
        document_id=document_id,
        version_id=version_id,
        previous_version_id=None,
        run_id=run_id,
        baseline=False,
        detected_at=WHEN,
    )


def _changes(n: int, first: int = 0) -> list[Change]:
    return [
        Change(
            kind=ChangeKind.CODE_ADDED,
            field=f"code {first + i:03d}",
            before=None,
            after=f"J{first + i:04d}",
            severity=Severity.HIGH,
        )
        for i in range(n)
    ]


def _fields_by_id(store: Store) -> list[tuple[int, str | None]]:
    with store.session() as txn:
        found = txn.execute(select(ChangeRow.id, ChangeRow.field).order_by(ChangeRow.id))
        return [(row.id, row.field) for row in found]


@pytest.mark.parametrize("count", [1, 2, 40])
def test_change_ids_follow_the_order_given(store: Store, count: int) -> None:
    origin = _origin(store)
    with store.session() as txn:
        earlier = insert_change_rows(txn, change_rows(_changes(3, first=900), origin))
    with store.session() as txn:
        ids = insert_change_rows(txn, change_rows(_changes(count), origin))
    assert ids == sorted(ids) and len(set(ids)) == count and ids[0] > max(earlier)
    rows = dict(_fields_by_id(store))
    assert [rows[i] for i in ids] == [f"code {i:03d}" for i in range(count)]
    with store.session() as txn:
        announced = txn.execute(text("SELECT change_id FROM outbox_events ORDER BY id")).scalars()
        assert list(announced) == [*earlier, *ids]


def test_sqlite_inserts_several_changes_in_one_statement(sqlite_store: Store) -> None:
    """SQLite only: PostgreSQL returns the ids in the order of the rows itself."""
    store = sqlite_store
    origin = _origin(store)
    inserts: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO CHANGES"):
            inserts.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        with store.session() as txn:
            ids = insert_change_rows(txn, change_rows(_changes(50), origin))
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert len(ids) == 50
    assert len(inserts) == 1  # one executemany, not one statement per row


def test_sqlite_near_the_largest_rowid_keeps_the_order_the_slow_way(sqlite_store: Store) -> None:
    store = sqlite_store
    origin = _origin(store)
    largest = 2**63 - 1
    with store.session() as txn:  # a row near the end (rows are immutable: inserted so)
        (row,) = change_rows(_changes(1, first=500), origin)
        txn.execute(insert(cast(Table, ChangeRow.__table__)), [{**row, "id": largest - 3}])
    with store.session() as txn:
        ids = insert_change_rows(txn, change_rows(_changes(5), origin))
    rows = dict(_fields_by_id(store))
    # Past the largest rowid SQLite picks free ids at random: still each id names its row.
    assert [rows[i] for i in ids] == [f"code {i:03d}" for i in range(5)]


def test_checklist_identities_get_their_ids_in_order(store: Store) -> None:
    origin = _origin(store)
    table = cast(Table, ChecklistModel.__table__)
    rows = [
        {
            "source_id": origin.source_id,
            "document_id": origin.document_id,
            "subject": f"drug {i:02d}",
            "subject_kind": "drug",
            "payer": "Bench Health",
            "label": f"Drug {i:02d}",
            "created_at": WHEN,
        }
        for i in range(12)
    ]
    with store.session() as txn:
        ids = insert_ids_in_order(txn.connection(), table, rows)
    with store.session() as txn:
        found = txn.execute(select(table.c.id, table.c.subject))
        subjects = {row.id: row.subject for row in found}
    assert [subjects[i] for i in ids] == [f"drug {i:02d}" for i in range(12)]
    assert ids == sorted(ids)
