"""Real CMS report rows (shared/realdata, when present) through the parsing the source uses."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from diffing.cms import cms_criteria, contractor_names, display_id, make_bundle, parse_cms_date

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "mackgraw-cms-lcd-lca"
REPORT_CSV = REALDATA / "documents_latest.2025-08-17.17705dd.csv"


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    if not REPORT_CSV.exists():
        pytest.skip(f"real data not present at {REPORT_CSV}")
    with REPORT_CSV.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_real_row_gives_its_display_id_dates_and_contractors(
    rows: list[dict[str, str]],
) -> None:
    assert len(rows) == 3133
    for row in rows:
        doc_type = row["document_type"]
        assert doc_type in ("LCD", "Article")
        assert display_id(doc_type, row) == row["document_display_id"]
        parse_cms_date(row["effective_date"])
        parse_cms_date(row["retirement_date"])
        assert contractor_names(row["contractor_name_type"]), row["document_display_id"]


def test_real_rows_become_criteria_with_the_right_status(rows: list[dict[str, str]]) -> None:
    statuses: dict[str, int] = {}
    for row in rows:
        bundle = make_bundle(
            doc_type=row["document_type"], report=row, detail={"title": row["title"]}, tables={}
        )
        criteria = cms_criteria(bundle)
        statuses[criteria.status] = statuses.get(criteria.status, 0) + 1
        if row["note"] == "Retired":
            assert criteria.status == "retired"
        if row["note"].startswith("Future(Notice Ends"):
            assert criteria.notice_end_date is not None
    assert statuses["retired"] == sum(r["note"] == "Retired" for r in rows) == 94


def test_the_same_document_can_be_listed_in_two_versions(rows: list[dict[str, str]]) -> None:
    keys = [(r["document_display_id"], r["document_version"]) for r in rows]
    assert len(set(keys)) == len(keys)  # (id, version) is the key ...
    ids = [r["document_display_id"] for r in rows]
    assert len(set(ids)) < len(ids)  # ... because ids alone repeat (current + future)
