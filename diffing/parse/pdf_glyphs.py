"""The glyphs of one PDF page, fast: text, box, size and weight of each, and the page's rules.

pdfplumber builds a layout object (and then a dict) per glyph, which is most of the cost of
reading a PDF. This pdfminer device (the engine under pdfplumber) records a small tuple instead
and computes the same boxes, about twice as fast. pdfplumber still opens the document and finds
the tables, on the few pages that have ruling lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import accumulate, repeat
from operator import add, mul
from typing import Any, Final, NamedTuple

from pdfminer.converter import PDFLayoutAnalyzer
from pdfminer.layout import LTContainer, LTItem, LTLine, LTPage, LTRect
from pdfminer.pdffont import PDFFont, PDFUnicodeNotDefined
from pdfminer.pdfinterp import PDFResourceManager
from pdfminer.pdfpage import PDFPage

from diffing.parse.pdf_content import ContentInterpreter

_BOLD = re.compile(r"bold|black|heavy|semibold|demi|,b$|-b$", re.IGNORECASE)


# One glyph: text, x0, x1, top, bottom, size, bold; `top` and `bottom` are measured down from
# the top of the page. A plain tuple: a page has thousands, and a NamedTuple's Python-level
# constructor was a tenth of reading one.
Glyph = tuple[str, float, float, float, float, float, bool]
TEXT: Final = 0
X0: Final = 1
X1: Final = 2
TOP: Final = 3
BOTTOM: Final = 4
SIZE: Final = 5
BOLD: Final = 6


# For isinstance: a union `int | float` written in a loop is built anew at every turn
_NUMBER: Final = (int, float)
_DECODED: Final = (bytearray, tuple)


class PageGlyphs(NamedTuple):
    glyphs: list[Glyph]
    horizontal_rules: int  # lines, hairline rectangles and box sides a table grid is made of
    vertical_rules: int
    # For the table finder, so that it need not read the page a second time: the page's shapes
    # (pdfminer's layout, without characters), its height, and the glyphs as printed (before
    # an underlined ">" was read as "≥").
    layout: LTPage
    height: float
    printed: list[Glyph]


class _GlyphDevice(PDFLayoutAnalyzer):
    """Records upright glyphs on the page; rotated text (side notes, watermarks) is left out."""

    # It keeps no graphic state (colours, line widths) with a glyph: the interpreter need not
    # copy one for every string it shows (see `ContentInterpreter.do_TJ`).
    keeps_no_state: Final = True

    def __init__(self, resources: PDFResourceManager) -> None:
        super().__init__(resources, pageno=1, laparams=None)
        self.glyphs: list[Glyph] = []
        self.width = self.height = 0.0
        # Per font (by identity, fonts live as long as the resource manager): vertical writing,
        # descent, bold, and the widths of the glyphs met so far. pdfminer recomputes them for
        # every glyph, which is a large part of its cost.
        self._fonts: dict[int, tuple[bool, float, bool, dict[int, float]]] = {}
        self._texts: dict[int, dict[int, str | None]] = {}  # per font: cid -> text (None: none)
        # Per font, size and horizontal scaling: cid -> advance (width by size by scaling)
        self._advances: dict[tuple[int, float, float], dict[int, float]] = {}

    def begin_page(self, page: PDFPage, ctm: Any) -> None:
        super().begin_page(page, ctm)
        self.width, self.height = self.cur_item.x1, self.cur_item.y1

    def render_char(
        self,
        matrix: Any,
        font: PDFFont,
        fontsize: float,
        scaling: float,
        rise: float,
        cid: int,
        ncs: Any,
        graphicstate: Any,
    ) -> float:
        info = self._fonts.get(id(font))
        if info is None:
            bold = bool(_BOLD.search(str(font.fontname)))
            info = self._fonts[id(font)] = (font.is_vertical(), font.get_descent(), bold, {})
        vertical, descent, bold, widths = info
        width = widths.get(cid)
        if width is None:
            width = widths[cid] = font.char_width(cid)
        advance: float = width * fontsize * scaling
        a, b, c, d, e, f = matrix
        if vertical or not (a * d * scaling > 0 and b * c <= 0):
            return advance
        try:
            text = font.to_unichr(cid)
        except PDFUnicodeNotDefined:
            return advance  # a glyph without a Unicode mapping carries no text we can use
        # The same box pdfminer's LTChar computes: the advance by the font size, from the
        # descent up, through the text matrix.
        low = descent * fontsize + rise
        high = low + fontsize
        if b == 0 and c == 0:  # neither rotated nor skewed: the usual case, and quick
            x0, x1 = (e, e + a * advance) if a > 0 else (e + a * advance, e)
            y0, y1 = (f + d * low, f + d * high) if d > 0 else (f + d * high, f + d * low)
        else:
            x_a, x_b = e + c * low, e + c * high
            y_a, y_b = f + d * low, f + d * high
            xs = (x_a, x_b, x_a + a * advance, x_b + a * advance)
            ys = (y_a, y_b, y_a + b * advance, y_b + b * advance)
            x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        size = y1 - y0
        if not text or size < 1 or x1 < 0 or x0 > self.width or y1 < 0 or y0 > self.height:
            return advance  # invisible specks and text placed off the page
        self.glyphs.append((text, x0, x1, self.height - y1, self.height - y0, size, bold))
        return advance

    def render_string_horizontal(
        self,
        seq: Any,
        matrix: Any,
        pos: Any,
        font: PDFFont,
        fontsize: float,
        scaling: float,
        charspace: float,
        wordspace: float,
        rise: float,
        dxscale: float,
        ncs: Any,
        graphicstate: Any,
    ) -> Any:
        """pdfminer's loop with `render_char` inlined for the usual case (upright text, neither
        rotated nor skewed): one call per string instead of a call and a matrix per glyph,
        with the same arithmetic, so the same boxes."""
        a, b, c, d, e0, f0 = matrix
        info = self._fonts.get(id(font))
        if info is None:
            bold = bool(_BOLD.search(str(font.fontname)))
            info = self._fonts[id(font)] = (font.is_vertical(), font.get_descent(), bold, {})
        vertical, descent, bold, widths = info
        if vertical or b != 0 or c != 0 or not (a * d * scaling > 0):
            return super().render_string_horizontal(
                seq,
                matrix,
                pos,
                font,
                fontsize,
                scaling,
                charspace,
                wordspace,
                rise,
                dxscale,
                ncs,
                graphicstate,
            )
        texts = self._texts.get(id(font))
        if texts is None:
            texts = self._texts[id(font)] = {}
        low = descent * fontsize + rise
        high = low + fontsize
        # y0, y1 of every glyph of the string: the same as render_char's for b == c == 0
        width, height = self.width, self.height
        append = self.glyphs.append
        (x, y) = pos
        needcharspace = False
        advances: dict[int, float] | None = None
        for obj in seq:
            if isinstance(obj, _NUMBER):
                x -= obj * dxscale
                needcharspace = True
            elif isinstance(obj, bytes):
                cids = font.decode(obj)
                if not isinstance(cids, _DECODED):
                    cids = tuple(cids)  # a CMap decodes lazily: read it once, use it thrice
                if not charspace and not (wordspace and 32 in cids):
                    # No spacing between glyphs (nearly every string): a list at a time
                    if advances is None:
                        key = (id(font), fontsize, scaling)
                        advances = self._advances.get(key)
                        if advances is None:
                            advances = self._advances[key] = {}
                    if not advances.keys() >= set(cids):
                        for cid in cids:
                            if cid not in advances:
                                learned = self._learn(cid, font, widths, texts)
                                advances[cid] = learned * fontsize * scaling
                    x = self._string(cids, x, y, matrix, low, high, bold, advances, texts)
                    continue
                for cid in cids:
                    if needcharspace:
                        x += charspace
                    glyph_width = widths.get(cid)
                    if glyph_width is None:
                        glyph_width = widths[cid] = font.char_width(cid)
                    advance = glyph_width * fontsize * scaling
                    if cid in texts:
                        text = texts[cid]
                    else:
                        try:
                            text = font.to_unichr(cid)
                        except PDFUnicodeNotDefined:
                            text = None
                        texts[cid] = text
                    if text:
                        e = x * a + y * c + e0
                        f = x * b + y * d + f0
                        x0, x1 = (e, e + a * advance) if a > 0 else (e + a * advance, e)
                        y0, y1 = (
                            (f + d * low, f + d * high) if d > 0 else (f + d * high, f + d * low)
                        )
                        size = y1 - y0
                        if not (size < 1 or x1 < 0 or x0 > width or y1 < 0 or y0 > height):
                            append((text, x0, x1, height - y1, height - y0, size, bold))
                    x += advance
                    if cid == 32 and wordspace:
                        x += wordspace
                    needcharspace = True
        return (x, y)

    def _learn(
        self, cid: int, font: PDFFont, widths: dict[int, float], texts: dict[int, str | None]
    ) -> float:
        """The width of a glyph met for the first time at this size; its text, if not known."""
        glyph_width = widths.get(cid)
        if glyph_width is None:
            glyph_width = widths[cid] = font.char_width(cid)
        if cid not in texts:
            try:
                texts[cid] = font.to_unichr(cid)
            except PDFUnicodeNotDefined:
                texts[cid] = None
        return glyph_width

    def _string(
        self,
        cids: bytearray | tuple[int, ...],
        x: float,
        y: float,
        matrix: Any,
        low: float,
        high: float,
        bold: bool,
        advances: dict[int, float],
        texts: dict[int, str | None],
    ) -> float:
        """The glyphs of one string printed without character or word spacing (upright, neither
        rotated nor skewed); returns where the next one starts. The glyph loop above, a list at
        a time: each glyph starts where the one before it ends (the same additions in the same
        order, so the same boxes), and the string's glyphs share their top, bottom and size."""
        steps = list(map(advances.__getitem__, cids))
        starts = list(accumulate(steps, initial=x))
        end = starts.pop()
        a, _, _, d, e0, f0 = matrix
        f = y * d + f0
        y0, y1 = (f + d * low, f + d * high) if d > 0 else (f + d * high, f + d * low)
        size = y1 - y0
        height, width = self.height, self.width
        if not steps or size < 1 or y1 < 0 or y0 > height:
            return end
        # start * a + e0 and then that + a * step, as above, with C's loops instead of Python's
        if a > 0:
            lefts = list(map(add, map(mul, starts, repeat(a)), repeat(e0)))
            rights = list(map(add, lefts, map(mul, repeat(a), steps)))
        else:
            rights = list(map(add, map(mul, starts, repeat(a)), repeat(e0)))
            lefts = list(map(add, rights, map(mul, repeat(a), steps)))
        chars = list(map(texts.__getitem__, cids))
        top, bottom = height - y1, height - y0
        if all(chars) and min(rights) >= 0 and max(lefts) <= width:
            self.glyphs.extend(
                zip(chars, lefts, rights, repeat(top), repeat(bottom), repeat(size), repeat(bold))
            )
        else:  # glyphs without text, or partly off the page
            self.glyphs.extend(
                (text, x0, x1, top, bottom, size, bold)
                for text, x0, x1 in zip(chars, lefts, rights, strict=True)
                if text and not (x1 < 0 or x0 > width)
            )
        return end


# Word processors print "≥" and "≤" as ">" and "<" underlined by a short rule of their own width.
_UNDERLINED = {">": "≥", "<": "≤"}


def read_page(resources: PDFResourceManager, page: PDFPage) -> PageGlyphs:
    device = _GlyphDevice(resources)
    ContentInterpreter(resources, device).process_page(page)
    horizontal = vertical = 0
    underlines: list[tuple[float, float, float]] = []  # x0, x1, top of short hairlines
    for item in _shapes(device.cur_item):
        if item.height <= 1.5 and 2 < item.width < 20:
            underlines.append((item.x0, item.x1, device.height - item.y1))
        # A filled box without a border is a background or a highlight: alone it never makes
        # a grid worth a (costly) pass of the table finder.
        wide, tall = item.width > 2, item.height > 2
        if wide and tall and not (isinstance(item, LTRect) and item.stroke):
            continue
        horizontal += 2 if wide and tall else int(wide)
        vertical += 2 if wide and tall else int(tall)
    printed = glyphs = device.glyphs
    if underlines and any(g[TEXT] in _UNDERLINED for g in glyphs):
        glyphs = [_underlined(g, underlines) if g[TEXT] in _UNDERLINED else g for g in glyphs]
    layout = device.cur_item
    assert isinstance(layout, LTPage)  # end_page leaves the page it built
    return PageGlyphs(glyphs, horizontal, vertical, layout, device.height, list(printed))


def _underlined(glyph: Glyph, underlines: list[tuple[float, float, float]]) -> Glyph:
    """ ">" with a hairline of its own width under it (within its box's lower half) is "≥"."""
    text, left, right, glyph_top, glyph_bottom, size, bold = glyph
    width = right - left
    for x0, x1, top in underlines:
        same_width = abs(x0 - left) <= 1.5 and abs(x1 - right) <= 1.5 and x1 - x0 < 2 * width
        if same_width and glyph_top + size / 2 <= top <= glyph_bottom + 2:
            return (_UNDERLINED[text], left, right, glyph_top, glyph_bottom, size, bold)
    return glyph


def _shapes(container: Iterable[LTItem]) -> Iterable[LTRect | LTLine]:
    for item in container:
        if isinstance(item, LTRect | LTLine):
            yield item
        elif isinstance(item, LTContainer):
            yield from _shapes(item)  # shapes inside form XObjects
