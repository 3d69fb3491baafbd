"""Rows of list tables (a PDL's drug rows, a workbook's sheets) diffed row by row.

A row is matched by its first filled cell (a PDL's category or drug name); a row with the same
key whose other cells differ is changed. Rows identical in both, wherever they moved, are no
change. Changes are MEDIUM: a PDL row moving a drug between preferred and non-preferred, or its
criteria, is what a biller acts on.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable

from diffing.model import Change, ChangeKind, Severity, Table, TableRow

# Header words of a table that lists drugs with their status (a PDL), as opposed to a layout
# table or a code table.
_LIST_HEADER = re.compile(
    r"\b(?:preferred|non-?preferred|pdl|drug(?: name)?|brand|generic(?: name)?|status)\b",
    re.IGNORECASE,
)


def is_list_table(table: Table) -> bool:
    """Whether a table lists drugs with their status (its header names them), so its rows are
    diffed one by one."""
    return (
        bool(table.rows)
        and len(table.rows) > 1
        and bool(_LIST_HEADER.search(" ".join(table.rows[0])))
    )


def table_rows(tables: Iterable[Table]) -> tuple[TableRow, ...]:
    """The rows of the given tables as `TableRow`s, the table named by its sheet or section."""
    return tuple(
        TableRow(table=table.section or "", cells=row)
        for table in tables
        for row in table.rows
        if any(row)
    )


def _row_key(row: tuple[str, ...]) -> str:
    return next((cell for cell in row if cell), "")


def table_row_changes(
    old: Table, new: Table, *, effective_date: dt.date | None = None
) -> list[Change]:
    """Rows of one table added, removed or changed between two versions."""
    old_rows, new_rows = Counter(old.rows), Counter(new.rows)
    gone = list((old_rows - new_rows).elements())
    came = list((new_rows - old_rows).elements())
    came_by_key: dict[str, list[tuple[str, ...]]] = {}
    for row in came:
        came_by_key.setdefault(_row_key(row), []).append(row)
    field = new.section or old.section
    changes: list[Change] = []
    for row in gone:
        candidates = came_by_key.get(_row_key(row))
        if candidates:
            after = candidates.pop(0)
            changes.append(_change(ChangeKind.TABLE_ROW_CHANGED, field, row, after, effective_date))
        else:
            changes.append(_change(ChangeKind.TABLE_ROW_REMOVED, field, row, None, effective_date))
    for rows in came_by_key.values():
        for row in rows:
            changes.append(_change(ChangeKind.TABLE_ROW_ADDED, field, None, row, effective_date))
    return changes


def row_changes(
    old: Iterable[TableRow], new: Iterable[TableRow], *, effective_date: dt.date | None = None
) -> list[Change]:
    """`table_row_changes` table by table (matched by name); a table only in one version gives
    all its rows as added or removed."""
    old_tables: dict[str, list[tuple[str, ...]]] = {}
    new_tables: dict[str, list[tuple[str, ...]]] = {}
    for row in old:
        old_tables.setdefault(row.table, []).append(row.cells)
    for row in new:
        new_tables.setdefault(row.table, []).append(row.cells)
    changes: list[Change] = []
    for name in list(old_tables) + [n for n in new_tables if n not in old_tables]:
        before = Table(rows=tuple(old_tables.get(name, ())), section=name)
        after = Table(rows=tuple(new_tables.get(name, ())), section=name)
        if Counter(before.rows) != Counter(after.rows):
            changes.extend(table_row_changes(before, after, effective_date=effective_date))
    return changes


def _change(
    kind: ChangeKind,
    field: str | None,
    before: tuple[str, ...] | None,
    after: tuple[str, ...] | None,
    effective_date: dt.date | None,
) -> Change:
    def shown(row: tuple[str, ...] | None) -> str | None:
        return " | ".join(cell for cell in row if cell) if row else None

    return Change(
        kind=kind,
        severity=Severity.MEDIUM,
        field=field,
        before=shown(before),
        after=shown(after),
        evidence=shown(after or before),
        effective_date=effective_date,
    )
