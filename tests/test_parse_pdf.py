"""PDF parsing: policies written here with fpdf2 in the style of a UHC medical policy.

The central property: the same text printed with another font size, margins, alignment and
so other line and page breaks gives identical sections (a re-print is noise, not a change).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import random
import time
from collections.abc import Sequence
from pathlib import Path

import pdfplumber
import pytest
from fpdf import FPDF

from diffing.model import PolicyDocument
from diffing.parse import parse_document
from monitor.errors import ParseError

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
UHC_PDF = REALDATA / "uhc-bariatric-pdf" / "bariatric-surgery.uhc.992a8fa.pdf"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
SHY = "\u00ad"  # soft hyphen: where the typesetter may break a word ("medi-" / "cation")

# The policy, as blocks: (kind, payload). Written for these tests in the style of a payer policy.
POLICY: list[tuple[str, object]] = [
    ("title", "Dupilumab (Dupixent®)"),
    ("stamp", "Printed on 03/14/2026 09:41 AM by policy portal"),
    ("para", "Policy Number: 2026D0045A"),
    ("para", "Effective Date: March 1, 2026"),
    ("heading", "Coverage Rationale"),
    (
        "para",
        "Dupilumab is proven and medically necessary for the treatment of moderate-to-severe "
        "atopic dermatitis when all of the following criteria are met:",
    ),
    (
        "numbered",
        [
            "Diagnosis of moderate-to-severe atopic dermatitis involving at least 10% of the "
            "body surface area or the face, hands or genitals; and",
            "History of failure, contraindication or intolerance to a medium-potency or higher "
            "topical corticosteroid applied daily for at least 8 weeks, documented with the "
            "drug, the date of the trial and the outcome; and",
            "Dupilumab is not used in combination with another biologic immunomodulator or a "
            "Janus kinase inhibitor; and",
            "Prescribed by or in consultation with a dermatologist, allergist or immunologist.",
        ],
    ),
    (
        "para",
        f"Initial authori{SHY}zation is for no more than 6 months. Reauthori{SHY}zation "
        f"requires documen{SHY}tation of a positive clinical response, such as a reduction in "
        f"body surface area involve{SHY}ment or an improvement of at least two points in the "
        f"Investigator's Global Assessment score, and continued medi{SHY}cation adherence. "
        "Each reauthorization is for no more than 12 months.",
    ),
    (
        "bullets",
        [
            "Chart notes from the last 90 days",
            "Names and doses of the topical agents tried",
            "The prescriber's specialty",
        ],
    ),
    ("heading", "Applicable Codes"),
    (
        "para",
        "The following list of codes is provided for reference purposes only and may not be "
        "all inclusive.",
    ),
    (
        "table",
        [
            ["HCPCS Code", "Description"],
            ["J3590", "Unclassified biologics"],
            ["96372", "Therapeutic, prophylactic, or diagnostic injection; subcutaneous"],
            ["L20.84", "Intrinsic (allergic) eczema"],
            ["L20.89", "Other atopic dermatitis"],
        ],
    ),
    ("heading", "Background"),
    (
        "para",
        "Atopic dermatitis is a chronic, relapsing inflammatory skin disease marked by intense "
        "itching, dry skin and eczematous lesions. It often starts in childhood and may persist "
        "into adulthood, where it is associated with asthma, allergic rhinitis and food allergy. "
        "Treatment aims to restore the skin barrier, reduce inflammation and control itching.",
    ),
    (
        "lines",
        [
            "Patients who tried a medium-",
            "potency corticosteroid for an 8-",
            "week course without response, or whose medi-",
            "cation caused intolerance, may qualify.",
        ],
    ),
    (
        "para",
        "Topical corticosteroids remain the first-line anti-inflammatory treatment. Their "
        "potency ranges from low to super-high, and the choice depends on the site, the age of "
        "the patient and the severity of the disease. Topical calcineurin inhibitors are an "
        "alternative on sensitive areas such as the face and the skin folds. Phototherapy with "
        "narrowband ultraviolet B light is a second-line option for widespread disease that "
        "does not respond to topical therapy.",
    ),
    (
        "para",
        "Dupilumab is a fully human monoclonal antibody that binds the alpha subunit of the "
        "interleukin-4 receptor and so blocks signalling by both interleukin-4 and "
        "interleukin-13. In two replicate phase 3 trials of adults with moderate-to-severe "
        "disease, more patients treated every other week reached clear or almost clear skin at "
        "week 16 than patients given placebo. The most common adverse events were injection "
        "site reactions and conjunctivitis. Long-term extension studies reported sustained "
        "responses through three years of treatment without new safety signals.",
    ),
    (
        "para",
        "Guidelines of the American Academy of Dermatology recommend biologic therapy for "
        "adults whose disease is not adequately controlled with topical therapy, and note that "
        "systemic immunosuppressants such as cyclosporine, methotrexate, azathioprine and "
        "mycophenolate are alternatives when a biologic is not available or not appropriate. "
        "The guideline also recommends against the use of systemic corticosteroids except for "
        "short courses while a steroid-sparing therapy is started.",
    ),
    ("heading", "Policy History/Revision Information"),
    (
        "para",
        "03/01/2026: Updated the corticosteroid trial from 4 weeks to 8 weeks; added the "
        "prescriber requirement. 09/01/2025: Annual review; no change to coverage criteria.",
    ),
    ("stamp", "Generated 2026-03-14T09:41:07Z by PolicyPortal 4.2"),
]

BACKGROUND_PHRASE = "Guidelines of the American Academy of Dermatology"


class _PolicyPdf(FPDF):
    def header(self) -> None:
        self.set_font("helvetica", size=8)
        self.cell(0, 4, f"Acme Health Medical Policy No. 2026D0045A (sheet {self.page_no()})")
        self.ln(8)

    def footer(self) -> None:
        self.set_y(-18)
        self.set_font("helvetica", size=8)
        self.cell(0, 4, f"Dupilumab (Dupixent®)      Page {self.page_no()} of {{nb}}")
        self.ln(4)
        self.cell(0, 4, "Proprietary Information of Acme Health. Copyright 2026 Acme Health, Inc.")


def render_policy(
    blocks: Sequence[tuple[str, object]] = POLICY,
    *,
    font_size: float = 10,
    margin: float = 20,
    align: str = "J",
    repeat_background: int = 1,
) -> bytes:
    """The policy as PDF bytes; same content, whatever layout the arguments choose."""
    pdf = _PolicyPdf()
    pdf.core_fonts_encoding = "windows-1252"
    pdf.set_creation_date(dt.datetime(2026, 3, 14, 9, 41, tzinfo=dt.UTC))
    pdf.set_margins(margin, 20, margin)
    pdf.set_auto_page_break(True, margin=22)
    pdf.add_page()
    line = font_size * 0.3528 * 1.35  # mm
    gap = font_size * 0.3528 * 0.8

    def text(value: str, *, size: float = font_size, style: str = "", indent: float = 0) -> None:
        pdf.set_font("helvetica", style=style, size=size)
        pdf.set_x(pdf.l_margin + indent)
        pdf.multi_cell(pdf.epw - indent, size * 0.3528 * 1.35, value, align=align, new_x="LMARGIN")

    for kind, payload in blocks:
        if kind == "title":
            text(str(payload), size=font_size * 2, style="B")
            pdf.ln(gap)
        elif kind == "heading":
            pdf.ln(gap)
            text(str(payload), size=font_size * 1.4, style="B")
            pdf.ln(gap / 2)
        elif kind in {"para", "stamp"}:
            repeats = repeat_background if kind == "para" else 1
            for _ in range(repeats):
                text(str(payload))
                pdf.ln(gap)
        elif kind == "numbered":
            for number, item in enumerate(payload, start=1):  # type: ignore[arg-type]
                text(f"{number}. {item}", indent=5)
            pdf.ln(gap)
        elif kind == "bullets":
            for item in payload:  # type: ignore[attr-defined]
                text(f"• {item}", indent=5)
            pdf.ln(gap)
        elif kind == "lines":
            pdf.set_font("helvetica", size=font_size)
            for row in payload:  # type: ignore[attr-defined]
                pdf.cell(0, line, str(row), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(gap)
        elif kind == "table":
            pdf.set_font("helvetica", size=font_size)
            with pdf.table(col_widths=(1, 3), line_height=line) as table:
                for cells in payload:  # type: ignore[attr-defined]
                    row = table.row()
                    for cell in cells:
                        row.cell(cell)
            pdf.ln(gap)
        else:
            raise AssertionError(kind)
    return bytes(pdf.output())


@pytest.fixture(scope="module")
def policy_pdf() -> bytes:
    return render_policy()


@pytest.fixture(scope="module")
def policy(policy_pdf: bytes) -> PolicyDocument:
    return parse_document(policy_pdf, "application/pdf", document_id="dupixent")


def _all_text(document: PolicyDocument) -> str:
    return "\n".join(section.text for section in document.sections)


def test_sections_title_and_meta(policy: PolicyDocument) -> None:
    assert policy.content_type == "pdf"
    assert policy.title == "Dupilumab (Dupixent®)"
    assert [s.name for s in policy.sections] == [
        "preamble",
        "coverage rationale",
        "applicable codes",
        "background",
        "policy history/revision information",
    ]
    assert policy.meta_value("policy_number") == "2026D0045A"
    assert policy.meta_value("effective_date") == "2026-03-01"
    assert policy.pages >= 2


def test_paragraphs_and_list_items(policy: PolicyDocument) -> None:
    rationale = policy.sections[1].text.split("\n")
    assert rationale[0].startswith("Dupilumab is proven and medically necessary")
    assert rationale[0].endswith("criteria are met:")
    assert rationale[1].startswith("1. Diagnosis of moderate-to-severe atopic dermatitis")
    assert rationale[1].endswith("genitals; and")
    assert rationale[4].startswith("4. Prescribed by")
    # Bullets start their own line and lose the glyph.
    assert "Chart notes from the last 90 days" in rationale
    assert "The prescriber's specialty" in rationale


def test_hyphenation_and_real_hyphens(policy: PolicyDocument) -> None:
    text = _all_text(policy)
    # Soft hyphens and hyphenated line breaks inside a word are joined …
    assert "authorization is for no more than 6 months" in text
    assert "continued medication adherence" in text
    assert "medi-" not in text and "medi cation" not in text
    # … real hyphens stay, also when the line broke right after them.
    assert "medium-potency or higher topical corticosteroid" in text
    assert (
        "Patients who tried a medium-potency corticosteroid for an 8-week course without "
        "response, or whose medication caused intolerance, may qualify." in text
    )


def test_noise_is_removed(policy: PolicyDocument) -> None:
    text = _all_text(policy)
    for noise in (
        "Acme Health Medical Policy No.",
        "sheet",
        "Page 1",
        "of 3",
        "Proprietary Information",
        "Copyright 2026",
        "Printed on",
        "Generated 2026",
        "PolicyPortal",
    ):
        assert noise not in text, noise
    assert "  " not in text and "\u00a0" not in text


def test_table_extracted_and_tagged(policy: PolicyDocument) -> None:
    (table,) = policy.tables
    assert table.section == "applicable codes"
    assert table.rows[0] == ("HCPCS Code", "Description")
    assert ("J3590", "Unclassified biologics") in table.rows
    assert [row[0] for row in table.rows[1:]] == ["J3590", "96372", "L20.84", "L20.89"]
    assert table.page == 1
    # The table's text is not repeated in the running text.
    assert "Unclassified biologics" not in _all_text(policy)
    assert "Intrinsic (allergic) eczema" not in _all_text(policy)


def test_page_offsets_point_at_the_page_of_the_text(policy_pdf: bytes) -> None:
    document = parse_document(render_policy(repeat_background=3), "application/pdf")
    background = next(s for s in document.sections if s.name == "background")
    assert len(background.page_offsets) >= 2, "the background should run over a page break"
    assert background.page_offsets[0][0] == 0
    with pdfplumber.open(io.BytesIO(render_policy(repeat_background=3))) as pdf:
        pages_text = [page.extract_text() or "" for page in pdf.pages]
    phrases = [
        "Treatment aims to restore the skin barrier",
        "Topical calcineurin inhibitors are an",
        "The most common adverse events were",
        "short courses while a steroid-sparing",
    ]
    for phrase in phrases:
        expected = {n for n, text in enumerate(pages_text, start=1) if phrase in text}
        offset = background.text.index(phrase)
        assert background.page_at(offset) in expected, phrase
    last = background.text.rindex(BACKGROUND_PHRASE)
    assert background.page_at(last) == max(n for _, n in background.page_offsets)


@pytest.mark.parametrize(
    "layout",
    [
        {"font_size": 12, "margin": 30, "align": "L"},
        {"font_size": 9, "margin": 12, "align": "J"},
        {"font_size": 11, "margin": 25, "align": "L"},
    ],
    ids=["larger-font-wider-margins", "smaller-font-narrow-margins", "ragged-right"],
)
def test_reprint_with_other_layout_gives_identical_sections(
    policy: PolicyDocument, layout: dict[str, object]
) -> None:
    reprint_pdf = render_policy(**layout)  # type: ignore[arg-type]
    reprint = parse_document(reprint_pdf, "application/pdf", document_id="dupixent")
    assert [s.name for s in reprint.sections] == [s.name for s in policy.sections]
    for before, after in zip(policy.sections, reprint.sections, strict=True):
        assert after.text == before.text, before.name
    assert reprint.sections == policy.sections
    assert [t.rows for t in reprint.tables] == [t.rows for t in policy.tables]
    assert reprint.title == policy.title and reprint.meta == policy.meta


def test_reprint_changes_pages_and_offsets_but_not_equality(policy: PolicyDocument) -> None:
    reprint = parse_document(render_policy(font_size=13, margin=35, align="L"), "application/pdf")
    assert reprint.pages > policy.pages
    assert reprint.sections == policy.sections  # page_offsets take no part in equality


def test_same_bytes_same_document(policy_pdf: bytes, policy: PolicyDocument) -> None:
    assert parse_document(policy_pdf, "application/pdf", document_id="dupixent") == policy


@pytest.mark.skipif(not DEJAVU.exists(), reason="DejaVu Sans is not installed")
def test_ligatures_and_unicode_are_normalised() -> None:
    pdf = FPDF()
    pdf.add_font("dejavu", "", str(DEJAVU))
    pdf.add_page()
    pdf.set_font("dejavu", size=11)
    pdf.multi_cell(
        0,
        5,
        "Coverage Rationale\n\n"
        "The \ufb01rst-line e\ufb03cacy of a \ufb02uid “wrap” – with\u00a0BSA ≥ 10 % – is "
        "documented.",
        new_x="LMARGIN",
    )
    document = parse_document(bytes(pdf.output()), "application/pdf")
    text = _all_text(document)
    assert 'The first-line efficacy of a fluid "wrap" - with BSA ≥ 10 % - is documented.' in text


# --- failures -------------------------------------------------------------------------------


def _reason(content: bytes, **kwargs: object) -> str:
    with pytest.raises(ParseError) as caught:
        parse_document(content, "application/pdf", document_id="doc-1", **kwargs)  # type: ignore[arg-type]
    assert caught.value.document_id == "doc-1"
    return caught.value.reason


def test_truncated_pdf(policy_pdf: bytes) -> None:
    assert "truncated" in _reason(policy_pdf[: len(policy_pdf) // 2])


def test_corrupt_pdf() -> None:
    reason = _reason(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R\nstream\x00\x01\n%%EOF\n")
    assert "PDF" in reason


def test_garbage_declared_as_pdf() -> None:
    reason = _reason(bytes(range(256)) * 20)
    assert "not a PDF" in reason


def test_encrypted_pdf_needing_a_password() -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(0, 5, "Coverage Rationale\n\nSecret criteria that only members may read.")
    pdf.set_encryption(owner_password="owner-secret", user_password="member-secret")
    assert "encrypted" in _reason(bytes(pdf.output()))


def test_pdf_encrypted_only_against_editing_still_parses() -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", style="B", size=14)
    pdf.multi_cell(0, 8, "Coverage Rationale", new_x="LMARGIN")
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(
        0,
        5,
        "Criteria anyone may read, although the file cannot be edited "
        "without the owner password. They are long enough to be a real document, with more "
        "than two hundred characters of text in them, like any policy would have.",
    )
    pdf.set_encryption(owner_password="owner-secret")
    document = parse_document(bytes(pdf.output()), "application/pdf")
    assert document.sections[-1].name == "coverage rationale"
    assert "cannot be edited" in document.sections[-1].text


def test_pdf_without_text() -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 50)
    assert _reason(bytes(pdf.output())) == "no text"


def test_empty_input() -> None:
    assert _reason(b"") == "empty document"
    assert _reason(b"  \n ") == "empty document"


def test_page_limit(policy_pdf: bytes) -> None:
    assert "more than 1" in _reason(policy_pdf, max_pages=1)
    assert parse_document(policy_pdf, "application/pdf", max_pages=10).pages <= 10


# --- real data ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uhc() -> PolicyDocument:
    if not UHC_PDF.exists():
        pytest.skip(f"real data not present: {UHC_PDF}")
    started = time.perf_counter()
    document = parse_document(UHC_PDF.read_bytes(), "application/pdf", document_id="uhc")
    print(f"UHC bariatric surgery PDF parsed in {time.perf_counter() - started:.1f} s")
    return document


@pytest.mark.slow
def test_real_uhc_pdf_sections(uhc: PolicyDocument) -> None:
    names = [s.name for s in uhc.sections]
    for expected in (
        "application",
        "coverage rationale",
        "definitions",
        "applicable codes",
        "description of services",
        "benefit considerations",
        "clinical evidence",
        "u.s. food and drug administration",
        "references",
        "instructions for use",
    ):
        assert expected in names, expected
    assert names.index("coverage rationale") < names.index("applicable codes")
    assert uhc.title == "Bariatric Surgery"
    assert uhc.meta_value("policy_number") == "2025T0362PP"
    assert uhc.meta_value("effective_date") == "2025-05-01"
    assert uhc.pages == 53
    rationale = next(s for s in uhc.sections if s.name == "coverage rationale")
    assert "bariatric surgical procedures are proven and medically necessary" in rationale.text
    assert {page for _, page in rationale.page_offsets} >= {1, 2}
    text = _all_text(uhc)
    assert "Proprietary Information of UnitedHealthcare" not in text
    assert "Page 2 of 53" not in text


@pytest.mark.slow
def test_real_uhc_pdf_code_tables(uhc: PolicyDocument) -> None:
    codes = [t for t in uhc.tables if t.section == "applicable codes"]
    assert codes, "the Applicable Codes table should come out as a Table"
    cells = {cell for table in codes for row in table.rows for cell in row}
    for cpt in ("43644", "43775", "43846", "0813T", "64590"):
        assert cpt in cells, cpt
    assert codes[0].rows[0] == ("CPT Code", "Description")
    assert all(len(row) == 2 for table in codes for row in table.rows)


def test_damaged_pdfs_parse_or_raise_parse_error(policy_pdf: bytes) -> None:
    """Random byte damage: the result is a document or a ParseError, never a library error."""
    rnd = random.Random(20260314)
    for _ in range(40):
        damaged = bytearray(policy_pdf)
        for _ in range(rnd.randint(1, 20)):
            damaged[rnd.randrange(len(damaged))] = rnd.randrange(256)
        if rnd.random() < 0.3:
            start = rnd.randrange(len(damaged))
            del damaged[start : start + rnd.randint(1, 200)]
        with contextlib.suppress(ParseError):
            parse_document(bytes(damaged), "application/pdf")
