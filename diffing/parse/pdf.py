"""PDF policies (UHC, Cigna, Anthem …) to a `PolicyDocument`, with pdfplumber.

Lines are built from the page's glyphs (`pdf_glyphs`), page furniture (running headers and
footers, page numbers, stamps) is dropped, and wrapped lines are joined into paragraphs using the
layout: a vertical gap ends a paragraph, a full line continues it. So the same text printed with
other page breaks, margins or font size gives the same sections. Tables come from pdfplumber's
table finder and leave the running text.
"""

from __future__ import annotations

import io
import itertools
import statistics
import warnings
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress, groupby
from operator import itemgetter, lt
from typing import Any

import pdfplumber
from pdfminer.pdfdocument import PDFDocument
from pdfminer.pdfparser import PDFParser
from pdfminer.pdftypes import resolve1

from diffing.model import PolicyDocument, Table
from diffing.parse.clean import (
    Line,
    PageLines,
    Paragraph,
    clean_line,
    edge_noise,
    ends_sentence,
    is_list_item,
    is_stamp,
    page_edges,
    reflow,
    vocabulary,
)
from diffing.parse.inflate import (
    MAX_DOCUMENT_INFLATED_BYTES,
    MAX_STREAM_INFLATED_BYTES,
    InflateBudget,
    inflate_budget,
)
from diffing.parse.meta import header_meta, merge_meta
from diffing.parse.pdf_glyphs import (
    BOLD,
    BOTTOM,
    SIZE,
    TEXT,
    TOP,
    X0,
    X1,
    Glyph,
    PageGlyphs,
    read_page,
)
from diffing.parse.sections import build_sections, is_known_heading
from diffing.parse.tables import PdfTable, merge_split_tables, table_rows
from monitor.errors import ParseError

_HEADER_CHARS = 4000
_WORD_GAP = 0.17  # of the font size: a wider gap between two glyphs is a space
_SPACE_WIDTH = 0.3  # of the font size, generous: a wrapped line must always look full
_PARAGRAPH_GAP = 0.45  # of the font size, on top of the usual line gap
_HEADING_SCALE = 1.15  # a line this much larger than the body text is a heading
_TITLE_SCALE = 1.2


@dataclass(slots=True)
class _PdfLine:
    text: str
    page: int
    x0: float
    x1: float
    top: float
    bottom: float
    size: float  # the usual glyph size of the line's letters (a superscript does not count)
    min_size: float  # the smallest: a heading is large throughout
    bold: bool
    first_word: float  # width of the first word, for "would it have fitted on the line above"
    chars: int = 0
    heading: bool = False
    standalone: bool = False
    banner: bool = False  # above the title on page 1: the payer's name, the policy type


@dataclass(slots=True)
class _Page:
    number: int
    lines: list[_PdfLine]
    tables: list[PdfTable]


def parse_pdf(
    content: bytes,
    *,
    document_id: str,
    max_pages: int,
    references: Sequence[PageLines] = (),
    max_stream_bytes: int = MAX_STREAM_INFLATED_BYTES,
    max_document_bytes: int = MAX_DOCUMENT_INFLATED_BYTES,
) -> PolicyDocument:
    """The sections and tables of a PDF. Its compressed streams may inflate to at most
    `max_stream_bytes` each and `max_document_bytes` together, or it is a ParseError."""
    if b"%PDF-" not in content[:1024]:
        raise ParseError(document_id, "not a PDF: no %PDF- header")
    if b"%%EOF" not in content[-4096:]:
        raise ParseError(document_id, "truncated PDF: no %%EOF marker at the end")
    with inflate_budget(max_stream_bytes, max_document_bytes) as budget:
        pages, info_title = _read_within_budget(content, document_id, max_pages, budget)
    if not any(page.lines or page.tables for page in pages):
        raise ParseError(document_id, "no text")
    return _document(pages, info_title, references)


def _read_within_budget(
    content: bytes, document_id: str, max_pages: int, budget: InflateBudget
) -> tuple[list[_Page], str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pages, info_title = _read(content, document_id, max_pages)
    except (ParseError, MemoryError):
        raise
    except Exception as exc:  # pdfminer raises anything from KeyError to struct.error
        if budget.exceeded:
            raise ParseError(document_id, f"decompression bomb: {budget.exceeded}") from None
        raise ParseError(document_id, _reason(exc)) from exc
    if budget.exceeded:  # pdfminer swallowed it somewhere (a font, an image): still refused
        raise ParseError(document_id, f"decompression bomb: {budget.exceeded}")
    return pages, info_title


def _reason(exc: Exception) -> str:
    inner = exc.args[0] if exc.args and isinstance(exc.args[0], Exception) else exc
    name = type(inner).__name__
    if "Password" in name or "Encrypt" in name:
        return "encrypted PDF: a password is needed to read it"
    if name in {"PDFSyntaxError", "PSEOF", "PDFNoValidXRef", "PSSyntaxError"}:
        return f"corrupt PDF ({name}: {inner})"
    return f"unreadable PDF ({name}: {inner})"


def _read(content: bytes, document_id: str, max_pages: int) -> tuple[list[_Page], str]:
    declared = _declared_pages(content)
    if declared is not None and declared > max_pages:
        # Refused from the page tree's /Count, before pdfplumber, which lists every page (on
        # open or close): for 3,000 pages that alone takes seconds.
        raise ParseError(document_id, f"PDF has {declared} pages, more than {max_pages}")
    with pdfplumber.open(io.BytesIO(content)) as pdf:
        count = len(pdf.pages)
        if count == 0:
            raise ParseError(document_id, "PDF has no pages")
        if count > max_pages:
            raise ParseError(document_id, f"PDF has {count} pages, more than {max_pages}")
        pages = []
        for page in pdf.pages:
            pages.append(_read_page(pdf, page))
            page.close()
        title = pdf.metadata.get("Title") if isinstance(pdf.metadata, dict) else None
        title = clean_line(title) if isinstance(title, str) else ""
        # Word's PDF export names the file, not the policy: "Microsoft Word - cg-surg-90.docx".
        return pages, "" if title.lower().startswith("microsoft word") else title


def _declared_pages(content: bytes) -> int | None:
    """The page count the document's page tree declares, or None if it declares none."""
    try:
        tree = resolve1(PDFDocument(PDFParser(io.BytesIO(content))).catalog.get("Pages"))
        count = resolve1(tree.get("Count")) if isinstance(tree, dict) else None
    except Exception:  # a broken tree: let the full page walk find out
        return None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def _read_page(pdf: pdfplumber.PDF, page: pdfplumber.page.Page) -> _Page:
    read = read_page(pdf.rsrcmgr, page.page_obj)
    glyphs = read.glyphs
    tables: list[PdfTable] = []
    boxes: list[tuple[float, float, float, float]] = []
    if read.horizontal_rules >= 3 and read.vertical_rules >= 3:
        shared = _share_read(page, read)
        # The finder draws tables from the page's rules alone (its "lines" strategy reads no
        # characters); each table then reads only the characters inside it.
        chars = None if shared else page.chars
        for found in page.find_tables():
            inside = _chars_inside(read, page, found.bbox) if shared else None
            page.objects["char"] = inside if inside is not None else _within(chars, found.bbox)
            rows = table_rows(found.extract())
            if rows:
                x0, top, x1, bottom = found.bbox
                tables.append(PdfTable(page.page_number, top, rows, page.page_number))
                boxes.append((x0, top, x1, bottom))
    if boxes:
        glyphs = [g for g in glyphs if not _inside(g, boxes)]
    return _Page(page.page_number, _lines(glyphs, page.page_number), tables)


def _share_read(page: pdfplumber.page.Page, read: PageGlyphs) -> bool:
    """Give pdfplumber's table finder the page as `read_page` read it (its shapes; the glyphs
    as pdfplumber's characters come later, table by table, from `_chars_inside`) instead of a
    second pass of pdfminer over the page, which was a third of a 20-page parse for two pages
    with tables. Only where the two agree on coordinates (no offset media box, no rotation);
    elsewhere pdfplumber reads the page (and False is returned)."""
    x0, y0 = page.mediabox[0], page.mediabox[1]
    if x0 != 0 or y0 != 0 or page.rotation % 360 or abs(page.height - read.height) > 1e-6:
        return False
    page._layout = read.layout
    page.objects["char"] = []  # the shared layout holds no characters
    return True


def _chars_inside(
    read: PageGlyphs, page: pdfplumber.page.Page, bbox: tuple[float, float, float, float]
) -> list[dict[str, Any]]:
    """The glyphs as printed, as pdfplumber's characters, whose middle is inside `bbox` (by
    `Table.extract`'s own test: every character of a row or cell of the table is among them)."""
    left, top_edge, right, bottom_edge = bbox
    doctop = page.initial_doctop
    number = page.page_number
    return [
        {
            "object_type": "char",
            "page_number": number,
            "text": text,
            "x0": x0,
            "x1": x1,
            "top": top,
            "bottom": bottom,
            "doctop": doctop + top,
            "width": x1 - x0,
            "height": bottom - top,
            "size": size,
            "upright": True,
        }
        for text, x0, x1, top, bottom, size, _ in read.printed
        if left <= (x0 + x1) / 2 < right and top_edge <= (top + bottom) / 2 < bottom_edge
    ]


def _within(
    chars: list[dict[str, Any]] | None, bbox: tuple[float, float, float, float]
) -> list[dict[str, Any]]:
    """pdfplumber's characters whose middle is inside `bbox`, by `Table.extract`'s test."""
    left, top, right, bottom = bbox
    return [
        char
        for char in chars or ()
        if left <= (char["x0"] + char["x1"]) / 2 < right
        and top <= (char["top"] + char["bottom"]) / 2 < bottom
    ]


def _inside(char: Glyph, boxes: Sequence[tuple[float, float, float, float]]) -> bool:
    x = (char[X0] + char[X1]) / 2
    y = (char[TOP] + char[BOTTOM]) / 2
    return any(x0 <= x <= x1 and top <= y <= bottom for x0, top, x1, bottom in boxes)


def _lines(chars: list[Glyph], page: int) -> list[_PdfLine]:
    """Group glyphs into lines by vertical overlap (so a bullet set a little lower still joins).

    Glyphs side by side with the same top and bottom (a line's string, usually) are placed
    together: each would find the same line as the first of them."""
    _reading_order(chars)
    # [band top, band bottom, glyphs]: plain lists and locals, this loop sees every run
    groups: list[list[Any]] = []
    for (top, bottom), same in groupby(chars, key=_TOP_BOTTOM):
        run = list(same)
        height = bottom - top
        target = None
        back = len(groups) - 1
        stop = back - 4 if back >= 4 else -1
        while back > stop:  # the line just begun, usually
            group = groups[back]
            band_top = group[0]
            band_bottom = group[1]
            low = band_top if band_top > top else top
            high = band_bottom if band_bottom < bottom else bottom
            band_height = band_bottom - band_top
            shorter = band_height if band_height <= height else height
            if high - low >= 0.5 * (shorter if shorter > 0.1 else 0.1):
                target = group
                break
            back -= 1
        if target is None:
            # a new line from the first printed glyph on (spaces before it belong to none)
            start = next((i for i, char in enumerate(run) if not char[0].isspace()), None)
            if start is not None:
                groups.append([top, bottom, run[start:]])
            continue
        target[2].extend(run)
        if height > target[1] - target[0] and not all(char[0].isspace() for char in run):
            target[0] = top
            target[1] = bottom
    lines = [
        _line(members, page, [band_top, band_bottom]) for band_top, band_bottom, members in groups
    ]
    return [line for line in lines if line.text]


def _reading_order(chars: list[Glyph]) -> None:
    """Sort the glyphs by top, then left, keeping the order they were printed in between equals
    (what one sort by the pair does). Printed nearly in that order already, they are sorted by
    top alone, on floats (list.sort's quick comparison: a quarter of the time of pairs), and
    then only the rows of the same top whose glyphs go back leftwards are sorted by left."""
    chars.sort(key=_TOP)
    lefts = list(map(_LEFT, chars))
    backwards = list(compress(range(1, len(chars)), map(lt, lefts[1:], lefts)))
    if not backwards:
        return
    tops = list(map(_TOP, chars))
    done = 0  # the end of the last row sorted
    for i in backwards:
        if i < done or tops[i] != tops[i - 1]:
            continue  # in the row just sorted, or a new row begins here
        begin = bisect_left(tops, tops[i])
        done = bisect_right(tops, tops[i])
        chars[begin:done] = sorted(chars[begin:done], key=_LEFT)


_TOP = itemgetter(TOP)
_TOP_BOTTOM = itemgetter(TOP, BOTTOM)
_LEFT = itemgetter(X0)
_RIGHT = itemgetter(X1)
_TEXT = itemgetter(TEXT)
_SIZE = itemgetter(SIZE)
_BOLD = itemgetter(BOLD)


def _line(members: list[Glyph], page: int, band: list[float]) -> _PdfLine:
    members.sort(key=_LEFT)
    # The first printed glyph (a line has one: it began with one) starts the text; spaces
    # before it count for nothing. The loop then sees every other glyph: locals only.
    start = 0
    while members[start][TEXT].isspace():
        start += 1
    first = members[start]
    last_text, last_x0, last_x1, _, _, last_size, _ = first
    parts = [last_text]
    glyphs = [first]
    add_part, add_glyph = parts.append, glyphs.append
    word_gap = _WORD_GAP
    first_word_end = None
    spaced = False
    for char in members[start + 1 :]:
        text, x0, x1, _, _, size, _ = char
        if text.isspace():
            spaced = True
            continue
        add_glyph(char)
        if text == last_text and abs(x0 - last_x0) < min(0.5 * (last_x1 - last_x0), 0.15 * size):
            continue  # the same glyph printed twice to fake bold
        if spaced or x0 - last_x1 > word_gap * (size if size < last_size else last_size):
            add_part(" ")
            if first_word_end is None:
                first_word_end = last_x1
        add_part(text)
        last_text, last_x0, last_x1, last_size = text, x0, x1, size
        spaced = False
    first = glyphs[0]
    letters = list(compress(glyphs, map(str.isalpha, map(_TEXT, glyphs)))) or glyphs
    sizes = list(map(_SIZE, letters))
    return _PdfLine(
        text=clean_line("".join(parts)),
        page=page,
        x0=first[X0],
        x1=max(map(_RIGHT, glyphs)),
        top=band[0],
        bottom=band[1],
        size=statistics.median_low(sizes),
        min_size=min(sizes),
        bold=all(map(_BOLD, letters)),
        first_word=(first_word_end if first_word_end is not None else glyphs[-1][X1]) - first[X0],
        chars=len(glyphs),
    )


def _document(
    pages: list[_Page], info_title: str, references: Sequence[PageLines] = ()
) -> PolicyDocument:
    printed = [[line.text for line in page.lines] for page in pages]
    noise = edge_noise(printed, references=references)
    for p, page in enumerate(pages):
        page.lines = [
            line
            for i, line in enumerate(page.lines)
            if (p, i) not in noise and not is_stamp(line.text)
        ]
    lines = [line for page in pages for line in page.lines]
    body_size = _body_size(lines)
    title = _take_title(pages, body_size) or info_title
    lines = [line for page in pages for line in page.lines]
    _mark_headings(lines, body_size)
    lines = _merge_heading_lines(lines, _right_edge(lines))
    events = _events(lines, [t for page in pages for t in page.tables])
    words = vocabulary(line.text for line in lines)

    paragraphs: list[Paragraph] = []
    anchors: list[tuple[int, PdfTable]] = []
    segment: list[Line] = []
    for event in events:
        if isinstance(event, PdfTable):
            paragraphs.extend(reflow(segment, words))
            segment = []
            anchors.append((len(paragraphs) - 1, event))
        else:
            segment.append(event)
    paragraphs.extend(reflow(segment, words))
    sections, owner = build_sections(paragraphs, keep={i for i, _ in anchors if i >= 0})
    tables = tuple(
        Table(rows=tuple(t.rows), page=t.page, section=owner[i] if i >= 0 else None)
        for i, t in merge_split_tables(anchors)
    )
    header = "\n".join(p.text for p in paragraphs)[:_HEADER_CHARS]
    return PolicyDocument(
        title=title,
        content_type="pdf",
        sections=sections,
        tables=tables,
        meta=merge_meta(header_meta(header)),
        pages=len(pages),
        page_edges=page_edges(printed),
    )


def _body_size(lines: Sequence[_PdfLine]) -> float:
    sizes: Counter[float] = Counter()
    for line in lines:
        sizes[round(line.size * 2) / 2] += line.chars
    return sizes.most_common(1)[0][0] if sizes else 10.0


def _take_title(pages: list[_Page], body_size: float) -> str:
    """The largest text at the top of page 1 is the title; it leaves the body."""
    first = pages[0].lines
    if not first:
        return ""
    stop = next((i for i, line in enumerate(first) if is_known_heading(line.text)), len(first))
    candidates = first[:stop]
    if not candidates:
        return ""
    largest = max(line.size for line in candidates)
    if largest < body_size * _TITLE_SCALE:
        return ""
    start = next(i for i, line in enumerate(candidates) if line.size >= largest - 0.5)
    end = start
    while end + 1 < len(candidates) and candidates[end + 1].size >= largest - 0.5:
        end += 1
    title = " ".join(line.text for line in candidates[start : end + 1])
    for line in first[:start]:
        line.banner = True
    pages[0].lines = first[:start] + first[end + 1 :]
    return title


def _mark_headings(lines: Sequence[_PdfLine], body_size: float) -> None:
    """Known headings and large lines start sections; large lines smaller than the usual
    section heading are sub-headings (their own paragraph, inside the section)."""
    known: list[_PdfLine] = []
    large: list[_PdfLine] = []
    for line in lines:
        text = line.text
        words = text.split()
        if not words or len(text) > 120 or text[-1] in ".,;" or is_list_item(text):
            continue
        styled = line.bold or line.size >= body_size * 1.05 or text.isupper()
        if is_known_heading(text) and (styled or text.endswith(":")):
            known.append(line)
        elif (
            line.min_size >= body_size * _HEADING_SCALE
            and len(words) <= 15
            and sum(c.isalpha() for c in text) >= 3
        ):
            large.append(line)
    sizes = Counter(round(line.size * 2) / 2 for line in known or large)
    level = sizes.most_common(1)[0][0] - 0.5 if known else max(sizes, default=0.0) - 0.5
    for line in known + large:
        if line.size >= level and not line.banner:
            line.heading = True
        else:
            line.standalone = True


def _merge_heading_lines(lines: list[_PdfLine], right_edge: float) -> list[_PdfLine]:
    """A large heading wrapped over two lines is one heading."""
    out: list[_PdfLine] = []
    for line in lines:
        prev = out[-1] if out else None
        if (
            prev is not None
            and (prev.heading, prev.standalone) == (line.heading, line.standalone)
            and (line.heading or line.standalone)
            and not is_known_heading(prev.text)
            and not is_known_heading(line.text)
            and prev.page == line.page
            and abs(prev.size - line.size) < 0.5
            and line.top - prev.bottom < 0.6 * line.size
            and prev.x1 + _SPACE_WIDTH * line.size + line.first_word > right_edge
        ):
            prev.text = f"{prev.text} {line.text}"
            prev.bottom = line.bottom
            continue
        out.append(line)
    return out


def _events(lines: list[_PdfLine], tables: list[PdfTable]) -> list[Line | PdfTable]:
    """Lines (as `clean.Line`, with the layout's paragraph evidence) and tables in page order."""
    right_edge = _right_edge(lines)
    typical_gap = _typical_gap(lines)
    converted: list[tuple[tuple[int, float], Line | PdfTable]] = []
    previous: _PdfLine | None = None
    for line in lines:
        brk: bool | None = None
        if previous is not None:
            brk = _break_between(previous, line, right_edge, typical_gap)
        event = Line(line.text, line.page, line.heading, brk, line.standalone)
        converted.append(((line.page, line.top), event))
        previous = line
    converted.extend(((t.page, t.top), t) for t in tables)
    converted.sort(key=lambda pair: pair[0])
    return [event for _, event in converted]


def _break_between(
    previous: _PdfLine, line: _PdfLine, right_edge: float, typical_gap: float
) -> bool:
    """Does a new paragraph start at `line`? A gap says yes, a full line above says no."""
    gap = (line.top - previous.bottom) / line.size
    if previous.page == line.page and gap > typical_gap + _PARAGRAPH_GAP:
        return True
    text, above = line.text, previous.text
    if above[-1:] in "-\u00ad" and above[-2:-1].isalpha() and text[:1].isalnum():
        return False  # a word broken at the line end: the line was full
    lower = text[:1].islower() and not is_list_item(text)  # "o Class II …" is a bullet
    if above.endswith(":"):
        return not lower  # "…the following:" then a list, wrapped or not
    if previous.x1 + _SPACE_WIDTH * line.size + line.first_word > right_edge:
        return False  # the first word would not have fitted above: the line wrapped
    return not (lower and not ends_sentence(above))


def _right_edge(lines: Sequence[_PdfLine]) -> float:
    """Where full lines end: the median over pages of the rightmost line end."""
    by_page: dict[int, float] = {}
    for line in lines:
        by_page[line.page] = max(by_page.get(line.page, 0.0), line.x1)
    return statistics.median(by_page.values()) if by_page else 0.0


def _typical_gap(lines: Sequence[_PdfLine]) -> float:
    gaps = [
        (b.top - a.bottom) / b.size
        for a, b in itertools.pairwise(lines)
        if a.page == b.page and -0.5 < (b.top - a.bottom) / b.size < 3
    ]
    return statistics.median(gaps) if gaps else 0.3
