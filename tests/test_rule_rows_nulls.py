"""Rule rows written on SQLite with NULL in the statement (`monitor.store.rules._insert_sqlite`)
are stored exactly as binding every value would store them: same rows, same order, same
storage classes (NULL stays NULL; 0, 0.0, False and "" stay values), and a driver error is
still a database error of the publishing transaction."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
from pathlib import Path

import pytest
from sqlalchemy import text

from diffing.model import Criteria, RawDocument
from diffing.rules import RuleKind, RuleRow
from monitor.errors import StoreError
from monitor.store.core import Store, utcnow
from monitor.store.models.rules import RuleRowModel
from monitor.store.publishing import add_document, add_version, store_payload
from monitor.store.rules import _INSERT_COLUMNS, insert_rule_values, rule_values

PUBLISHED = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)


def _rows() -> list[RuleRow]:
    """Rows NULL in many different sets of columns, in runs and alone, with falsy values
    that are not NULL."""
    code = RuleRow(
        kind=RuleKind.COVERED_CODE,
        payer="Novitas",
        document="A1",
        version="1",
        effective_from=dt.date(2026, 1, 1),
        retired_on=None,
        text="dx",
        code_system="icd10",
        code="L82.0",
        code_group=1,
        evidence_section="icd10_covered",
    )
    rows = [dataclasses.replace(code, code=f"L{n:03d}", text=f"dx {n}") for n in range(5)]
    rows.append(dataclasses.replace(code, code="L999", code_group=None))  # group NULL alone
    rows += [
        dataclasses.replace(code, retired_on=dt.date(2026, 6, 1), code=f"R{n}") for n in range(3)
    ]
    fact = RuleRow(
        kind=RuleKind.STEP_THERAPY,
        payer="Acme",
        document="/p.pdf",
        version=None,
        effective_from=None,
        retired_on=None,
        text="tried a TCS",
        drug="dupilumab",
        subject="topical corticosteroid",
        days=56,
        count=1,
        evidence="Patient has tried a TCS for at least 8 weeks.",
        evidence_page=2,
    )
    rows += [
        fact,
        dataclasses.replace(fact, evidence="another sentence", evidence_page=None),
        dataclasses.replace(fact, days=0, count=0, subject="", evidence=""),  # falsy, not NULL
        RuleRow(
            kind=RuleKind.AGE_LIMIT,
            payer="Acme",
            document="/p.pdf",
            version=None,
            effective_from=dt.date(2026, 2, 1),
            retired_on=None,
            text="18 or older",
            op=">=",
            value=0.0,
            required=False,
            branch="initial",
            tree_path="x/initial/all[1]",
        ),
        RuleRow(
            kind=RuleKind.PRIOR_AUTH,
            payer="Acme",
            document="/p.pdf",
            version=None,
            effective_from=None,
            retired_on=None,
            text="PA required",
            required=True,
        ),
    ]
    rows += [dataclasses.replace(code, code=f"Z{n}") for n in range(4)]  # codes again
    return rows


def _parents(store: Store) -> dict[str, int]:
    """A source, run, document and version for the rows' foreign keys."""
    source = store.ensure_source("s", "cms_coverage").id
    run = store.start_run(source, baseline=True)
    raw = RawDocument(
        source="s",
        key="A1",
        url="https://example.org/a1",
        content=b"{}",
        content_type="application/json",
        fetched_at=utcnow(),
        source_version="1",
        doc_type="Article",
    )
    sha256 = hashlib.sha256(raw.content).hexdigest()
    with store.session() as txn:
        store_payload(txn, raw, sha256)
        document = add_document(txn, source, raw, title="t", first_seen_at=PUBLISHED)
        version = add_version(
            txn,
            raw,
            Criteria(document_id="A1", doc_type="Article", title="t", version="1", status="x"),
            document_id=document,
            sha256=sha256,
            version_number=1,
            title="t",
            extractor="x",
            run_id=run,
            published_at=PUBLISHED,
        )
    return {"version_id": version, "document_id": document, "source_id": source}


def _stored(store: Store) -> list[tuple[object, ...]]:
    columns = ", ".join(f"{name}, typeof({name})" for name in ("id", *_INSERT_COLUMNS))
    with store.engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(text(f"SELECT {columns} FROM rule_rows ORDER BY id"))
        ]


def _write(store: Store, *, plain: bool) -> None:
    """The rows with `insert_rule_values`, or (`plain`) with the one statement binding every
    value that it used before (the reference)."""
    ids = _parents(store)
    with store.session() as txn:
        values = rule_values(txn, _rows(), version_number=1, published_at=PUBLISHED, **ids)
        # Split as a batch does (`DeferredWrites.add_rules`): runs continue across calls.
        chunks = [values[:7], values[7:8], values[8:]] if not plain else [values]
        for chunk in chunks:
            if plain:
                sql = (
                    f"INSERT INTO {RuleRowModel.__tablename__} ({', '.join(_INSERT_COLUMNS)}) "
                    f"VALUES ({', '.join(['?'] * len(_INSERT_COLUMNS))})"
                )
                txn.connection().exec_driver_sql(sql, list(chunk))
            else:
                assert insert_rule_values(txn, chunk) == len(chunk)


def test_rows_are_stored_as_binding_every_value_stores_them(tmp_path: Path) -> None:
    fast, plain = (Store.open(f"sqlite:///{tmp_path / name}.db") for name in ("fast", "plain"))
    try:
        _write(fast, plain=False)
        _write(plain, plain=True)
        stored, reference = _stored(fast), _stored(plain)
    finally:
        fast.close()
        plain.close()
    assert stored == reference
    assert len(stored) == len(_rows())
    # The reference really holds NULLs and falsy values side by side.
    kinds = {value for row in reference for value in row[1::2]}
    assert {"null", "integer", "real", "text"} <= kinds
    falsy = [row for row in reference if row[2 * _INSERT_COLUMNS.index("days") + 2] == 0]
    assert falsy and falsy[0][2 * _INSERT_COLUMNS.index("subject") + 2] == ""


def test_a_driver_error_is_a_database_error_and_rolls_back(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'e.db'}")
    try:
        ids = _parents(store)
        with pytest.raises(StoreError, match="FOREIGN KEY"), store.session() as txn:
            values = rule_values(txn, _rows(), version_number=1, published_at=PUBLISHED, **ids)
            bad = rule_values(
                txn,
                _rows()[:2],
                version_number=1,
                published_at=PUBLISHED,
                **{**ids, "version_id": ids["version_id"] + 1000},
            )
            insert_rule_values(txn, list(itertools.chain(values, bad)))
        assert _stored(store) == []
    finally:
        store.close()
