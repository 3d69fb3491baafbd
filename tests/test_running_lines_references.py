"""The light reference a version hands its successor's parse (issue 13 point 3): page edges,
sampled, handed on by one-page prints, applied inside `printed_alike` only; a reference line
counts only when it sits at the same edge of two of the reference's pages."""

from __future__ import annotations

from fpdf import FPDF

from diffing.parse import REFERENCE_PAGES, parse_document, printed_alike, reference_edges
from diffing.parse.clean import running_lines

HEADER = "Acme Health Pharmacy Clinical Policy Bulletin"
BODY = ["Coverage Criteria", "Examplumab is covered for atopic dermatitis.", "Renewal: 12 months."]


def _pdf(pages: int, *, header: str = HEADER) -> bytes:
    pdf = FPDF(format="letter")
    pdf.set_auto_page_break(False)
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("Helvetica", size=9)
        pdf.set_xy(15, 8)
        pdf.cell(0, 5, header)
        pdf.set_font("Helvetica", size=11)
        for row, line in enumerate([f"Part {number}", *BODY]):
            pdf.set_xy(15, 30 + 9 * row)
            pdf.cell(0, 6, line)
    return bytes(pdf.output())


def _text(content: bytes) -> str:
    return " ".join(s.text for s in parse_document(content, "application/pdf").sections)


def test_a_one_page_print_hands_on_the_reference_it_was_given() -> None:
    two = parse_document(_pdf(2), "application/pdf")
    one = parse_document(_pdf(1), "application/pdf")
    assert len(two.page_edges) == 2 and len(one.page_edges) == 1
    assert reference_edges(two) == two.page_edges
    assert reference_edges(one) == ()
    assert reference_edges(one, two.page_edges) == two.page_edges
    assert reference_edges(two, (("other",), ("other",))) == two.page_edges


def test_a_long_reference_is_sampled_across_the_document() -> None:
    long = parse_document(_pdf(40), "application/pdf")
    sample = reference_edges(long)
    assert len(sample) == REFERENCE_PAGES
    assert sample[0] == long.page_edges[0] and sample[-1] != long.page_edges[-1]
    assert {page[0] for page in sample} == {HEADER}
    assert {page[1] for page in sample} > {"Part 1", "Part 21"}  # from all over the document


def test_the_reference_applies_inside_printed_alike_only() -> None:
    reference = reference_edges(parse_document(_pdf(2), "application/pdf"))
    assert HEADER in _text(_pdf(1))
    with printed_alike(reference):
        assert HEADER not in _text(_pdf(1))
        with printed_alike():  # a block says which references apply: here none
            assert HEADER in _text(_pdf(1))
        assert HEADER not in _text(_pdf(1))
    assert HEADER in _text(_pdf(1))
    other = _pdf(1, header="Beacon Health Drug Policy")
    with printed_alike(reference):
        assert "Beacon Health Drug Policy" in _text(other)  # printed otherwise: kept


def test_a_reference_line_must_sit_on_two_of_its_pages() -> None:
    page = [["Tralzena (examplumab)", "Coverage Criteria", "Body.", "More body.", "Footer"]]
    reference = [
        ["Tralzena (examplumab)", "Coverage Criteria", "Old body.", "Footer"],
        ["Continued text.", "Renewal: 12 months.", "Footer"],
    ]
    # The title and the heading open only the first page: text, not a running header.
    assert running_lines(page, references=[reference]) == {(0, 4)}
