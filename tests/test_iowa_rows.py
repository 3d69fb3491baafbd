"""PDL grids whose header names no drug or status (a legend "P, N, R or NR"), continued on later
pages without a header, with flag cells before the drug name and a PA-form link after it: the
layout of the Iowa PDL (issue 13). The grid here is invented; no payer text."""

from __future__ import annotations

from collections import Counter

from diffing.model import ChangeKind, Table
from diffing.rows import is_list_table, row_changes, status_column, table_row_changes, table_rows

HEADER = ("B, G or O", "Comment", "P, N, R or NR", "Therapeutic Category", "PA Form Link")
LINK_OLD = "https://pdl.example.org/forms/widget-pa-form- jan25.pdf"
LINK_NEW = "https://pdl.example.org/forms/widget-pa-form- npi.pdf"


def _grid(*rows: tuple[str, ...]) -> Table:
    return Table(rows=(HEADER, ("PDL Categories", "", "", "", ""), *rows), page=4, section="pdl")


OLD = _grid(
    ("Widget Blockers", "", "", "", ""),
    ("B", "", "N", "ZORBLEX", ""),
    ("G", "", "P", "Zorbatinib", ""),
    ("B", "11", "N", "Quelvora", LINK_OLD),
    ("B", "", "P", "Fendrax HFA", ""),
    ("B", "", "N", "plonzadine", ""),
    ("Widget Openers", "", "", "", ""),
    ("G", "", "P", "Mirbatol", ""),
)
NEW = _grid(
    ("Widget Blockers", "", "", "", ""),
    ("B", "", "N", "ZORBLEX", ""),
    ("G", "", "P", "Zorbatinib", ""),
    ("B", "11", "P", "Quelvora", LINK_NEW),  # non-preferred -> preferred, link renamed
    ("B", "", "N", "Plonzadine", ""),  # re-typed in another case only
    # a page break repeats the header and the category heading
    HEADER,
    ("PDL Categories", "", "", "", ""),
    ("Widget Blockers", "", "", "", ""),
    ("B", "12", "N", "Trevamid oral solution", LINK_NEW),  # new row
    ("Widget Openers", "", "", "", ""),
    ("G", "", "P", "Mirbatol", ""),
)


def test_a_grid_is_a_pdl_by_its_status_column_even_without_a_header() -> None:
    assert status_column(OLD) == 2
    assert is_list_table(OLD)
    continuation = Table(rows=OLD.rows[3:], page=5)  # no header row at all
    assert is_list_table(continuation)


def test_a_yes_no_column_or_a_layout_table_is_no_status_column() -> None:
    yes_no = Table(rows=(("Code", "PA"), *((f"J{i:04d}", "Y" if i % 3 else "N") for i in range(9))))
    assert status_column(yes_no) is None
    only_preferred = Table(rows=tuple(("x", "P", f"drug {i}") for i in range(9)))
    assert status_column(only_preferred) is None  # a status column names both kinds


def test_only_drug_rows_are_kept_and_links_are_not_row_content() -> None:
    rows = table_rows([NEW])
    assert [row.cells[3] for row in rows] == [
        "ZORBLEX",
        "Zorbatinib",
        "Quelvora",
        "Plonzadine",
        "Trevamid oral solution",
        "Mirbatol",
    ]
    assert all(row.cells[4] == "" for row in rows)


def test_status_change_new_row_and_removed_row_keyed_by_the_drug_name() -> None:
    changes = row_changes(table_rows([OLD]), table_rows([NEW]))
    by_kind = Counter(c.kind for c in changes)
    assert by_kind == {
        ChangeKind.TABLE_ROW_CHANGED: 1,
        ChangeKind.TABLE_ROW_ADDED: 1,
        ChangeKind.TABLE_ROW_REMOVED: 1,
    }
    changed = next(c for c in changes if c.kind is ChangeKind.TABLE_ROW_CHANGED)
    assert (changed.before, changed.after) == ("B | 11 | N | Quelvora", "B | 11 | P | Quelvora")
    added = next(c for c in changes if c.kind is ChangeKind.TABLE_ROW_ADDED)
    assert added.after == "B | 12 | N | Trevamid oral solution"
    removed = next(c for c in changes if c.kind is ChangeKind.TABLE_ROW_REMOVED)
    assert removed.before == "B | P | Fendrax HFA"


def test_rows_with_flags_first_are_matched_by_name_not_by_the_flag() -> None:
    old = Table(rows=(("B", "", "N", "Alpha"), ("B", "", "N", "Beta")), section="s")
    new = Table(rows=(("B", "", "N", "Alpha"), ("B", "", "P", "Gamma")), section="s")
    kinds = sorted(c.kind.value for c in table_row_changes(old, new))
    # "B" is a flag: Beta gone and Gamma new, not Beta "changed" into Gamma.
    assert kinds == ["table_row_added", "table_row_removed"]


def test_a_re_print_of_the_same_grid_reports_nothing() -> None:
    reflowed = _grid(*OLD.rows[2:5], HEADER, ("PDL Categories", "", "", "", ""), *OLD.rows[5:])
    assert row_changes(table_rows([OLD]), table_rows([reflowed])) == []
