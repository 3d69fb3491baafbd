"""Unit tests of text cleaning and of CMS bundle parsing quirks."""

from __future__ import annotations

import datetime as dt

import pytest

from diffing.cms import cms_criteria, contractor_names, display_id, make_bundle, parse_cms_date
from diffing.model import CodeSystem, CoverageFlag
from diffing.text import html_to_text, sentences
from monitor.errors import ParseError


def test_entity_encoded_html_is_decoded_once_or_twice() -> None:
    once = "&lt;p&gt;Covered when &ldquo;symptomatic&rdquo;.&lt;&sol;p&gt;"
    twice = "&lt;p&gt;Covered when &amp;ldquo;symptomatic&amp;rdquo;.&lt;&sol;p&gt;"
    assert html_to_text(once) == html_to_text(twice) == 'Covered when "symptomatic".'


def test_whitespace_and_nbsp_do_not_matter() -> None:
    a = html_to_text("<p>The lesion  bleeds.\n  It is\u00a0painful.</p>")
    b = html_to_text("<p>The lesion bleeds. It is painful.</p>")
    assert a == b
    assert sentences(a) == ["The lesion bleeds.", "It is painful."]


def test_script_and_style_are_dropped() -> None:
    assert html_to_text("<style>p{}</style><p>Text.</p><script>x()</script>") == "Text."


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("02/05/2026", dt.date(2026, 2, 5)),
        ("N/A", None),
        ("", None),
        (None, None),
        ("2026-02-05", dt.date(2026, 2, 5)),
        ("20260205", dt.date(2026, 2, 5)),
    ],
)
def test_cms_dates(value: object, expected: dt.date | None) -> None:
    assert parse_cms_date(value) == expected


def test_bad_date_is_an_error() -> None:
    with pytest.raises(ValueError, match="13/45/2026"):
        parse_cms_date("13/45/2026")


def test_contractor_names_with_crlf_and_several_blocks() -> None:
    single = "Noridian Healthcare Solutions, LLC\r\n(MAC - Part A, MAC - Part B)"
    multi = "CGS Administrators, LLC\n(DME MAC)\n\nNoridian Healthcare Solutions, LLC\n(DME MAC)"
    assert contractor_names(single) == ("Noridian Healthcare Solutions, LLC",)
    assert contractor_names(multi) == (
        "CGS Administrators, LLC",
        "Noridian Healthcare Solutions, LLC",
    )


def test_display_ids_from_integer_or_string_ids() -> None:
    assert display_id("LCD", {"document_id": 38814, "document_display_id": "L38814"}) == "L38814"
    assert display_id("Article", {"document_id": "57520"}) == "A57520"
    assert display_id("NCD", {"document_id": 88, "document_display_id": "250.1"}) == "NCD 250.1"


def _article(**tables: list[dict[str, object]]) -> bytes:
    return make_bundle(
        doc_type="Article",
        report={
            "document_id": 57520,
            "document_version": 3,
            "document_display_id": "A57520",
            "note": "",
            "title": "Billing and Coding: X &amp; Y",
            "effective_date": "01/01/2026",
            "retirement_date": "N/A",
            "contractor_name_type": "Palmetto GBA\r\n(MAC - Part A)",
        },
        detail={"article_id": 57520, "description": "&lt;p&gt;Guidance.&lt;/p&gt;"},
        tables=tables,
    )


def test_article_codes_and_fields() -> None:
    criteria = cms_criteria(
        _article(
            icd10_covered=[
                {
                    "icd10_code_id": "l82.0 ",
                    "icd10_covered_group": "2",
                    "description": "Inflamed seborrheic keratosis",
                }
            ],
            hcpc_code=[{"hcpc_code_id": "11400", "hcpc_code_group": 1}],
        )
    )
    assert criteria.document_id == "A57520"
    assert criteria.title == "Billing and Coding: X & Y"
    assert criteria.retirement_date is None
    assert criteria.contractors == ("Palmetto GBA",)
    codes = {(c.system, c.flag, c.code, c.group) for c in criteria.codes}
    assert codes == {
        (CodeSystem.ICD10, CoverageFlag.COVERED, "L82.0", 2),
        (CodeSystem.HCPCS, CoverageFlag.COVERED, "11400", 1),
    }


def test_bundle_bytes_are_canonical() -> None:
    """The same version built from dicts in another key order gives the same bytes (so the
    same sha256): sorted keys at every level, compact separators, UTF-8 not escaped."""
    report = {"document_id": 57520, "document_version": 3, "title": "Débridement"}
    detail = {"article_id": 57520, "description": "x", "ab": {"z": 1, "a": 2}}
    rows = [{"hcpc_code_id": "11400", "hcpc_code_group": 1}]
    forward = make_bundle(doc_type="Article", report=report, detail=detail,
                          tables={"hcpc_code": rows, "icd10_covered": []})  # fmt: skip
    backward = make_bundle(
        doc_type="Article",
        report=dict(reversed(report.items())),
        detail={"ab": {"a": 2, "z": 1}, "description": "x", "article_id": 57520},
        tables={"icd10_covered": [], "hcpc_code": [dict(reversed(rows[0].items()))]},
    )
    assert forward == backward
    assert forward.startswith(b'{"detail":{"ab":{"a":2,"z":1},"article_id":57520,')
    assert "Débridement".encode() in forward and b": " not in forward and b", " not in forward


@pytest.mark.parametrize("content", [b"not json", b"{}", b'{"format": "other"}'])
def test_garbage_bundle_is_a_parse_error(content: bytes) -> None:
    with pytest.raises(ParseError):
        cms_criteria(content)


def test_empty_detail_is_a_parse_error() -> None:
    bundle = make_bundle(
        doc_type="LCD", report={"document_id": 1, "document_version": 1}, detail={}, tables={}
    )
    with pytest.raises(ParseError, match="detail record is empty"):
        cms_criteria(bundle)
