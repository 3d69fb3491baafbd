"""Plain text (often text extracted from a PDF elsewhere) to a `PolicyDocument`.

Blank lines end paragraphs; wrapped lines are joined by the text rules in `clean`. Pages are
known only from form feeds; "Page 3 of 21" lines still mark where running headers repeat.
"""

from __future__ import annotations

from dataclasses import dataclass

from diffing.model import PolicyDocument
from diffing.parse.clean import (
    Line,
    clean_line,
    decode_text,
    edge_noise,
    ends_sentence,
    error_page_reason,
    is_page_number,
    is_stamp,
    reflow,
    vocabulary,
)
from diffing.parse.meta import header_meta, merge_meta
from diffing.parse.sections import build_sections, looks_like_heading
from monitor.errors import ParseError

_HEADER_CHARS = 4000


@dataclass(frozen=True, slots=True)
class _RawLine:
    text: str
    page: int | None
    blank_before: bool | None  # None: unknown (furniture was dropped just before)


def parse_text(content: bytes, *, document_id: str) -> PolicyDocument:
    text = decode_text(content).replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ParseError(document_id, "empty document")
    has_pages = "\f" in text
    chunks = _pages(text) if has_pages else _pseudo_pages(text)
    kept = _drop_furniture(chunks, has_pages)
    title = next((r.text for r in kept if sum(c.isalpha() for c in r.text) >= 3), "")[:200]
    body = "\n".join(r.text for r in kept)
    reason = error_page_reason(title, body)
    if reason:
        raise ParseError(document_id, f"looks like an error page: {reason}")

    lines: list[Line] = []
    previous_ended = True
    width = _wrap_width(kept)
    previous = ""
    for raw in kept:
        heading = (raw.blank_before is not False or previous_ended) and looks_like_heading(raw.text)
        brk: bool | None = True if raw.blank_before else None
        # The next word would not have fitted on the line above: that line wrapped.
        if (
            brk is None
            and previous
            and not ends_sentence(previous)
            and len(previous) + 1 + len(raw.text.split(" ", 1)[0]) > width
        ):
            brk = False
        lines.append(Line(raw.text, raw.page, heading, brk))
        previous_ended = heading or raw.text.endswith((".", ":", ";"))
        previous = raw.text
    paragraphs = reflow(lines, vocabulary(r.text for r in kept))
    sections, _ = build_sections(paragraphs)
    pages = text.count("\f") + 1 if has_pages else 0
    return PolicyDocument(
        title=title,
        content_type="text",
        sections=sections,
        meta=merge_meta(header_meta(body[:_HEADER_CHARS])),
        pages=pages,
    )


def _wrap_width(lines: list[_RawLine]) -> float:
    """The width (in characters) at which the text was wrapped, or infinity if unknown."""
    lengths = sorted(len(r.text) for r in lines if len(r.text) >= 20)
    if len(lengths) < 10:
        return float("inf")
    return lengths[int(len(lengths) * 0.9)] * 1.02


def _pages(text: str) -> list[list[_RawLine]]:
    pages = []
    for number, page in enumerate(text.split("\f"), start=1):
        pages.append(_lines(page, number))
    return pages


def _pseudo_pages(text: str) -> list[list[_RawLine]]:
    """Without form feeds, "Page N of M" lines are where pages (and their furniture) begin."""
    lines = _lines(text, None)
    chunks: list[list[_RawLine]] = [[]]
    for raw in lines:
        if is_page_number(raw.text) and any(ch.isalpha() for ch in raw.text) and chunks[-1]:
            chunks.append([])
        chunks[-1].append(raw)
    return chunks if len(chunks) > 2 else [lines]


def _lines(text: str, page: int | None) -> list[_RawLine]:
    out = []
    blank = True
    for raw in text.split("\n"):
        cleaned = clean_line(raw)
        if not any(ch.isalnum() for ch in cleaned):
            blank = True  # empty, a lone bullet glyph or a stray "-->": a paragraph ends here
            continue
        out.append(_RawLine(cleaned, page, blank))
        blank = False
    return out


def _drop_furniture(chunks: list[list[_RawLine]], has_pages: bool) -> list[_RawLine]:
    """Lines that are content. Across dropped furniture only the text can say if a paragraph
    goes on, so the blank lines around a running header do not count as a paragraph break."""
    noise = edge_noise([[r.text for r in chunk] for chunk in chunks]) if len(chunks) > 1 else set()
    kept: list[_RawLine] = []
    after_furniture = False
    for p, chunk in enumerate(chunks):
        for i, raw in enumerate(chunk):
            drop = (p, i) in noise or is_stamp(raw.text)
            if not drop and not has_pages and is_page_number(raw.text):
                drop = any(ch.isalpha() for ch in raw.text)  # "Page 3 of 21", not a bare "12"
            if drop:
                after_furniture = True
                continue
            if after_furniture:
                raw = _RawLine(raw.text, raw.page, None)
            kept.append(raw)
            after_furniture = False
    return kept
