"""Publishing's fast paths write what the slow ones wrote, on SQLite and on PostgreSQL:
rule rows given as `SharedRows` (a code run's shared values once) are the rows given one by
one, however they are cut and however `DeferredWrites` flushes them; a version's document,
version and payload rows inserted on the driver's cursor (`execute_on_driver`) are the rows
SQLAlchemy's execute of the same statement stores, and a driver error is still a database
error."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, bindparam, insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from test_rule_rows_nulls import PUBLISHED, _parents, _rows

import monitor.store.publishing as publishing
from monitor.store.core import Store
from monitor.store.inserts import driver_statement, execute_on_driver
from monitor.store.models.core import Document
from monitor.store.publishing import _ADD_DOCUMENT, _ADD_VERSION, DeferredWrites
from monitor.store.rules import (
    _INSERT_COLUMNS,
    _OWN,
    RuleValues,
    SharedRows,
    insert_rule_values,
    rule_count,
    rule_values,
)

# The hypothesis tests share one store across examples: each example's writes are rolled back.
_SHARED_STORE = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


_PARENTS: dict[int, dict[str, int]] = {}


def _ids(store: Store) -> dict[str, int]:
    """`_parents` once per store (hypothesis runs a test's examples on one store)."""
    if id(store) not in _PARENTS:
        _PARENTS.clear()
        _PARENTS[id(store)] = _parents(store)
    return _PARENTS[id(store)]


def _stored(session: Session, table: str, columns: Sequence[str]) -> list[tuple[object, ...]]:
    """The rows of `table` in id order, each value with its SQLite storage class (on
    PostgreSQL the values as read; ids differ there, a rolled-back sequence does not go back)."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    shown = ", ".join(f"{c}, typeof({c})" if sqlite else c for c in columns)
    return [tuple(r) for r in session.execute(text(f"SELECT {shown} FROM {table} ORDER BY id"))]


def _rolled_back(store: Store, write: Any) -> list[tuple[object, ...]]:
    """The rule rows `write(session)` stores, read in its transaction, which is rolled back."""
    with Session(store.engine) as session:
        write(session)
        stored = _stored(session, "rule_rows", _INSERT_COLUMNS)
        session.rollback()
    return stored


def _expanded(parts: Sequence[RuleValues | SharedRows]) -> list[RuleValues]:
    rows: list[RuleValues] = []
    for part in parts:
        if isinstance(part, SharedRows):
            rows += [(*part.shared, *own) for own in part.own]
        else:
            rows.append(part)
    return rows


def _run(base: RuleValues, count: int, prefix: str, *, group: object = 1) -> SharedRows:
    return SharedRows(
        shared=base[:-_OWN],
        own=[(f"{prefix} text {n} é", f"{prefix}{n:04d}", group) for n in range(count)],
    )


def _parts(
    values: list[RuleValues], sizes: Sequence[int], facts_between: Sequence[int]
) -> list[RuleValues | SharedRows]:
    """Runs of `sizes` rows (alike but for their own columns, some sharing NULLs, some equal
    to their neighbour's shared values) with slices of `values` (one by one) between them."""
    code, retired = values[0], values[6]  # a code row; one retired (shared values differ)
    parts: list[RuleValues | SharedRows] = []
    for n, size in enumerate(sizes):
        parts.append(_run(code if n % 3 else retired, size, f"C{n}", group=None if n % 2 else n))
        cut = facts_between[n % len(facts_between)] if facts_between else 0
        parts += values[8 : 8 + cut]  # fact rows and short code runs, one by one
    return parts


@pytest.mark.parametrize(
    "sizes",
    [[1], [7], [8], [9], [255, 256, 257], [600, 600], [3, 8, 1, 77, 512, 0]],
)
def test_shared_rows_are_stored_as_the_same_rows_one_by_one(store: Store, sizes: list[int]) -> None:
    ids = _parents(store)
    with Session(store.engine) as session:
        values = rule_values(session, _rows(), version_number=1, published_at=PUBLISHED, **ids)
    parts = _parts(values, sizes, [0, 3, len(values)])
    rows = _expanded(parts)
    assert rule_count(parts) == len(rows)

    def fast(session: Session) -> None:
        assert insert_rule_values(session, parts) == len(rows)

    def plain(session: Session) -> None:
        assert insert_rule_values(session, rows) == len(rows)

    stored = _rolled_back(store, fast)
    assert len(stored) == len(rows)
    assert stored == _rolled_back(store, plain)


@settings(max_examples=40, suppress_health_check=_SHARED_STORE)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=300), max_size=6),
    facts_between=st.lists(st.integers(min_value=0, max_value=12), max_size=4),
    flush_at=st.integers(min_value=1, max_value=700),
    cuts=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=5),
)
def test_deferred_rule_rows_are_the_rows_written_at_once(
    sqlite_store: Store,
    sizes: list[int],
    facts_between: list[int],
    flush_at: int,
    cuts: list[int],
) -> None:
    """However a batch's parts arrive (`cuts`: parts per version) and wherever
    `DeferredWrites` writes them (`flush_at`: its `RULES_AT_ONCE`), the rows are those of one
    insert of them all, in the same order."""
    store = sqlite_store
    ids = _ids(store)
    with Session(store.engine) as session:
        values = rule_values(session, _rows(), version_number=1, published_at=PUBLISHED, **ids)
    parts = _parts(values, sizes, facts_between)

    def deferred(session: Session) -> None:
        writes = DeferredWrites()
        start, n = 0, 0
        while start < len(parts):
            cut = cuts[n % len(cuts)]
            writes.add_rules(session, parts[start : start + cut])
            start, n = start + cut, n + 1
        writes.write(session)
        assert (writes.rules, writes.rule_rows) == ([], 0)

    def at_once(session: Session) -> None:
        insert_rule_values(session, _expanded(parts))

    original = publishing.RULES_AT_ONCE
    publishing.RULES_AT_ONCE = flush_at
    try:
        stored = _rolled_back(store, deferred)
    finally:
        publishing.RULES_AT_ONCE = original
    assert stored == _rolled_back(store, at_once)


_MOMENTS = st.datetimes(
    min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2200, 1, 1)
).flatmap(
    lambda moment: st.sampled_from(
        [
            moment,  # naive: taken as UTC, as SQLAlchemy's path takes it
            moment.replace(tzinfo=dt.UTC),
            moment.replace(tzinfo=ZoneInfo("America/New_York")),
            moment.replace(tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        ]
    )
)
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@settings(max_examples=25, suppress_health_check=_SHARED_STORE)
@given(
    fetched=_MOMENTS,
    published=_MOMENTS,
    effective=st.none() | st.dates(min_value=dt.date(1, 1, 1)),
    retired=st.none() | st.dates(max_value=dt.date(9999, 12, 31)),
    title=_TEXT,
    version_number=st.none() | st.integers(min_value=-(2**31), max_value=2**31 - 1),
)
def test_the_driver_stores_a_version_as_sqlalchemy_does(
    store: Store,
    fetched: dt.datetime,
    published: dt.datetime,
    effective: dt.date | None,
    retired: dt.date | None,
    title: str,
    version_number: int | None,
) -> None:
    ids = _ids(store)
    with Session(store.engine) as session:
        run_id = session.execute(text("SELECT max(id) FROM source_runs")).scalar_one()
        sha256 = session.execute(text("SELECT min(sha256) FROM payloads")).scalar_one()
    document = {
        "source_id": ids["source_id"],
        "key": title[:200],
        "doc_type": "LCD",
        "title": title,
        "url": f"https://example.org/{title}",
        "first_seen_at": fetched,
        "missing_runs": 0,
    }
    version = {
        "source_version": title[:100],
        "version_number": version_number,
        "content_sha256": sha256,
        "content_type": "application/json",
        "title": title,
        "status": "active",
        "effective_date": effective,
        "retirement_date": retired,
        "url": "https://example.org/v",
        "fetched_at": fetched,
        "published_at": published,
        "run_id": run_id,
    }

    def stored(on_driver: bool) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        with Session(store.engine) as session:
            connection = session.connection()
            if on_driver:
                ((document_id,),) = execute_on_driver(connection, _ADD_DOCUMENT, document)
                row = {**version, "document_id": document_id}
                ((version_id,),) = execute_on_driver(connection, _ADD_VERSION, row)
            else:
                document_id = connection.execute(_ADD_DOCUMENT, document).scalar_one()
                row = {**version, "document_id": document_id}
                version_id = connection.execute(_ADD_VERSION, row).scalar_one()
            assert isinstance(document_id, int) and isinstance(version_id, int)
            documents = _stored(session, "documents", [*document, "withdrawn_at"])
            versions = _stored(session, "document_versions", list(version))
            session.rollback()
        return documents, versions

    assert stored(on_driver=True) == stored(on_driver=False)


def test_a_statement_leaving_a_default_to_sqlalchemy_is_refused(store: Store) -> None:
    table = cast(Table, Document.__table__)
    columns = ("source_id", "key", "doc_type", "title", "url", "first_seen_at")
    statement = insert(table).values({name: bindparam(name) for name in columns})
    with pytest.raises(ValueError, match="missing_runs"):
        driver_statement(statement, store.engine.dialect)


def test_a_driver_error_is_a_database_error(store: Store) -> None:
    ids = _parents(store)
    version = {
        "document_id": ids["document_id"] + 1000,  # no such document
        "source_version": "1",
        "version_number": 1,
        "content_sha256": "0" * 64,  # no such payload
        "content_type": "text/html",
        "title": "t",
        "status": "active",
        "effective_date": None,
        "retirement_date": None,
        "url": "https://example.org/v",
        "fetched_at": PUBLISHED,
        "published_at": PUBLISHED,
        "run_id": None,
    }
    with Session(store.engine) as session, pytest.raises(IntegrityError):
        execute_on_driver(session.connection(), _ADD_VERSION, version)
