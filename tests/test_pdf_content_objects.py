"""The content-stream reader gives pdfminer's objects, or leaves the page to pdfminer.

Each case is a page's content streams; `content_objects` must give exactly the objects
pdfminer's own `PDFContentParser` gives (same values, same types, same nesting), or None
where it leaves them to pdfminer (and then the interpreter uses pdfminer's reader)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pdfplumber
import pytest
from fpdf import FPDF
from pdfminer.converter import PDFPageAggregator
from pdfminer.layout import LTContainer
from pdfminer.pdfinterp import PDFContentParser, PDFPageInterpreter
from pdfminer.pdftypes import PDFStream
from pdfminer.psparser import PSEOF

from diffing.parse.pdf_content import ContentInterpreter, content_objects
from diffing.parse.pdf_glyphs import read_page

GOLDEN = Path(__file__).parent / "golden"


def _pdfminer(streams: list[bytes]) -> list[Any]:
    try:
        parser = PDFContentParser([PDFStream({}, data) for data in streams])
    except PSEOF:  # no streams: pdfminer's `execute` runs nothing
        return []
    objects = []
    while True:
        try:
            objects.append(parser.nextobject()[1])
        except PSEOF:
            return objects


def _typed(value: Any) -> Any:
    """A value with the types of everything inside it spelled out (1 == 1.0 == True)."""
    if isinstance(value, list):
        return ["list", [_typed(item) for item in value]]
    if isinstance(value, dict):
        return ["dict", sorted((key, _typed(item)) for key, item in value.items())]
    return [type(value).__name__, repr(value)]


READ = {
    "text": [b"BT /F1 12 Tf 72 712 Td (Coverage Rationale) Tj ET"],
    "numbers": [b"1 -2 +3 .5 -.5 5. 0.149 1.2.3 --5 +-4 - . -. 007 12abc 3-4 1.5.Tj"],
    "names": [b"/F1 /Span /a.b-c_d /\xc3\xa9t\xc3\xa9 /\xff\xfe /Name/Other/ 1 /"],
    "keywords": [b"q Q T* ' \" d0 d1 BDC EMC true false null w0rd x*y Tf#1 a%comment\nb"],
    "single bytes": [b") } # \x80 \x00 ; @ ! ~"],
    "escapes": [
        rb"(a\(b\)c \\ \n\r\t\b\f \101\1012\0 \8 \q \
end) Tj (nested (paren (deep)) done) Tj () Tj"
    ],
    "escaped line ends": [b"(one\\\r\ntwo\\\rthree\\\nfour) Tj"],
    "escaped CR LF across pdfminer's 4,096 bytes": [
        b" " * 4091 + b"(ab\\\r\ncd) Tj (" + b"x" * 5000 + b"\\\r\ny) Tj"
    ],
    "escape across 4,096 bytes": [b" " * 4093 + b"(a\\101b\\(c) Tj"],
    "hex": [b"<48656c6c6f> Tj <4 8 6\n5> Tj <abc> Tj <> Tj <4g> Tj"],
    "arrays": [b"[(Cov) -250 (erage) 120.5 (x)] TJ [[1 2] [3 [4]]] [/a true q] x"],
    "dictionaries": [
        b"/Span <</MCID 0 /ActualText (x) /A [1 2] /D <</E 1>>>> BDC EMC <</A <41>>> x"
    ],
    "marked content with a number key": [b"/P <<1 2 /A 3>> BDC EMC"],
    "comments": [b"% a comment\nq %another\r1 0 0 1 0 0 cm Q %last"],
    "several streams": [b"q 1 0 0 1 5 5 cm", b"BT /F1 9 Tf", b"(x) Tj ET Q", b"", b"q Q"],
    "a token cut by the end of a stream": [b"BT /F1 1", b"2 Tf (a) T", b"j ET 0.", b"5 w"],
    "white space only": [b"  \n\t\r\f ", b""],
    "empty": [],
    "a name escape": [b"/A#20B Tj"],
    "an inline image": [b"q BI /W 1 /H 1 /BPC 8 /CS /G ID \x00 EI Q"],
    "a procedure": [b"{ 1 2 } q"],
    "an unclosed array": [b"[1 2 TJ"],
    "an unopened array": [b"1 2] TJ"],
    "an odd dictionary": [b"<</A>> BDC"],
    "a dictionary closed as an array": [b"<</A 1] BDC"],
    "a string across streams": [b"(abc", b"def) Tj"],
    "an escape at the end of a stream": [b"(abc\\", b"def) Tj"],
    "a hex string across streams": [b"<4142", b"43> Tj"],
    "'<' ending a stream": [b"1 <", b"<</A 1>> BDC"],
    "'>' ending a stream": [b"<</A 1>", b"> BDC"],
    "a bare '/' ending a stream": [b"q /", b"F1 12 Tf"],
    "an octal escape past 255": [b"(\\777) Tj"],
    "an unclosed string": [b"(abc"],
}


@pytest.mark.parametrize("streams", READ.values(), ids=list(READ))
def test_objects_are_pdfminers_or_left_to_it(streams: list[bytes]) -> None:
    ours = content_objects(streams)
    if ours is None:
        return  # left to pdfminer: nothing to compare
    assert _typed(ours) == _typed(_pdfminer(streams))


@pytest.mark.parametrize(
    "streams",
    [
        READ["text"],
        READ["numbers"],
        READ["escapes"],
        READ["escaped CR LF across pdfminer's 4,096 bytes"],
        READ["hex"],
        READ["arrays"],
        READ["dictionaries"],
        READ["several streams"],
        READ["a token cut by the end of a stream"],
    ],
)
def test_usual_streams_are_read(streams: list[bytes]) -> None:
    """Not everything is left to pdfminer: the usual constructs are read here."""
    assert content_objects(streams) is not None


def test_escaped_line_end_where_pdfminer_holds_no_more() -> None:
    """The "\\r" of an escaped line end is the 4,096th byte: pdfminer keeps the "\\n"."""
    objects = content_objects(READ["escaped CR LF across pdfminer's 4,096 bytes"])
    assert objects is not None
    assert objects[0] == b"ab\ncd"
    assert objects[2] == b"x" * 5000 + b"y"


@pytest.mark.parametrize(
    "name",
    [
        "a name escape",
        "an inline image",
        "a procedure",
        "an unclosed array",
        "an unopened array",
        "an odd dictionary",
        "a dictionary closed as an array",
        "a string across streams",
        "an escape at the end of a stream",
        "a hex string across streams",
        "'<' ending a stream",
        "'>' ending a stream",
        "a bare '/' ending a stream",
        "an octal escape past 255",
        "an unclosed string",
    ],
)
def test_what_pdfminer_reads_differently_is_left_to_it(name: str) -> None:
    assert content_objects(READ[name]) is None


def _sample_pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, "Prior authorization (PA) is required \\ for 16 weeks. " * 20)
    pdf.set_draw_color(0, 0, 0)
    pdf.rect(20, 150, 80, 20)
    pdf.line(20, 160, 100, 160)
    return bytes(pdf.output())


def _layout(content: bytes, interpreter: type[PDFPageInterpreter]) -> list[str]:
    """Every object pdfminer's layout device records, page by page, through `interpreter`."""
    pages = []
    with pdfplumber.open(io.BytesIO(content)) as document:
        for page in document.pages:
            device = PDFPageAggregator(document.rsrcmgr, laparams=None)
            interpreter(document.rsrcmgr, device).process_page(page.page_obj)
            pages.append(repr([(type(item).__name__, repr(item)) for item in _items(device)]))
    return pages


def _items(device: PDFPageAggregator) -> list[Any]:
    items: list[Any] = []
    stack: list[Any] = [device.get_result()]
    while stack:
        item = stack.pop()
        items.append(item)
        if isinstance(item, LTContainer):
            stack.extend(reversed(list(item)))
    return items


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(_sample_pdf(), id="sample"),
        *(
            pytest.param(path.read_bytes(), id=str(path.relative_to(GOLDEN)))
            for path in sorted(GOLDEN.glob("*/*.pdf"))
        ),
    ],
)
def test_interpreter_draws_what_pdfminers_draws(content: bytes) -> None:
    """Every character, line and rectangle at the same place, through either interpreter."""
    ours = _layout(content, ContentInterpreter)
    assert any("LTChar" in page for page in ours)
    assert ours == _layout(content, PDFPageInterpreter)


def test_read_page_uses_the_fast_reader() -> None:
    content = _sample_pdf()
    with pdfplumber.open(io.BytesIO(content)) as document:
        page = document.pages[0]
        streams = [stream.get_data() for stream in page.page_obj.contents]
        assert content_objects(streams) is not None
        read = read_page(document.rsrcmgr, page.page_obj)
        assert "".join(glyph[0] for glyph in read.printed).startswith("Prior authorization (PA)")
        assert read.horizontal_rules >= 3
