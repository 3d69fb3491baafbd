"""Text cleaning shared by the format parsers: page furniture, stamps, list markers, reflow.

Everything here works on lines of already-extracted text, so the PDF and plain-text parsers
make the same decisions; layout facts a PDF knows (a paragraph gap, a full line) come in as
`Line.break_before`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from diffing.text import normalize_text

# Symbol-font bullets (Wingdings, Symbol) land in the Private Use Area; at the start of a line
# they are list markers, anywhere else they are arrows and check marks that carry no text.
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")
_LEADING_PRIVATE_USE = re.compile("^(\\s*)[\ue000-\uf8ff]+")
_SOFT_HYPHEN = "\u00ad"
# Dashes NFKC leaves alone (non-breaking and figure hyphens, minus): all are a plain hyphen here.
_DASHES = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2212": "-"})

BULLET = re.compile(
    r"^(?:[•●○◦▪▫■□►▶➢➤✓✔·*\-–—§]|o(?=\s+[A-Z(]))\s+",
)
# Glyphs that only ever mark a list item; "-", "*" and "12." can also start a wrapped line.
_BULLET_GLYPH = re.compile(r"^(?:[•●○◦▪▫■□►▶➢➤✓✔]|o(?=\s+[A-Z(]))\s")
# How an item of a criteria list ends: the next numbered line is the next item.
_ITEM_END = re.compile(r"(?:[.;:!?]|\b(?:and|or))[\"')\]”’]*$")
_NUMBERED = re.compile(
    r"^(?:\(?\d{1,2}[.)]|\(?[A-Za-z][.)]|\(?(?:i|ii|iii|iv|v|vi|vii|viii|ix|x|xi|xii)[.)]"
    r"|\((?:\d{1,2}|[A-Za-z]|[ivx]{1,4})\))\s+",
)
_SENTENCE_END = re.compile(r"[.!?:;][\"')\]”’]*$")
# A line ending in a comma or a preposition or article goes on ("…Testing for\nInherited …");
# "and"/"or" are left out: they end items of criteria lists set without bullets.
_OPEN_END = re.compile(r"(?:[,(/&–—]|\b(?:for|of|the|to|in|with|a|an|by|on|at|from|as|than))$")
_CONTINUATION_START = re.compile(r"^[a-z0-9(\[,;:)%&’'\"]")

# Page furniture and stamps (matched against a whole, clean line).
_PAGE_NUMBER = re.compile(
    r"^(?:-\s*)?(?:page\s*:?\s*)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?(?:\s*-)?$", re.IGNORECASE
)
_PAGE_OF = re.compile(r"^.{0,120}?\bpage\s*:?\s*\d{1,4}\s*(?:of|/)\s*\d{1,4}\s*$", re.IGNORECASE)
_STAMP = re.compile(
    r"^(?:printed\s+(?:on|at|by)\b|printed\s*:|date\s+printed\b|"
    r"(?:page\s+)?generated\s+(?:on\b|at\b|by\b|from\b|\d)|generated\s*:|"
    r"downloaded\s+(?:on|from)\b|retrieved\s+(?:on|from)\b|"
    r"proprietary\s+information\s+of\b|"
    r"(?:copyright\s*)?©\s*(?:copyright\s*)?\d{4}|copyright\s+\d{4}\b)",
    re.IGNORECASE,
)
# A table-of-contents row has dot leaders and a page number, perhaps with a sidebar's text
# beside it; not "Number ....... 0052" or "Effective Date ....... 10/11/2025".
_TOC_LINE = re.compile(
    r"(?:\.\s?){4,}\s*[1-9]\d{0,2}(?![\d/.,-])|^table\s+of\s+contents\b", re.IGNORECASE
)
_DIGITS = re.compile(r"\d+")
_WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")

# First parts of hyphenated compounds, used when the document itself gives no evidence of how a
# word broken at a line end is spelt ("medium-\npotency" stays, "medi-\ncation" is joined).
_COMPOUND_HEADS = frozenset(
    " ".join(
        (
            "non pre post self co anti multi semi sub inter intra extra over under well long",
            "short high low medium mid full part half first second third one two three four",
            "five six single double day week month year age life cost time follow step add on",
            "off all cross near tumor tumour gene drug dose site end",
        )
    ).split()
)


@dataclass(frozen=True, slots=True)
class Line:
    """One line of extracted text, with what the format parser knows about it.

    `break_before`: True when the layout says a new paragraph starts here (a vertical gap),
    False when the previous line was full so this one must continue it, None when only the text
    can tell.
    """

    text: str
    page: int | None = None
    heading: bool = False
    break_before: bool | None = None
    standalone: bool = False  # a sub-heading: a paragraph of its own, but no new section


@dataclass(frozen=True, slots=True)
class Paragraph:
    """A reflowed paragraph (or a heading) with the offsets at which its pages start."""

    text: str
    heading: bool = False
    page_marks: tuple[tuple[int, int], ...] = ()


def clean_line(text: str) -> str:
    """One line, normalised: symbol-font bullets made plain, spaces and quotes straightened."""
    if text.isascii():  # no private-use glyph, soft hyphen or dash to mend: most HTML lines
        return normalize_text(text.replace("\n", " "))
    text = _LEADING_PRIVATE_USE.sub(r"\1• ", text)
    text = _PRIVATE_USE.sub("", text)
    ends_soft = text.rstrip().endswith(_SOFT_HYPHEN)
    text = normalize_text(text.replace("\n", " ").translate(_DASHES))
    # normalize_text drops soft hyphens; one at a line end marks a word broken by the typesetter.
    return text + _SOFT_HYPHEN if ends_soft and text else text


def strip_bullet(text: str) -> str:
    return BULLET.sub("", text, count=1)


def is_list_item(text: str) -> bool:
    return bool(BULLET.match(text) or _NUMBERED.match(text))


def ends_sentence(text: str) -> bool:
    return bool(_SENTENCE_END.search(text))


def is_stamp(text: str) -> bool:
    """A line that is never content: "Printed on …", "Proprietary Information of …", TOC rows."""
    return bool(_STAMP.match(text) or _TOC_LINE.search(text))


def is_page_number(text: str) -> bool:
    return bool(_PAGE_NUMBER.match(text) or _PAGE_OF.match(text))


def furniture_key(text: str) -> str:
    """Compare header/footer lines with their numbers blanked: "Page 3 of 9" == "Page 4 of 9"."""
    return _DIGITS.sub("#", " ".join(text.lower().split()))


# Page furniture that may sit anywhere in a header or footer line, even on a one-page document
# ("Adbry (tralokinumab) Page 1 Printed 12/15/2025 Proprietary Information of Acme Health").
_EDGE_STAMP = re.compile(
    r"\bpage\s*:?\s*\d{1,4}\s*(?:of|/)\s*\d{1,4}\b|"
    r"\bprinted\s*(?:on\s*)?:?\s*\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b|"
    r"\bproprietary\s+information\s+of\b|\bconfidential\s+and\s+proprietary\b|"
    r"\buncontrolled\s+(?:copy\s+)?when\s+printed\b|\ball\s+rights\s+reserved\b",
    re.IGNORECASE,
)
_EDGE_LINE_CHARS = 200
_PAGE_WORD = re.compile(r"\bpage\s*:?\s*\d{1,4}\b", re.IGNORECASE)

PageLines = Sequence[Sequence[str]]  # one document: its pages, each a sequence of lines


EDGE_ZONE = 3


def page_edges(pages: PageLines, *, zone: int = EDGE_ZONE) -> tuple[tuple[str, ...], ...]:
    """Each page's first and last `zone` lines, for `PolicyDocument.page_edges`."""
    return tuple(
        tuple(lines) if len(lines) <= 2 * zone else (*lines[:zone], *lines[-zone:])
        for lines in pages
    )


def is_edge_stamp(text: str) -> bool:
    """A header or footer line by its words alone: page numbers, print stamps, notices."""
    if len(text) > _EDGE_LINE_CHARS:
        return False  # a paragraph (or a whole capture on one line) that mentions a page
    if is_page_number(text) or _EDGE_STAMP.search(text):
        return True
    # "Page 2" with a print or review date beside it ("Page 2 Printed 12/15/2025").
    return bool(_PAGE_WORD.search(text)) and bool(re.search(r"\d{1,2}/\d{1,2}/\d{2,4}", text))


def _edge_keys(pages: PageLines, zone: int) -> tuple[Counter[str], Counter[str]]:
    top: Counter[str] = Counter()
    bottom: Counter[str] = Counter()
    for lines in pages:
        top.update({furniture_key(t) for t in lines[:zone]})
        bottom.update({furniture_key(t) for t in lines[-zone:]})
    return top, bottom


def running_lines(
    pages: PageLines, *, zone: int = 3, references: Sequence[PageLines] = ()
) -> set[tuple[int, int]]:
    """(page index, line index) of running headers and footers.

    A line counts when its digit-blind form sits among the first or last `zone` lines of at
    least half the pages (and at least two). `references` are other documents printed the same
    way (the previous version of this document, other documents of the same source): a line
    also counts when it sits at the same edge of at least half the pages of one of them, and
    of two at least, so a one-page document loses the header its siblings share, while the
    title at the top of both versions of a one-page policy, and the first lines of text on
    one page of a two-page reference, stay.
    """
    need = max(2, (len(pages) + 1) // 2)
    top, bottom = _edge_keys(pages, zone) if len(pages) >= 2 else (Counter(), Counter())
    shared: list[tuple[Counter[str], Counter[str], int]] = []
    for reference in references:
        # A one-page reference cannot tell its header from its first lines of text.
        if len(reference) >= 2:
            ref_top, ref_bottom = _edge_keys(reference, zone)
            shared.append((ref_top, ref_bottom, max(2, (len(reference) + 1) // 2)))
    if not top and not shared:
        return set()
    found: set[tuple[int, int]] = set()
    for p, lines in enumerate(pages):
        for i, text in enumerate(lines):
            at_top, at_bottom = i < zone, i >= len(lines) - zone
            if not (at_top or at_bottom):
                continue  # only a page's edge lines can be running lines
            key = furniture_key(text)
            if sum(c.isalnum() for c in key) < 3 and "#" not in key:
                continue  # "or", "and", "•": too common in criteria lists to call furniture
            if (at_top and top[key] >= need) or (at_bottom and bottom[key] >= need):
                found.add((p, i))
                continue
            for ref_top, ref_bottom, ref_need in shared:
                if (at_top and ref_top[key] >= ref_need) or (
                    at_bottom and ref_bottom[key] >= ref_need
                ):
                    found.add((p, i))
                    break
    return found


def edge_noise(
    pages: PageLines, *, zone: int = 3, references: Sequence[PageLines] = ()
) -> set[tuple[int, int]]:
    """Running lines, plus page numbers and print stamps among the first or last lines of any
    page, a one-page document's included."""
    found = running_lines(pages, zone=zone, references=references)
    for p, lines in enumerate(pages):
        for i, text in enumerate(lines):
            near_edge = i < zone or i >= len(lines) - zone
            if near_edge and is_edge_stamp(text):
                found.add((p, i))
    return found


def vocabulary(texts: Iterable[str]) -> frozenset[str]:
    """Lower-case words (hyphenated compounds included) used to mend words broken at line ends."""
    words: set[str] = set()
    for text in texts:
        words.update(w.lower() for w in _WORD.findall(text))
    return frozenset(words)


_SUSPENDED_TAIL = frozenset({"and", "or", "nor", "to", "through", "versus", "vs"})
# "Prader- Willi", "FDA- approved", "recom- mended": a word broken at a line end by the
# typesetter, then put on one line by whoever captured the text.
_INLINE_BREAK = re.compile(r"(?<![\w-])([A-Za-z][A-Za-z-]*)- ([A-Za-z]+)\b")


def _hyphen_kept(head_word: str, tail: str, words: frozenset[str]) -> bool:
    """Is "head-tail" a hyphenated word (True) or one word broken in two (False)?"""
    hyphenated = f"{head_word}-{tail}".lower()
    joined = f"{head_word}{tail}".lower()
    if hyphenated in words:
        return True
    if joined in words:
        return False
    if tail[:1].isupper() or (len(head_word) >= 2 and head_word.isupper()):
        return True  # "Prader-Willi", "Non-Hodgkin", "FDA-approved": never one word
    last_part = head_word.rsplit("-", 1)[-1].lower()
    return last_part in _COMPOUND_HEADS or "-" in head_word


def _join_hyphenated(before: str, after: str, words: frozenset[str]) -> str:
    """Join a line ending in "-" with the next: drop the hyphen only for a word split in two."""
    stem = before[:-1]
    head = stem.rsplit(" ", 1)[-1]
    match = re.match(r"[A-Za-z]+", after)
    if not match or not head[-1:].isalpha() or not head.isascii():
        return before + after  # "8-\nweek", "COVID-\n19", "anti-\nTNF": a real hyphen
    head_word = re.sub(r"^[^A-Za-z]+", "", head)
    return before + after if _hyphen_kept(head_word, match.group(0), words) else stem + after


def join_broken_words(text: str, words: frozenset[str] = frozenset()) -> str:
    """ "Prader- Willi" -> "Prader-Willi", "recom- mended" -> "recommended" within a line.

    Left alone: "pre- and post-operative" (a suspended hyphen), "8- to 12-week", code ranges
    ("81120- 81121"), and a dash with spaces on both sides.
    """
    if "- " not in text:
        return text

    def mend(match: re.Match[str]) -> str:
        head, tail = match.group(1), match.group(2)
        if tail.lower() in _SUSPENDED_TAIL:
            return match.group(0)
        return f"{head}-{tail}" if _hyphen_kept(head, tail, words) else head + tail

    return _INLINE_BREAK.sub(mend, text)


def _continues(previous: str, line: Line) -> bool:
    """Text-only rule: does `line` continue the paragraph that `previous` ends?"""
    if ends_sentence(previous):
        return bool(re.match(r"^[a-z]", line.text)) and not previous.endswith(":")
    if line.text[:1].isdigit():
        # "for at least\n8 weeks" goes on; "CPT Codes Description\n81479 …" is a new row.
        return previous.rsplit(" ", 1)[-1][:1].islower()
    return bool(_CONTINUATION_START.match(line.text) or _OPEN_END.search(previous))


def reflow(lines: Iterable[Line], words: frozenset[str] = frozenset()) -> list[Paragraph]:
    """Join wrapped lines into paragraphs; headings and list items start a new one.

    A line that starts like a numbered item ("90. Long-term …") after a full line that does not
    end an item ("…; and") is the rest of a sentence, not a new item.
    """
    paragraphs: list[Paragraph] = []
    text = ""
    heading = False
    alone = False
    marks: list[tuple[int, int]] = []

    def flush() -> None:
        nonlocal text, marks
        if text:
            cleaned = text.replace(_SOFT_HYPHEN, "")
            paragraphs.append(Paragraph(text=cleaned, heading=heading, page_marks=tuple(marks)))
        text, marks = "", []

    for line in lines:
        if not line.text:
            continue
        if "- " in line.text:
            line = replace(line, text=join_broken_words(line.text, words))
        starts_new = (
            not text
            or heading
            or alone
            or line.heading
            or line.standalone
            or line.break_before is True
            or bool(_BULLET_GLYPH.match(line.text))
            or (
                is_list_item(line.text)
                and not (line.break_before is False and not _ITEM_END.search(text))
            )
        )
        if not starts_new:
            if text.endswith(_SOFT_HYPHEN):
                joined = text[:-1] + line.text
            elif text.endswith("-") and line.break_before is not True:
                joined = _join_hyphenated(text, line.text, words)
            elif line.break_before is False or _continues(text, line):
                joined = f"{text} {line.text}"
            else:
                joined = ""
            if joined:
                if line.page is not None and (not marks or marks[-1][1] != line.page):
                    marks.append((len(joined) - len(line.text), line.page))
                text = joined
                continue
        flush()
        heading, alone = line.heading, line.standalone
        text = line.text if heading or alone else strip_bullet(line.text)
        if line.page is not None:
            marks.append((0, line.page))
    flush()
    return paragraphs


_ERROR_PHRASES = (
    "access denied",
    "just a moment",
    "page not found",
    "file or directory not found",
    "403 forbidden",
    "403 error",
    "request blocked",
    "the request could not be satisfied",
    "attention required",
    "checking your browser",
    "enable javascript and cookies",
    "are you a robot",
    "verify you are human",
    "failed to retrieve the document",
    "service unavailable",
    "bad gateway",
    "internal server error",
    "too many requests",
    "this page isn't available",
    "this page is not available",
    "could not be found",
    "does not exist",
)
_ERROR_STATUS = re.compile(
    r"^\W*(?:(?:http\s*)?error\s*)?(?:4\d\d|5\d\d)\s*[-:–]?\s*(?:error|forbidden|not\s+found|"
    r"unauthori[sz]ed|bad\s+request|internal\s+server|service\s+unavailable|bad\s+gateway|"
    r"gateway\s+time-?out|file\s+or\s+directory|page\s+not|gone\b)",
    re.IGNORECASE,
)
MIN_TEXT_CHARS = 200


def error_page_reason(title: str, text: str) -> str | None:
    """Why this looks like an error or bot-challenge page rather than a document, or None.

    The tell-tale phrase must be the title or open one of the first lines of a short page, so
    a policy that mentions "access denied" in a sentence is not refused.
    """
    visible = len("".join(text.split()))  # `str.split` splits at what `str.isspace` is
    title = " ".join(title.lower().split())
    first_lines = [" ".join(line.lower().split()) for line in text.split("\n")[:6]]
    short = visible < 3000
    for phrase in _ERROR_PHRASES:
        if phrase in title or (short and any(line.startswith(phrase) for line in first_lines)):
            return repr(phrase)
    if _ERROR_STATUS.match(title) or (short and any(map(_ERROR_STATUS.match, first_lines))):
        return "HTTP error status in the page"
    if visible < MIN_TEXT_CHARS:
        return f"almost no text ({visible} characters)"
    return None


def decode_text(content: bytes) -> str:
    """Bytes of a text document as str: UTF-8 (with or without BOM), else Windows-1252."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    return content.decode("latin-1")
