"""Excel PDLs: rows become a table; changed rows are changes (diffing.parse.xlsx)."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pytest

from diffing.model import ChangeKind
from diffing.parse import parse_document
from diffing.parse.xlsx import workbook_row_changes

MAINE = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "payer-pairs-2025"


def _workbook(rows: list[list[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "PDL"
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


HEADER = ["CATEGORY", "PREFERRED DRUGS", "NON-PREFERRED DRUGS"]


def test_rows_become_a_table_and_changed_rows_are_changes() -> None:
    before = parse_document(
        _workbook([HEADER, ["ANTIPSORIATICS", "ADALIMUMAB", "ETANERCEPT"], ["STATINS", "X", None]]),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    after = parse_document(
        _workbook(
            [HEADER, ["ANTIPSORIATICS", "ADALIMUMAB, ETANERCEPT", None], ["ANTIGOUT", "Y", None]]
        ),
        "application/octet-stream",
    )
    assert before.content_type == "xlsx"
    assert before.tables[0].rows[1] == ("ANTIPSORIATICS", "ADALIMUMAB", "ETANERCEPT")
    assert "ADALIMUMAB" in before.sections[0].text
    kinds = sorted(c.kind for c in workbook_row_changes(before, after))
    assert kinds == sorted(
        [ChangeKind.TABLE_ROW_CHANGED, ChangeKind.TABLE_ROW_REMOVED, ChangeKind.TABLE_ROW_ADDED]
    )
    assert workbook_row_changes(before, before) == []


@pytest.mark.slow
def test_maine_pdl_rows() -> None:
    paths = [MAINE / f"ME_me_2025-04-03_vs_2025-06-26__{side}.xlsx" for side in ("before", "after")]
    if not all(p.exists() for p in paths):
        pytest.skip(f"real Maine PDL not present at {MAINE}")
    before, after = (parse_document(p.read_bytes(), "xlsx") for p in paths)
    assert len(before.tables) == len(after.tables) >= 3
    assert sum(len(t.rows) for t in before.tables) > 3000
    changes = workbook_row_changes(before, after)
    assert 0 < len(changes) < 0.2 * sum(len(t.rows) for t in after.tables)
