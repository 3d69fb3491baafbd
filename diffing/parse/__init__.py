"""Payer documents (PDF, HTML, plain text) to a `PolicyDocument`: clean sections, tables, facts.

    parse_document(content, content_type, document_id=…) -> PolicyDocument

The format is sniffed from the bytes first (`%PDF-`, HTML markup) and the declared content
type second. Input that cannot be parsed (corrupt, encrypted, empty, an error page) raises
`monitor.errors.ParseError` with the reason; no library exception escapes. Pure: the same bytes
always give an equal document. Bump `PARSER_VERSION` whenever the output for the same bytes can
change, so stored versions are re-parsed rather than reported as changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from diffing.model import PolicyDocument
from diffing.parse.plain import parse_text
from diffing.parse.sections import KNOWN_SECTIONS, PREAMBLE, SECTION_SYNONYMS, section_name
from monitor.errors import ParseError

__all__ = [
    "DEFAULT_MAX_PAGES",
    "KNOWN_SECTIONS",
    "PARSER_VERSION",
    "PREAMBLE",
    "SECTION_SYNONYMS",
    "PageEdges",
    "detect_format",
    "parse_document",
    "printed_alike",
    "reference_edges",
    "section_name",
]

PARSER_VERSION = "3"
DEFAULT_MAX_PAGES = 300

_HTML_MARKERS = re.compile(
    rb"<(?:!doctype\s+html|html|head|body|meta|title|div|p|table|span|h[1-6]|ul|ol|br|script"
    rb"|style|link|section|article)[\s>/]",
    re.IGNORECASE,
)
_ANY_TAG = re.compile(rb"<[a-zA-Z!/][^>]{0,200}>")
_SNIFF_BYTES = 8192

# A light reference to a document printed the same way: each page's first and last lines as
# printed (`PolicyDocument.page_edges`), without the document itself.
PageEdges = tuple[tuple[str, ...], ...]
# Pages kept of a reference: running lines sit on every page, so a sample finds them as well
# as all 300 pages would, at a fraction of what is sent to a worker and stored.
REFERENCE_PAGES = 16
_PRINTED_ALIKE: ContextVar[tuple[PageEdges, ...]] = ContextVar("printed_alike", default=())


@contextmanager
def printed_alike(*references: PageEdges) -> Iterator[None]:
    """Inside the block, every `parse_document` also takes `references` (page edges of documents
    printed the same way) as it takes `related`; an inner block's references replace them.

    How the pipeline hands an extraction worker the previous version's page edges: the source
    kind's extraction sits between the worker and the parser and passes no references itself.
    The result depends on them, and `diffing.payer`'s cache is keyed on the bytes alone: a
    worker lives for one run and meets a document's bytes once, but the same bytes under two
    documents' keys get the first one's parse (keying that cache on the references too would
    end it)."""
    token = _PRINTED_ALIKE.set(tuple(r for r in references if r))
    try:
        yield
    finally:
        _PRINTED_ALIKE.reset(token)


def reference_edges(document: PolicyDocument, inherited: PageEdges = ()) -> PageEdges:
    """The reference the next version of `document` is to be parsed with: its own page edges
    when it has two pages or more (sampled to `REFERENCE_PAGES`), else `inherited` (the
    reference it was parsed with), so a run of one-page re-prints keeps knowing the running
    lines of the last print that had pages enough to show them."""
    edges = document.page_edges
    if len(edges) < 2:
        return inherited
    if len(edges) <= REFERENCE_PAGES:
        return edges
    step = len(edges) / REFERENCE_PAGES
    return tuple(edges[int(i * step)] for i in range(REFERENCE_PAGES))


def detect_format(content: bytes, content_type: str) -> str | None:
    """The format to parse as: "pdf", "html" or "text"; None for binary that is not a PDF.

    Markup counts as HTML when the document starts with a tag or has HTML tags in its first
    kilobyte; text that merely quotes some markup further down (saved page text) stays text.
    """
    head = content[:_SNIFF_BYTES]
    if b"%PDF-" in head[:1024]:
        return "pdf"
    start = head.lstrip(b" \t\r\n\f\x00").removeprefix(b"\xef\xbb\xbf").lstrip()
    if _HTML_MARKERS.search(start[:1024]) or (
        start.startswith(b"<") and _HTML_MARKERS.search(start)
    ):
        return "html"
    declared = content_type.split(";", 1)[0].strip().lower()
    textual = _looks_textual(head)
    if declared in {"text/html", "application/xhtml+xml", "html", "htm"} and start.startswith(b"<"):
        return "html" if _ANY_TAG.match(start) else ("text" if textual else None)
    if textual:
        return "text"
    if declared in {"application/pdf", "pdf", "application/x-pdf"}:
        return "pdf"
    return None


def parse_document(
    content: bytes,
    content_type: str,
    *,
    document_id: str = "?",
    max_pages: int = DEFAULT_MAX_PAGES,
    related: Sequence[PolicyDocument] = (),
) -> PolicyDocument:
    """Parse one fetched document; raises `ParseError` when it cannot be turned into text.

    `related`: documents printed the same way, already parsed — the previous version of this
    document, other documents of the same source. A line at the top or bottom of this
    document's pages that sits at the same edge of theirs is a running header or footer, even
    on a one-page document. The result then depends on them: parse the two versions of a pair
    each with the other (or both with the same siblings), and key any cache on them too.
    """
    if not content.strip():
        raise ParseError(document_id, "empty document")
    references = (
        *(doc.page_edges for doc in related if doc.page_edges),
        *_PRINTED_ALIKE.get(),  # `printed_alike`
    )
    kind = detect_format(content, content_type)
    # The format parsers (pdfplumber, lxml and trafilatura, openpyxl) load on first use: what
    # only compares or verifies stored documents (`diffing.diff`, the publishing path) imports
    # this package for its section names and must not pay for them.
    if kind == "pdf":
        from diffing.parse.pdf import parse_pdf

        return parse_pdf(
            content, document_id=document_id, max_pages=max_pages, references=references
        )
    if kind == "html":
        from diffing.parse.html import parse_html

        return parse_html(content, document_id=document_id)
    if kind == "text":
        return parse_text(content, document_id=document_id, references=references)
    from diffing.parse.xlsx import is_xlsx, parse_xlsx

    if is_xlsx(content):
        return parse_xlsx(content, document_id=document_id)
    raise ParseError(
        document_id, f"not a PDF, HTML or text document (declared {content_type or 'nothing'!r})"
    )


def _looks_textual(head: bytes) -> bool:
    """Text, not binary: decodes as UTF-8 (or is mostly printable) and has no NUL bytes."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:
            return True  # a multi-byte character cut by the sniffing window
    printable = sum(32 <= b < 127 or b in b"\t\r\n\f" for b in head)
    return printable >= 0.95 * len(head)
