"""Plain text (often text extracted from a PDF elsewhere) to a `PolicyDocument`.

Blank lines end paragraphs; wrapped lines are joined by the text rules in `clean`. Pages are
known only from form feeds; "Page 3 of 21" lines still mark where running headers repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from diffing.model import PolicyDocument
from diffing.parse.capture import (
    capture_lines,
    looks_like_markdown,
    markdown_lines,
    stray_runs,
    strip_capture_chrome,
)
from diffing.parse.clean import (
    Line,
    PageLines,
    clean_line,
    decode_text,
    edge_noise,
    ends_sentence,
    error_page_reason,
    is_page_number,
    is_stamp,
    page_edges,
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
    heading: bool = False  # a Markdown heading: a heading whatever it looks like


def parse_text(
    content: bytes, *, document_id: str, references: Sequence[PageLines] = ()
) -> PolicyDocument:
    """`references`: other documents' pages of lines whose running headers this one shares
    (see `clean.running_lines`)."""
    text = decode_text(content).replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ParseError(document_id, "empty document")
    has_pages = "\f" in text
    markdown = looks_like_markdown(text)
    if not markdown:
        text = strip_capture_chrome(text)
    chunks = _pages(text, markdown) if has_pages else _pseudo_pages(text, markdown)
    kept = _drop_furniture(chunks, has_pages, references)
    edges = page_edges([[r.text for r in chunk] for chunk in chunks])
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
        heading = raw.heading or (
            (raw.blank_before is not False or previous_ended) and looks_like_heading(raw.text)
        )
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
        page_edges=edges,
    )


def _wrap_width(lines: list[_RawLine]) -> float:
    """The width (in characters) at which the text was wrapped, or infinity if unknown."""
    lengths = sorted(len(r.text) for r in lines if len(r.text) >= 20)
    if len(lengths) < 10:
        return float("inf")
    return lengths[int(len(lengths) * 0.9)] * 1.02


def _pages(text: str, markdown: bool) -> list[list[_RawLine]]:
    pages = []
    for number, page in enumerate(text.split("\f"), start=1):
        pages.append(_lines(page, number, markdown))
    return pages


def _pseudo_pages(text: str, markdown: bool) -> list[list[_RawLine]]:
    """Without form feeds, "Page N of M" lines are where pages (and their furniture) begin."""
    lines = _lines(text, None, markdown)
    chunks: list[list[_RawLine]] = [[]]
    for raw in lines:
        if is_page_number(raw.text) and any(ch.isalpha() for ch in raw.text) and chunks[-1]:
            chunks.append([])
        chunks[-1].append(raw)
    return chunks if len(chunks) > 2 else [lines]


def _lines(text: str, page: int | None, markdown: bool = False) -> list[_RawLine]:
    if markdown:
        marked = markdown_lines(text)
    else:
        raw_lines = text.split("\n")
        stray = stray_runs(raw_lines)  # rotated side text, one letter a line
        marked = [(t, False) for i, t in enumerate(capture_lines(raw_lines)) if i not in stray]
    out = []
    blank = True
    for raw, heading in marked:
        cleaned = clean_line(raw)
        if not any(ch.isalnum() for ch in cleaned):
            blank = True  # empty, a lone bullet glyph or a stray "-->": a paragraph ends here
            continue
        # A Markdown table row is a line of its own: rows never reflow into each other.
        row = markdown and " | " in cleaned
        out.append(_RawLine(cleaned, page, blank or heading or row, heading))
        blank = heading or row
    return out


def _drop_furniture(
    chunks: list[list[_RawLine]], has_pages: bool, references: Sequence[PageLines] = ()
) -> list[_RawLine]:
    """Lines that are content. Across dropped furniture only the text can say if a paragraph
    goes on, so the blank lines around a running header do not count as a paragraph break.
    Text without pages has no header or footer zone to look at beyond its first and last lines."""
    texts = [[r.text for r in chunk] for chunk in chunks]
    if len(chunks) > 1:
        noise = edge_noise(texts, references=references)
    else:
        # One page (or no page breaks): its first and last lines are still a header and a
        # footer when they read like one ("… Page 1 Printed 12/15/2025 Proprietary …"); a
        # bare number there may be content.
        noise = {
            spot
            for spot in edge_noise(texts, references=references)
            if not texts[spot[0]][spot[1]].strip().isdigit()
        }
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
                raw = _RawLine(raw.text, raw.page, None, raw.heading)
            kept.append(raw)
            after_furniture = False
    return kept
