"""Rows of list tables (a PDL's drug rows, a workbook's sheets) diffed row by row.

A row is matched by its first filled cell that names something (a PDL's category or drug name;
flag cells such as "B"/"G", a comment number or a status "P"/"NR" come before it in some PDLs);
a row with the same key whose other cells differ is changed. Rows identical in both, wherever
they moved, are no change. Changes are MEDIUM: a PDL row moving a drug between preferred and
non-preferred, or its criteria, is what a biller acts on.

A PDL is known by its header ("Preferred", "Drug name" …) or, when the header names neither
(a legend such as "P, N, R or NR") or the table is a continuation without one, by a status
column: most of its cells are PDL statuses, preferred and non-preferred both present. In such
a table only the rows with a status are drug rows; the repeated page headers and the category
headings between them are layout, and their count follows pagination. Link targets (a PA
form's URL) are not row content: a renamed form file is not a changed row.
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


# A PDL status as a status column writes it.
_STATUS = re.compile(
    r"(?:P|N|R|NR|NP|PA|Preferred|Non-?Preferred|Recommended|Non-?Recommended)", re.IGNORECASE
)
_PREFERRED = frozenset({"p", "preferred", "r", "recommended"})
_STATUS_SHARE = 0.8  # of a column's filled cells
_MIN_STATUS_ROWS = 5
# A cell that is only a link target, as a PDF table cell holds it (wrapped lines joined by a
# space): "https://…/pa-forms/x-pa-form- npi.pdf".
_LINK_CELL = re.compile(r"(?:https?://|www\.)\S*(?:\s+\S+)*", re.IGNORECASE)
# Cells before the name in a PDL row: a brand/generic/OTC flag, a comment number, a status.
_FLAG_CELL = re.compile(r"[A-Z]{1,2}|\d{1,4}|[A-Z](?:,\s*[A-Z])+")


def is_link_cell(cell: str) -> bool:
    """Whether a table cell holds only a link target (a PA form's URL)."""
    return bool(_LINK_CELL.fullmatch(cell))


def is_list_table(table: Table) -> bool:
    """Whether a table lists drugs with their status (its header names them, or it has a
    status column), so its rows are diffed one by one."""
    if not table.rows or len(table.rows) < 2:
        return False
    return bool(_LIST_HEADER.search(" ".join(table.rows[0]))) or status_column(table) is not None


def status_column(table: Table) -> int | None:
    """The column whose filled cells are mostly PDL statuses ("P", "N", "NR", "Preferred" …,
    preferred and non-preferred both present), or None."""
    width = max((len(row) for row in table.rows), default=0)
    header = table.rows[0] if table.rows else ()
    body = [row for row in table.rows if row != header]  # the header and its page repeats
    for column in range(width):
        values = [row[column] for row in body if column < len(row) and row[column]]
        statuses = [v.lower() for v in values if _STATUS.fullmatch(v)]
        if (
            len(statuses) >= _MIN_STATUS_ROWS
            and len(statuses) >= _STATUS_SHARE * len(values)
            and _PREFERRED & set(statuses)
            and set(statuses) - _PREFERRED
        ):
            return column
    return None


def table_rows(tables: Iterable[Table]) -> tuple[TableRow, ...]:
    """The rows of the given tables as `TableRow`s, the table named by its sheet or section.
    In a table with a status column only the rows with a status; link cells emptied."""
    out: list[TableRow] = []
    for table in tables:
        column = status_column(table)
        for row in table.rows:
            if column is not None and not (column < len(row) and _STATUS.fullmatch(row[column])):
                continue
            cells = tuple("" if is_link_cell(cell) else cell for cell in row)
            if any(cells):
                out.append(TableRow(table=table.section or "", cells=cells))
    return tuple(out)


def _row_key(row: tuple[str, ...]) -> str:
    """The first filled cell that is not a flag, else the first filled cell."""
    filled = [cell for cell in row if cell]
    return next(
        (cell for cell in filled if not _FLAG_CELL.fullmatch(cell)), filled[0] if filled else ""
    )


def table_row_changes(
    old: Table, new: Table, *, effective_date: dt.date | None = None
) -> list[Change]:
    """Rows of one table added, removed or changed between two versions. Rows are compared
    without case or spacing differences ("trulance" re-typed "Trulance" is the same row)."""
    old_rows = Counter(_folded(row) for row in old.rows)
    new_rows = Counter(_folded(row) for row in new.rows)
    gone = _originals(old.rows, old_rows - new_rows)
    came = _originals(new.rows, new_rows - old_rows)
    came_by_key: dict[str, list[tuple[str, ...]]] = {}
    for row in came:
        came_by_key.setdefault(_row_key(row).casefold(), []).append(row)
    field = new.section or old.section
    changes: list[Change] = []
    for row in gone:
        candidates = came_by_key.get(_row_key(row).casefold())
        if candidates:
            after = candidates.pop(0)
            changes.append(_change(ChangeKind.TABLE_ROW_CHANGED, field, row, after, effective_date))
        else:
            changes.append(_change(ChangeKind.TABLE_ROW_REMOVED, field, row, None, effective_date))
    for rows in came_by_key.values():
        for row in rows:
            changes.append(_change(ChangeKind.TABLE_ROW_ADDED, field, None, row, effective_date))
    return changes


def _folded(row: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(" ".join(cell.split()).casefold() for cell in row)


def _originals(
    rows: Iterable[tuple[str, ...]], wanted: Counter[tuple[str, ...]]
) -> list[tuple[str, ...]]:
    """The rows (as written, in order) whose folded form `wanted` counts."""
    left = Counter(wanted)
    out: list[tuple[str, ...]] = []
    for row in rows:
        folded = _folded(row)
        if left[folded] > 0:
            left[folded] -= 1
            out.append(row)
    return out


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
        if Counter(map(_folded, before.rows)) != Counter(map(_folded, after.rows)):
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
