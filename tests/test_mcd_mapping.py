"""MCD export rows to API-shaped bundles (`diffing.mcd`): headers, notes, contractors, tables."""

from __future__ import annotations

import json

from diffing.cms import cms_criteria
from diffing.mcd import (
    COLUMNS,
    EXPORTS,
    ExportBundles,
    ExportData,
    ExportTable,
    doc_key,
    resolve_header,
)
from fixtures.mcd_export.columns import HEADERS
from sources.cms_coverage import ARTICLE_TABLES


def test_the_export_reads_the_same_article_tables_as_the_api_source() -> None:
    article = next(spec for spec in EXPORTS if spec.doc_type == "Article")
    assert set(article.tables) == set(ARTICLE_TABLES)


def test_reader_columns_agree_with_the_real_headers_up_to_case() -> None:
    for name, columns in COLUMNS.items():
        assert tuple(h.lower() for h in HEADERS[name]) == columns, name


def test_a_mixed_case_header_is_recognised_and_lower_cased() -> None:
    columns, is_header = resolve_header("ncd_trkg.csv", list(HEADERS["ncd_trkg.csv"]))
    assert is_header and columns[:2] == ("ncd_id", "ncd_vrsn_num")
    upper = [h.upper() for h in HEADERS["ncd_trkg.csv"]]
    assert resolve_header("ncd_trkg.csv", ["\ufeff" + upper[0], *upper[1:]])[1]


def test_a_row_of_data_first_means_no_header_and_the_known_order() -> None:
    row = ["33979", "12", "7", "Society", "letters/a.pdf", "10", "1", ""]
    columns, is_header = resolve_header("lcd_x_requestor_letters.csv", row)
    assert not is_header
    assert columns == COLUMNS["lcd_x_requestor_letters.csv"]


def test_ids_are_normalised_like_the_api_integers() -> None:
    assert doc_key(" 0054117", "022 ") == ("54117", "22")
    assert doc_key("L1", "x") == ("L1", "x")


def _lcd_data(status: str, notice_end: str, links: list[tuple[str, str]]) -> ExportData:
    spec = EXPORTS[0]
    lcd_columns = COLUMNS["lcd.csv"]
    record = dict.fromkeys(lcd_columns, "")
    record.update(
        lcd_id="33979",
        lcd_version="12",
        title="Removal of Benign Skin Lesions",
        rev_eff_date="2025-07-01 00:00:00",
        status=status,
        notice_end_dt=notice_end,
        indication="<p>Removal is covered when the lesion bleeds.</p>",
    )
    link_columns = COLUMNS["lcd_x_contractor.csv"]
    key = ("33979", "12")
    return ExportData(
        spec=spec,
        tables={
            "lcd.csv": ExportTable(
                name="lcd.csv",
                columns=lcd_columns,
                by_document={key: [tuple(record[c] for c in lcd_columns)]},
            ),
            "lcd_x_contractor.csv": ExportTable(
                name="lcd_x_contractor.csv",
                columns=link_columns,
                by_document={key: [("33979", "12", cid, tid, "1", "") for cid, tid in links]},
            ),
            "contractor.csv": ExportTable(
                name="contractor.csv",
                columns=(
                    "contractor_id",
                    "contractor_type_id",
                    "contractor_version",
                    "contractor_bus_name",
                ),
                rows=[
                    ("1", "1", "1", "CGS Administrators, LLC"),
                    ("2", "1", "1", "Noridian Healthcare Solutions, LLC"),
                    ("3", "2", "1", "Noridian Healthcare Solutions, LLC"),
                ],
            ),
            "contractor_type_lookup.csv": ExportTable(
                name="contractor_type_lookup.csv",
                columns=("contractor_type_id", "description"),
                rows=[("1", "DME MAC"), ("2", "MAC - Part B")],
            ),
        },
    )


def test_report_row_is_synthesised_in_the_api_shape() -> None:
    bundles = ExportBundles(_lcd_data("F", "2026-12-31", [("1", "1"), ("2", "1"), ("3", "2")]))
    [version] = list(bundles.versions())
    assert version.key == "L33979" and version.version == "12"
    report = version.report
    assert report["note"] == "Future(Notice Ends 12/31/2026)"
    assert report["effective_date"] == "07/01/2025"
    assert report["contractor_name_type"] == (
        "CGS Administrators, LLC\r\n(DME MAC)\r\n\r\n"
        "Noridian Healthcare Solutions, LLC\r\n(DME MAC, MAC - Part B)"
    )
    criteria = cms_criteria(bundles.bundle(version))
    assert criteria.contractors == ("CGS Administrators, LLC", "Noridian Healthcare Solutions, LLC")
    assert (
        criteria.notice_end_date is not None
        and criteria.notice_end_date.isoformat() == "2026-12-31"
    )
    assert criteria.section("indication") is not None


def test_retired_status_and_past_notice_become_the_api_notes() -> None:
    retired = ExportBundles(_lcd_data("R", "", []))
    [version] = list(retired.versions())
    assert version.report["note"] == "Retired"
    assert cms_criteria(retired.bundle(version)).status == "retired"
    ended = ExportBundles(_lcd_data("A", "2023-07-13 00:00:00", []))
    [version] = list(ended.versions())
    assert version.report["note"] == "(Notice Ended 07/13/2023)"


def test_fingerprint_follows_the_content() -> None:
    first = ExportBundles(_lcd_data("A", "", [("1", "1")]))
    second = ExportBundles(_lcd_data("A", "", [("2", "1")]))
    [a], [b] = list(first.versions()), list(second.versions())
    assert first.fingerprint(a) == ExportBundles(_lcd_data("A", "", [("1", "1")])).fingerprint(a)
    assert first.fingerprint(a) != second.fingerprint(b)
    assert json.loads(first.bundle(a))["format"] == "cms-coverage-bundle/1"
