"""Rule rows written on SQLite several to a statement (`monitor.store.rules._insert_sqlite`)
are the rows one statement per row writes: same values, same storage classes, same order,
for runs shorter than a statement, exactly a statement, and statements plus a remainder."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from test_rule_rows_nulls import PUBLISHED, _parents, _rows, _stored

from diffing.rules import RuleRow
from monitor.store.core import Store
from monitor.store.models.rules import RuleRowModel
from monitor.store.rules import (
    _INSERT_COLUMNS,
    _MAX_BOUND_VALUES,
    _runs_by_nulls,
    _sharing_statement,
    _sqlite_statement,
    insert_rule_values,
    rule_values,
)


def _many(count: int, **changes: object) -> list[RuleRow]:
    code = dataclasses.replace(_rows()[0], **changes)  # type: ignore[arg-type]
    return [
        dataclasses.replace(code, code=f"C{n:05d}", text=f"code {n}", code_group=n % 3 or None)
        for n in range(count)
    ]


def _write(store: Store, rows: list[RuleRow], *, plain: bool) -> list[int]:
    """Write `rows`; returns how many rows each statement inserts, per run (fast path)."""
    ids = _parents(store)
    with store.session() as txn:
        values = rule_values(txn, rows, version_number=1, published_at=PUBLISHED, **ids)
        if plain:
            sql = (
                f"INSERT INTO {RuleRowModel.__tablename__} ({', '.join(_INSERT_COLUMNS)}) "
                f"VALUES ({', '.join(['?'] * len(_INSERT_COLUMNS))})"
            )
            txn.connection().exec_driver_sql(sql, list(values))
            return []
        assert insert_rule_values(txn, values) == len(values)
        return [
            _sqlite_statement(nulls, _MAX_BOUND_VALUES)[2] for nulls, _run in _runs_by_nulls(values)
        ]


# Code rows alike but for their own columns share their values in statements of 256, 128 …
# rows (fewer than 8 go 76 to a statement, as rows NULL in the same columns): runs of every
# such size and remainders.
@pytest.mark.parametrize("count", [1, 7, 8, 75, 76, 77, 152, 200, 600])
def test_long_runs_are_stored_as_one_row_a_statement_stores_them(
    tmp_path: Path, count: int
) -> None:
    rows = [
        *_many(count),
        *_rows(),  # short runs of other shapes between the long ones
        *_many(count + 1, retired_on=PUBLISHED.date(), evidence_section=None),
    ]
    fast, plain = (Store.open(f"sqlite:///{tmp_path / name}.db") for name in ("fast", "plain"))
    try:
        per_statement = _write(fast, rows, plain=False)
        _write(plain, rows, plain=True)
        stored, reference = _stored(fast), _stored(plain)
    finally:
        fast.close()
        plain.close()
    assert per_statement[0] == 76
    assert len(reference) == len(rows)
    assert stored == reference


def test_a_sharing_statement_binds_the_shared_values_once_and_each_rows_own() -> None:
    shared = len(_INSERT_COLUMNS) - 3
    for nulls in [(), (8, 9, 10), tuple(range(8, 20))]:
        for rows in (1, 2, 256):
            sql = _sharing_statement(nulls, rows)
            numbers = [int(n) for n in re.findall(r"\?(\d+)", sql)]
            assert max(numbers) == shared - len(nulls) + 3 * rows <= _MAX_BOUND_VALUES
            assert len(numbers) == rows * (len(_INSERT_COLUMNS) - len(nulls))
            assert sql.count("NULL") == rows * len(nulls)


def test_a_statement_binds_at_most_the_limit() -> None:
    for nulls in [(), (8, 9, 10), tuple(range(8, 20))]:
        sql, _kept, rows = _sqlite_statement(nulls, _MAX_BOUND_VALUES)
        assert sql.count("?") <= _MAX_BOUND_VALUES
        assert sql.count("?") == rows * (len(_INSERT_COLUMNS) - len(nulls))
        assert sql.count("(") == rows + 1  # the column list, then one per row
        one, _kept, single = _sqlite_statement(nulls, 0)
        assert single == 1 and one.count("?") == len(_INSERT_COLUMNS) - len(nulls)
