"""Text cleaning shared by the format parsers: page furniture, stamps, list markers, reflow.

Everything here works on lines of already-extracted text, so the PDF and plain-text parsers
make the same decisions; layout facts a PDF knows (a paragraph gap, a full line) come in as
`Line.break_before`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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


def running_lines(pages: Sequence[Sequence[str]], *, zone: int = 3) -> set[tuple[int, int]]:
    """(page index, line index) of running headers and footers.

    A line counts when its digit-blind form sits among the first or last `zone` lines of at
    least half the pages (and at least two).
    """
    if len(pages) < 2:
        return set()
    need = max(2, (len(pages) + 1) // 2)
    top: Counter[str] = Counter()
    bottom: Counter[str] = Counter()
    for lines in pages:
        top.update({furniture_key(t) for t in lines[:zone]})
        bottom.update({furniture_key(t) for t in lines[-zone:]})
    found: set[tuple[int, int]] = set()
    for p, lines in enumerate(pages):
        for i, text in enumerate(lines):
            key = furniture_key(text)
            if sum(c.isalnum() for c in key) < 3 and "#" not in key:
                continue  # "or", "and", "•": too common in criteria lists to call furniture
            in_top = i < zone and top[key] >= need
            in_bottom = i >= len(lines) - zone and bottom[key] >= need
            if in_top or in_bottom:
                found.add((p, i))
    return found


def edge_noise(pages: Sequence[Sequence[str]], *, zone: int = 3) -> set[tuple[int, int]]:
    """Running lines, plus page numbers among the first or last lines of any page."""
    found = running_lines(pages, zone=zone)
    for p, lines in enumerate(pages):
        for i, text in enumerate(lines):
            near_edge = i < zone or i >= len(lines) - zone
            if near_edge and is_page_number(text):
                found.add((p, i))
    return found


def vocabulary(texts: Iterable[str]) -> frozenset[str]:
    """Lower-case words (hyphenated compounds included) used to mend words broken at line ends."""
    words: set[str] = set()
    for text in texts:
        words.update(w.lower() for w in _WORD.findall(text))
    return frozenset(words)


def _join_hyphenated(before: str, after: str, words: frozenset[str]) -> str:
    """Join a line ending in "-" with the next: drop the hyphen only for a word split in two."""
    stem = before[:-1]
    head = stem.rsplit(" ", 1)[-1]
    match = re.match(r"[A-Za-z]+", after)
    if not match or not head[-1:].isalpha() or not head.isascii():
        return before + after  # "8-\nweek", "COVID-\n19", "anti-\nTNF": a real hyphen
    tail = match.group(0)
    head_word = re.sub(r"^[^A-Za-z]+", "", head)
    hyphenated = f"{head_word}-{tail}".lower()
    joined = f"{head_word}{tail}".lower()
    if hyphenated in words:
        return before + after
    if joined in words:
        return stem + after
    last_part = head_word.rsplit("-", 1)[-1].lower()
    if last_part in _COMPOUND_HEADS or "-" in head_word:
        return before + after
    return stem + after


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
    visible = sum(1 for c in text if not c.isspace())
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
