"""Text as the payer meant it (issue 13): chrome, running headers, stray letters, broken words,
Markdown, glued codes. Fixture text is written here in the style of the real documents; the
real pairs in ../shared/realdata are measured at the end and skipped when absent.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from fpdf import FPDF
from parse_chrome_pages import CHROME_SNIPPETS, CONTENT_SNIPPETS, chrome_page
from realdata_support import parse_real

from diffing.model import PolicyDocument
from diffing.parse import parse_document
from diffing.parse.capture import (
    drop_repeated_runs,
    markdown_inline,
    stray_runs,
    strip_capture_chrome,
    unglue_code,
)
from diffing.parse.clean import edge_noise, join_broken_words, running_lines
from monitor.errors import ParseError

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
ARTIFACTS = REALDATA / "openonco-payer-artifacts"
PAIRS_2025 = REALDATA / "payer-pairs-2025"


def _text(document: PolicyDocument) -> str:
    return "\n".join(f"{s.name}: {s.text}" for s in document.sections)


# ---- HTML main content ----------------------------------------------------------------------


def test_html_chrome_only_change_gives_equal_documents() -> None:
    before = parse_document(chrome_page(0).encode(), "text/html")
    after = parse_document(chrome_page(1).encode(), "text/html")
    assert before == after
    text = _text(before) + "\n" + "\n".join(" ".join(r) for t in before.tables for r in t.rows)
    for snippet in CONTENT_SNIPPETS:
        assert snippet in text, snippet
    for snippet in CHROME_SNIPPETS:
        assert snippet not in text, snippet
    (codes,) = before.tables
    assert codes.rows[1][0] == "81445"


# ---- Visible-text captures ------------------------------------------------------------------

CAPTURE = (
    "Cell-Free DNA AHS - G9999 | Providers | Blue Plan of Example Skip to main content Shop "
    "Plans Members Providers Employers Log In I am a provider Register for {portal} Need help? "
    "Back Cell-Free DNA AHS - G9999 Commercial Medical Policy Origination: 01/2019 Description "
    "Cell-free DNA tests look for tumor DNA in plasma. When Covered Testing is covered for "
    "advanced lung cancer when tissue is insufficient. Policy Implementation/Update Information "
    "1/1/2026 Added code 0999U. About Us Newsroom Blog {extra}Privacy Policy Website User "
    "Agreement Contact Us Careers Disclosures: Medical policy is not an authorization."
)


def test_capture_menus_and_footer_are_cut() -> None:
    one = strip_capture_chrome(CAPTURE.format(portal="Blue Connect", extra="COVID-19 "))
    two = strip_capture_chrome(CAPTURE.format(portal="the member portal", extra=""))
    assert one == two
    assert "Testing is covered for advanced lung cancer" in one
    assert "Added code 0999U" in one
    assert "Register" not in one and "Newsroom" not in one


def test_capture_without_skip_link_is_left_alone() -> None:
    text = "Policy text. Contact Us About Us Newsroom Careers Privacy Policy for help."
    assert strip_capture_chrome(text) == text


def test_repeated_link_boilerplate_is_dropped_whatever_its_count() -> None:
    unit = "Medical Policy Manual Click here to see this page in full context "
    body = "DESCRIPTION Liquid biopsy tests look for tumor DNA."
    seven = drop_repeated_runs("Liquid Biopsy " + unit * 7 + body)
    nine = drop_repeated_runs("Liquid Biopsy " + unit * 9 + body)
    assert seven == nine == "Liquid Biopsy " + body


def test_repeated_sentences_are_text() -> None:
    line = "Criteria text. " * 10
    assert drop_repeated_runs(line) == line


def test_stray_letter_runs_are_dropped_but_lone_connectors_stay() -> None:
    lines = ["Genetic testing is covered when:", "ot", "o", " ", "aa", "ia", "a  n", "ino", "done."]
    assert stray_runs(lines) == {1, 2, 4, 5, 6, 7}
    criteria = ["Patient is 18 or older;", "OR", "Patient has a referral.", "C18", "C19", "C20"]
    assert stray_runs(criteria) == set()


def test_text_capture_with_rotated_side_text_parses_without_it() -> None:
    side = "\n".join(["ot", "o", "aa", "ia", "a", "I", "o", "u"])
    body = (
        "Genetic Testing\nPolicy No. 051\nCOVERAGE POLICY\n"
        "Genetic testing is considered medically necessary when results change management.\n"
    )
    document = parse_document((body + side + "\n" + body.replace("051", "052")).encode(), "text")
    text = _text(document)
    assert "\nia\n" not in f"\n{text}\n" and "\naa\n" not in f"\n{text}\n"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("81120IDH1 (isocitrate dehydrogenase 1)", "81120 IDH1 (isocitrate dehydrogenase 1)"),
        ("0022UTargeted genomic sequence analysis", "0022U Targeted genomic sequence analysis"),
        ("81162BRCA1, BRCA2 full sequence", "81162 BRCA1, BRCA2 full sequence"),
        ("81120-81121 IDH1, IDH2", "81120-81121 IDH1, IDH2"),
        ("0001U, 0002U", "0001U, 0002U"),
        ("81479 Unlisted molecular pathology", "81479 Unlisted molecular pathology"),
    ],
)
def test_codes_glued_to_descriptions_are_split(line: str, expected: str) -> None:
    assert unglue_code(line) == expected


# ---- Broken words ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("for Prader- Willi syndrome", "for Prader-Willi syndrome"),
        ("an FDA- approved companion", "an FDA-approved companion"),
        ("testing is recom- mended", "testing is recommended"),
        ("pre- and post-operative care", "pre- and post-operative care"),
        ("an 8- to 12-week trial", "an 8- to 12-week trial"),
        ("codes 81120- 81121", "codes 81120- 81121"),
        ("Policy - Medicare", "Policy - Medicare"),
        ("non- small cell lung cancer", "non-small cell lung cancer"),
    ],
)
def test_line_break_hyphens(text: str, expected: str) -> None:
    assert join_broken_words(text, frozenset({"recommended"})) == expected


FILLER = (
    "Genetic counseling before and after testing is recommended for every member and family. " * 4
)


def test_line_break_hyphen_in_either_capture_gives_the_same_text() -> None:
    text = "CRITERIA\nTesting for Prader{}Willi syndrome is covered when ordered.\n" + FILLER
    one = parse_document(text.format("- ").encode(), "text")
    two = parse_document(text.format("-").encode(), "text")
    assert one.sections == two.sections
    assert "Prader-Willi" in _text(one)


def _pdf(pages: list[list[str]], *, header: str = "", footer: str = "") -> bytes:
    pdf = FPDF(format="letter")
    pdf.set_auto_page_break(False)
    for number, lines in enumerate(pages, start=1):
        pdf.add_page()
        pdf.set_font("Helvetica", size=9)
        if header:
            pdf.set_xy(15, 8)
            pdf.cell(0, 5, header.format(page=number))
        pdf.set_font("Helvetica", size=11)
        y = 25.0
        for line in lines:
            pdf.set_xy(15, y)
            pdf.cell(0, 6, line)
            y += 6
        if footer:
            pdf.set_font("Helvetica", size=9)
            pdf.set_xy(15, 265)
            pdf.cell(0, 5, footer.format(page=number))
    return bytes(pdf.output())


def test_pdf_word_broken_at_a_capitalised_part_keeps_its_hyphen() -> None:
    content = _pdf(
        [
            [
                "Coverage Criteria",
                "Genetic testing for suspected Angelman or Prader-",
                "Willi syndrome is covered when the result changes management.",
            ]
        ]
    )
    text = _text(parse_document(content, "application/pdf"))
    assert "Prader-Willi" in text and "PraderWilli" not in text


# ---- Running headers and footers ------------------------------------------------------------

ONE_PAGE = [
    "Coverage Criteria",
    "Tralokinumab is covered for moderate-to-severe atopic dermatitis after a 28-day trial",
    "of a medium potency topical corticosteroid.",
]
ADBRY_HEADER = "Adbry (tralokinumab) Page {page} Printed 12/15/2025 Proprietary Information of Acme"
ADBRY_REPRINT = (
    "Adbry (tralokinumab) Page {page} Printed 01/09/2026 Proprietary Information of Acme"
)


def test_one_page_header_and_footer_go_without_any_reference() -> None:
    first = parse_document(
        _pdf([ONE_PAGE], header=ADBRY_HEADER, footer="Confidential and proprietary. Page {page}"),
        "application/pdf",
    )
    reprint = parse_document(_pdf([ONE_PAGE], footer=ADBRY_REPRINT), "application/pdf")
    assert first.sections == reprint.sections
    assert "Printed" not in _text(first) and "Proprietary" not in _text(first)


def test_one_page_header_shared_with_a_reference_goes() -> None:
    header = "Acme Health Pharmacy Clinical Policy Bulletin"
    plain = parse_document(_pdf([ONE_PAGE], header=header), "application/pdf")
    assert header in _text(plain)  # alone, a one-page header is indistinguishable from text
    sibling = parse_document(
        _pdf([["Other policy text.", "More text here."]] * 2, header=header), "application/pdf"
    )
    assert sibling.page_edges
    with_sibling = parse_document(
        _pdf([ONE_PAGE], header=header), "application/pdf", related=[sibling]
    )
    assert header not in _text(with_sibling)
    assert "Tralokinumab is covered" in _text(with_sibling)


def test_a_title_shared_with_the_previous_version_stays() -> None:
    page = [["Adbry (tralokinumab)", *ONE_PAGE]]
    previous = parse_document(_pdf(page), "application/pdf")
    current = parse_document(_pdf(page), "application/pdf", related=[previous])
    assert current == previous
    assert "Adbry" in current.title + _text(current)


def test_running_lines_from_references_api() -> None:
    pages = [["Acme Policy", "Body line one.", "Body two.", "Body three.", "Page 1"]]
    previous = [
        ["Acme Policy", "Older body.", "More.", "Page 1"],
        ["Acme Policy", "Older body two.", "Page 2"],
    ]
    assert running_lines(pages) == set()
    assert running_lines(pages, references=[previous]) == {(0, 0), (0, 4)}
    assert (0, 4) in edge_noise(pages)  # a page number needs no reference


# ---- Markdown -------------------------------------------------------------------------------


def test_markdown_links_and_emphasis_normalised() -> None:
    one = '- [Non-Preferred **Agents**](https://example.org/a?id=1){ :target="_blank" rel="x"}'
    two = "- [Non-Preferred Agents](https://example.org/b?id=2){:target='_blank'} </br>"
    assert markdown_inline(one).strip() == markdown_inline(two).strip() == "- Non-Preferred Agents"
    assert markdown_inline("at least ^^90 days^^ with ^^**ALL** preferred^^ drugs") == (
        "at least 90 days with ALL preferred drugs"
    )
    assert markdown_inline("Tobramycin/Dexamethasone 0.3/0.1%*") == (
        "Tobramycin/Dexamethasone 0.3/0.1%*"
    )


MD = """---
search:
  boost: 3
---

# Example Agents

## Criteria

**Length of Authorizations**: 365 Days

- Must have had an inadequate response of at least ^^30 days^^ to **ALL** preferred drugs **OR**
- Must provide documentation of an allergy, an intolerance or a contraindication to each
  preferred drug, or of a drug interaction that makes a preferred drug unsafe for the member

[Criteria]({url}){{ :target="_blank" rel="noopener"}}

| Preferred | Generic Name |
|:----------|:-------------|
| Examplex  |              |
"""


def test_markdown_pair_differing_only_in_links_parses_equal() -> None:
    one = parse_document(MD.format(url="https://a.example/v1.pdf#page=3").encode(), "text")
    two = parse_document(MD.format(url="https://b.example/v2.pdf#page=9").encode(), "text")
    assert one == two
    text = _text(one)
    assert "**" not in text and "](" not in text and "boost" not in text
    assert "at least 30 days to ALL preferred drugs OR" in text


# ---- Dates-only change ----------------------------------------------------------------------

FEP = [
    "FEP Medical Policy Manual",
    "Effective Policy Date: {effective}",
    "Original Policy Date: June 2019",
    "Related Policies: None",
    "Description",
    "Circulating tumor DNA testing analyses tumor DNA in a blood sample.",
    "Policy Statement",
    "Testing is medically necessary for advanced non-small cell lung cancer.",
]


def test_dates_only_change_touches_only_the_date_lines() -> None:
    def build(effective: str, printed: str) -> PolicyDocument:
        lines = [line.format(effective=effective) for line in FEP]
        footer = "Policy # 2.04.141 Page {page} of 1 " + printed
        return parse_document(_pdf([lines], footer=footer), "application/pdf")

    before = build("January 1, 2025", "Printed 01/03/2025")
    after = build("January 1, 2026", "Printed 01/05/2026")
    assert [s.name for s in before.sections] == [s.name for s in after.sections]
    for old, new in zip(before.sections, after.sections, strict=True):
        changed = set(old.text.split("\n")) ^ set(new.text.split("\n"))
        assert all("Effective Policy Date" in line for line in changed), changed


# ---- Real pairs -----------------------------------------------------------------------------


def _content_type(path: Path) -> str:
    meta = path.with_name(path.name.rsplit(".", 1)[0] + ".meta.json")
    if meta.exists():
        return str(json.loads(meta.read_text()).get("contentType") or "")
    return path.suffix.lstrip(".")


def _lines(path: Path) -> list[str] | str:
    try:
        document = parse_real(path.read_bytes(), _content_type(path), document_id=path.name)
    except ParseError as exc:
        return f"ParseError: {exc.reason}"
    lines = [f"## {s.name}\n{s.text}" for s in document.sections]
    lines += [" | ".join(row) for table in document.tables for row in table.rows]
    return "\n".join(lines).split("\n")


# Changed pairs and what their normalised text must do: "differ" (a real change), "equal"
# (chrome, boilerplate or formatting only). Labels from PAIRS.csv and reading the diffs.
OPENONCO_EXPECTED = {
    "aetna_aetna-cpb-0352": "differ",  # codes and references added
    "bcbsnc_bcbsnc-liquid-biopsy-g2054": "equal",  # login-menu wording, a footer link
    "bcbssc_bcbssc-liquid-biopsy": "differ",  # the policy list grew
    "bcbst_bcbst-ctdna-liquid-biopsy": "equal",  # "Click here …" repeated 21 vs 22 times
    "cms_cms-ncd-90-2": "differ",  # a new transmittal line in the history
    "excellus_excellus-ctdna-liquid-biopsy": "differ",
    "geisinger_geisinger-mp360-mrd": "differ",
    "humana_humana-mcp-search": "differ",  # listing rows changed
    "kaiser_kaiser-wa-genetic-screening": "differ",
    "molina_molina-genetic-testing-051": "differ",
    "wellmark_wellmark-ctdna-liquid-biopsy": "equal",  # an error page both times
}


def _real_pairs() -> list[tuple[str, Path, Path, str]]:
    pairs: list[tuple[str, Path, Path, str]] = []
    if (ARTIFACTS / "PAIRS.csv").exists():
        with (ARTIFACTS / "PAIRS.csv").open(newline="") as handle:
            for row in csv.DictReader(handle):
                if row["bytes_identical"] == "False":
                    expected = OPENONCO_EXPECTED[row["doc_key"]]
                    pairs.append(
                        (
                            row["doc_key"],
                            ARTIFACTS / row["before_file"],
                            ARTIFACTS / row["after_file"],
                            expected,
                        )
                    )
    if (PAIRS_2025 / "PAIRS.csv").exists():
        with (PAIRS_2025 / "PAIRS.csv").open(newline="") as handle:
            for row in csv.DictReader(handle):
                if row["format"] != "md":  # the PDF/xlsx pairs are the extractors' measure
                    continue
                expected = "equal" if row["label"] == "formatting_only" else "differ"
                pairs.append(
                    (
                        row["key"],
                        PAIRS_2025 / row["before_file"],
                        PAIRS_2025 / row["after_file"],
                        expected,
                    )
                )
    return pairs


@pytest.fixture(scope="module")
def real_pair_lines() -> dict[tuple[Path, Path], tuple[list[str] | str, list[str] | str]]:
    """Both sides of every real pair as normalised lines, parsed here (through `parse_real`,
    shared with test_parse_realdata.py): parsing them is most of the test's time, over the
    test functions' 120 s hang guard on a loaded 2-core machine, and a fixture's time is not
    counted in it."""
    return {
        (before, after): (_lines(before), _lines(after)) for _, before, after, _ in _real_pairs()
    }


@pytest.mark.slow
@pytest.mark.skipif(
    not ARTIFACTS.is_dir() or not PAIRS_2025.is_dir(), reason=f"real data not present: {REALDATA}"
)
def test_real_pairs_differ_only_where_the_payer_changed_something(
    real_pair_lines: dict[tuple[Path, Path], tuple[list[str] | str, list[str] | str]],
) -> None:
    wrong = []
    print(f"\n{'pair':62s} {'expected':8s} {'normalised text':16s}")
    for key, before, after, expected in _real_pairs():
        old, new = real_pair_lines[before, after]
        outcome = "equal" if old == new else "differ"
        changed = 0 if outcome == "equal" else len(set(old) ^ set(new))
        print(f"{key:62s} {expected:8s} {outcome} ({changed} lines)")
        if outcome != expected:
            wrong.append(key)
    assert not wrong
