"""The glyph device's boxes are pdfminer's own: every upright glyph on the page, with the text,
box and size pdfminer's layout gives it (read through pdfplumber), whichever of the device's
paths read it (a string at a time, or glyph by glyph under character or word spacing)."""

from __future__ import annotations

import io
from pathlib import Path

import pdfplumber
import pytest
from fpdf import FPDF

from diffing.parse.pdf_glyphs import read_page

GOLDEN = Path(__file__).parent / "golden"
Box = tuple[str, float, float, float, float, float]


def _spaced_pdf() -> bytes:
    """Justified text (word spacing), letter-spaced and condensed lines, a kerned run."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    sentence = "Dupilumab is covered when all of the following criteria are met by the member. "
    pdf.multi_cell(150, 6, sentence * 3, align="J")
    pdf.set_char_spacing(1.5)
    pdf.cell(0, 8, "Step therapy requirements")
    pdf.ln()
    pdf.set_char_spacing(0)
    pdf.set_stretching(80)
    pdf.cell(0, 8, "Condensed: initial authorization is for 16 weeks")
    pdf.ln()
    pdf.set_stretching(100)
    pdf.set_font("Helvetica", style="B", size=14)
    pdf.cell(0, 10, "Coverage Rationale")
    return bytes(pdf.output())


def _boxes(content: bytes) -> list[tuple[list[Box], list[Box]]]:
    """Per page: the device's glyphs and pdfminer's on-page upright characters."""
    pages = []
    with pdfplumber.open(io.BytesIO(content)) as document:
        for page in document.pages:
            read = read_page(document.rsrcmgr, page.page_obj)
            ours = [glyph[:6] for glyph in read.printed]
            theirs = [
                (c["text"], c["x0"], c["x1"], c["top"], c["bottom"], c["size"])
                for c in page.chars
                if c["upright"]
                and c["text"]
                and c["size"] >= 1
                and c["x1"] >= 0
                and c["x0"] <= page.width
                and c["bottom"] >= 0
                and c["top"] <= page.height
            ]
            pages.append((ours, theirs))
    return pages


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(_spaced_pdf(), id="spacing"),
        *(
            pytest.param(path.read_bytes(), id=str(path.relative_to(GOLDEN)))
            for path in sorted(GOLDEN.glob("*/*.pdf"))
        ),
    ],
)
def test_glyph_boxes_are_pdfminers(content: bytes) -> None:
    pages = _boxes(content)
    assert any(ours for ours, _ in pages)
    for ours, theirs in pages:
        assert ours == theirs
