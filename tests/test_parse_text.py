"""Plain-text parsing, and the shared pieces: section names, header facts, dates, reflow."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffing.model import PolicyDocument
from diffing.parse import KNOWN_SECTIONS, PARSER_VERSION, parse_document, section_name
from diffing.parse.clean import Line, reflow, vocabulary
from diffing.parse.meta import header_meta, parse_date
from monitor.errors import ParseError

# A clinical UM guideline as text, pages separated by form feeds, written for these tests.
GUIDELINE = """\
Mohs Micrographic Surgery \u2013 CG-SURG-90
Clinical UM Guideline
Subject: Mohs Micrographic Surgery
Guideline #: CG-SURG-90  Publish Date: 04/10/2024
Status: Reviewed  Last Review Date: 02/15/2024
Printed on 03/14/2026 09:41

Description

This guideline covers Mohs micrographic surgery, in which the surgeon removes a skin
cancer layer by layer and examines each layer under the microscope before taking
the next one.

Clinical Indications

Medically Necessary:

Mohs micrographic surgery is considered medically necessary for basal cell carcinoma
or squamous cell carcinoma when one of the following is met:
\u2022 The lesion is on the face, scalp, hands, feet or genitals; or
\u2022 The lesion is 2 cm or larger on the trunk or
  extremities; or
\u2022 The tumor recurred after an earlier excision.
Page 1 of 2
\fMohs Micrographic Surgery \u2013 CG-SURG-90
One of the following:
a. The patient tried a medium-
potency topical agent for an 8-
week course; or
b. The patient\u2019s medi-
cation history shows\u00a0intolerance.

Not Medically Necessary:

Mohs micrographic surgery is considered not medically necessary when the criteria
above are not met.

CODING

The following codes for treatments and procedures applicable to this document are
included below for informational purposes.

INSTRUCTIONS FOR USE

Guidelines are developed to help interpret standard benefit plans.
Page 2 of 2
"""


@pytest.fixture(scope="module")
def guideline() -> PolicyDocument:
    return parse_document(GUIDELINE.encode(), "text/plain", document_id="cg-surg-90")


def test_sections(guideline: PolicyDocument) -> None:
    assert guideline.content_type == "text"
    assert guideline.title == "Clinical UM Guideline"  # the running header above it went
    assert [s.name for s in guideline.sections] == [
        "preamble",
        "description",
        "medically necessary",
        "not medically necessary",
        "coding",
        "instructions for use",
    ]
    assert guideline.pages == 2


def test_header_facts(guideline: PolicyDocument) -> None:
    assert dict(guideline.meta) == {
        "policy_number": "CG-SURG-90",
        "publish_date": "2024-04-10",
        "last_review": "2024-02-15",
    }


def test_paragraphs_lists_and_hyphens(guideline: PolicyDocument) -> None:
    description = guideline.sections[1].text
    assert description == (
        "This guideline covers Mohs micrographic surgery, in which the surgeon removes a skin "
        "cancer layer by layer and examines each layer under the microscope before taking the "
        "next one."
    )
    necessary = guideline.sections[2].text.split("\n")
    assert necessary == [
        "Mohs micrographic surgery is considered medically necessary for basal cell carcinoma "
        "or squamous cell carcinoma when one of the following is met:",
        "The lesion is on the face, scalp, hands, feet or genitals; or",
        "The lesion is 2 cm or larger on the trunk or extremities; or",
        "The tumor recurred after an earlier excision.",
        "One of the following:",
        "a. The patient tried a medium-potency topical agent for an 8-week course; or",
        "b. The patient's medication history shows intolerance.",
    ]


def test_page_furniture_removed_and_offsets_kept(guideline: PolicyDocument) -> None:
    text = "\n".join(s.text for s in guideline.sections)
    for noise in ("Page 1 of 2", "Page 2", "Surgery - CG", "Printed on", "Clinical Indications"):
        assert noise not in text
    necessary = guideline.sections[2]
    assert necessary.page_at(0) == 1
    assert necessary.page_at(necessary.text.index("One of the following")) == 2
    assert guideline.sections[-1].page_offsets == ((0, 2),)


def test_same_bytes_same_document(guideline: PolicyDocument) -> None:
    assert parse_document(GUIDELINE.encode(), "text/plain") == guideline
    # CRLF line ends and a BOM are the same text.
    crlf = ("\ufeff" + GUIDELINE.replace("\n", "\r\n")).encode()
    assert parse_document(crlf, "text/plain").sections == guideline.sections


def test_rewrapped_text_gives_the_same_sections(guideline: PolicyDocument) -> None:
    rewrapped = GUIDELINE.replace(
        "removes a skin\ncancer layer by layer and examines each layer under the microscope "
        "before taking\nthe next one.",
        "removes a\nskin cancer layer by layer and examines each\nlayer under the microscope "
        "before\ntaking the next one.",
    )
    assert rewrapped != GUIDELINE
    assert parse_document(rewrapped.encode(), "text/plain").sections == guideline.sections


def test_page_of_lines_split_pages_without_form_feeds() -> None:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"]
    body = "Criterion {} applies to every adult member who meets the indications below.\n"
    pages = [
        f"Page {n} of 3\nMedical Coverage Policy: 0052\n\n{'Coverage Policy' if n == 1 else ''}\n"
        + "".join(body.format(words[3 * (n - 1) + part]) for part in range(3))
        for n in (1, 2, 3)
    ]
    document = parse_document("".join(pages).encode(), "text/plain")
    text = "\n".join(s.text for s in document.sections)
    assert "Medical Coverage Policy" not in text and "Page" not in text
    assert [s.name for s in document.sections] == ["coverage policy"]


@pytest.mark.parametrize(
    "content",
    [
        b"403 ERROR\nThe request could not be satisfied.\nRequest blocked.",
        b"Failed to retrieve the document! Either document is not found or exception occured.",
        b"404 - File or directory not found.\nThe resource you are looking for might have been "
        b"removed.",
        b"Loading, please wait",
    ],
)
def test_error_texts_are_refused(content: bytes) -> None:
    with pytest.raises(ParseError, match="looks like an error page"):
        parse_document(content, "text/plain")


def test_empty_text() -> None:
    with pytest.raises(ParseError, match="empty document"):
        parse_document(b"\n\n   \n", "text/plain")


def test_address_with_a_status_like_number_is_not_an_error() -> None:
    text = "500 EXCHANGE STREET, PROVIDENCE, RI 02903\nMEDICAL POLICY\n" + "Criteria text. " * 30
    assert parse_document(text.encode(), "text/plain").content_type == "text"


# --- shared pieces --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "name"),
    [
        ("Coverage Rationale", "coverage rationale"),
        ("COVERAGE RATIONALE", "coverage rationale"),
        ("Medically Necessary:", "medically necessary"),
        ("Policy History / Revision Information", "policy history/revision information"),
        ("Policy History/Revision Information", "policy history/revision information"),
        ("Applicable CPT / HCPCS / ICD-10 Codes", "applicable codes"),
        ("I. Policy", "policy"),
        ("Clinical  Evidence", "clinical evidence"),
        ("Scope of Policy", "scope of policy"),
        ("Initial Approval Criteria", "initial approval criteria"),
    ],
)
def test_section_names(heading: str, name: str) -> None:
    assert section_name(heading) == name


def test_known_sections_include_the_usual_headings() -> None:
    for name in (
        "coverage rationale",
        "criteria",
        "clinical indications",
        "medically necessary",
        "applicable codes",
        "coding information",
        "background",
        "clinical evidence",
        "policy history/revision information",
        "references",
        "instructions for use",
        "description",
        "definitions",
    ):
        assert name in KNOWN_SECTIONS


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("March 1, 2026", "2026-03-01"),
        ("Sept. 1, 2025", "2025-09-01"),
        ("1 May 2025", "2025-05-01"),
        ("05/01/2025", "2025-05-01"),
        ("5/1/25", "2025-05-01"),
        ("05.01.2025", "2025-05-01"),
        ("2026-03-25", "2026-03-25"),
        ("02/30/2024", None),
        ("TBD", None),
    ],
)
def test_dates(text: str, iso: str | None) -> None:
    assert parse_date(text) == iso


def test_header_meta_mixed_formats() -> None:
    header = (
        "Policy Number: 2026D0045A\n"
        "Effective Date: March 1, 2026  Original Effective Date: 01/01/2019\n"
        "Guideline #: CG-SURG-90  Publish Date: 04/10/2024\n"
        "Status: Reviewed  Last Review Date: 02/15/2024\n"
        "Next Review Date...............7/15/2026\n"
    )
    assert dict(header_meta(header)) == {
        "policy_number": "2026D0045A",
        "effective_date": "2026-03-01",
        "publish_date": "2024-04-10",
        "last_review": "2024-02-15",
        "next_review": "2026-07-15",
    }


def test_reflow_rules() -> None:
    lines = [
        Line("The member must have tried a"),
        Line("topical agent; and"),
        Line("Documentation is required."),
        Line("- a bullet item"),
        Line("1. a numbered item that goes"),
        Line("on."),
        Line("Heading", heading=True),
        Line("text after a medi-"),
        Line("cation change and a medium-"),
        Line("potency steroid for an 8-"),
        Line("week course."),
    ]
    paragraphs = reflow(lines, vocabulary(line.text for line in lines))
    assert [(p.text, p.heading) for p in paragraphs] == [
        ("The member must have tried a topical agent; and", False),
        ("Documentation is required.", False),
        ("a bullet item", False),
        ("1. a numbered item that goes on.", False),
        ("Heading", True),
        (
            "text after a medication change and a medium-potency steroid for an 8-week course.",
            False,
        ),
    ]


def parse_golden_fingerprint(golden: Path = Path(__file__).parent / "golden") -> str:
    """sha256 over every parse golden's expected output: it moves when the parser's output does."""
    digest = hashlib.sha256()
    for expected in sorted(golden.glob("parse_*/expected.json")):
        digest.update(expected.parent.name.encode() + b"\0" + expected.read_bytes() + b"\0")
    return digest.hexdigest()


def test_parser_version_changes_whenever_the_parse_goldens_change() -> None:
    """Stored versions are re-parsed only when `PARSER_VERSION` moves (it is in the extractor
    name and the parse cache key), so regenerated parse goldens without a bump would leave old
    parses in place. tests/golden/parser_versions.json pairs each version with the goldens it
    produced: a new golden output under an old version, or a version without its entry, fails."""
    history = json.loads((Path(__file__).parent / "golden" / "parser_versions.json").read_text())
    fingerprint = parse_golden_fingerprint()
    by_version = {entry["parser_version"]: entry["parse_golden_sha256"] for entry in history}
    assert len(by_version) == len(history), "one entry per PARSER_VERSION"
    assert len({e["parse_golden_sha256"] for e in history}) == len(history), (
        "two PARSER_VERSIONs recorded for the same golden output"
    )
    assert PARSER_VERSION in by_version, (
        f"PARSER_VERSION {PARSER_VERSION!r} is not in parser_versions.json: append "
        f'{{"parser_version": "{PARSER_VERSION}", "parse_golden_sha256": "{fingerprint}"}}'
    )
    assert by_version[PARSER_VERSION] == fingerprint, (
        f"the parse goldens changed but PARSER_VERSION is still {PARSER_VERSION!r}: bump it and "
        f"record the new fingerprint {fingerprint}"
    )


def test_parser_version_is_part_of_the_extractor_name_stored_with_each_version() -> None:
    from diffing.payer import EXTRACTOR_NAME

    assert f"/parse-{PARSER_VERSION}/" in EXTRACTOR_NAME


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400))
def test_any_text_parses_or_raises_parse_error(text: str) -> None:
    try:
        document = parse_document(text.encode(), "text/plain")
    except ParseError:
        return
    assert document == parse_document(text.encode(), "text/plain")
    assert all(s.text == s.text.strip() for s in document.sections)


@pytest.mark.skipif("HYPOTHESIS_PROFILE" in os.environ, reason="another profile was chosen")
def test_property_tests_run_under_the_ci_profile() -> None:
    """tests/conftest.py loads it: no per-example deadline, the same examples every run."""
    assert settings.default.deadline is None and settings.default.derandomize
