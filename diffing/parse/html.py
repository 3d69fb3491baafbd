"""HTML policy pages (Aetna CPBs, Anthem, BCBS) to a `PolicyDocument`.

Site chrome, hidden text and struck-through (deleted) revisions are removed; `<meta>` facts,
headings, paragraphs and data tables are kept. Error and bot-challenge pages are refused.

Main content: the rules below drop what markup names as chrome (`nav`, `header`, `footer`,
cookie and menu classes); what a site builds from plain `div`s (login panels, utility menus,
footers, "Click here to see this page in full context" repeated per section) is found by
trafilatura's main-content extraction, run on the page after the rules, and used only as a
filter: a block or table the walker found is kept when its text is in trafilatura's main text,
so headings, tables and struck-through revisions stay as the walker reads them. Measured
(issue 13) on pages with hand-marked content and chrome (a Blue-plan-style page in two chrome
variants, `tests/parse_chrome_pages.py`; the Aetna CPB golden; two fixture-site CPBs):

    extractor            content kept   codes kept   chrome leaked   chrome-only variants equal
    rules alone            178/187        18/18          7/18            no
    trafilatura            181/187        18/18          0/18            yes (but keeps <del>)
    justext                 28/187         0/18          0/18            yes
    rules + trafilatura    178/187        18/18          0/18            yes

The real corpora hold no raw HTML (their `.html` captures are visible text, handled in
`capture`), so this was measured on pages written here. When trafilatura keeps under a fifth
of the walker's text it is ignored: the rules alone are safer than a wrong main block.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import warnings
from collections import Counter
from collections.abc import Iterable

import trafilatura
from bs4.dammit import EncodingDetector
from lxml import etree
from lxml import html as lxml_html
from lxml.etree import _Element
from trafilatura.settings import Extractor
from trafilatura.utils import repair_faulty_html

from diffing.model import PolicyDocument, Table
from diffing.parse import trafilatura_xpaths
from diffing.parse.clean import Paragraph, clean_line, error_page_reason, is_stamp
from diffing.parse.meta import header_meta, merge_meta, parse_date
from diffing.parse.sections import build_sections, is_known_heading
from monitor.errors import ParseError

# trafilatura's regex XPath expressions were a quarter of this parse's CPU (issue 17): the same
# tests, walked in Python, answer the same at a fifth of the cost. Installed here, where the
# project calls trafilatura, and only for expressions whose text is the one translated.
trafilatura_xpaths.install()

_DROP_TAGS = (
    "script",
    "style",
    "nav",
    "header",
    "footer",
    "aside",
    "noscript",
    "form",
    "template",
    "iframe",
    "svg",
    "button",
    "select",
    "textarea",
    "input",
    "object",
    "embed",
    "canvas",
    "dialog",
    # Deleted text of an inline revision; `.newText` (and <ins>) stay as plain text.
    "del",
    "s",
    "strike",
)
_CHROME = re.compile(
    r"breadcrumb|cookie|skip-?link|skip-?to|^menu|menu$|-menu-|navbar|sr-only|"
    r"visually-?hidden|screen-reader|^modal|interstitial|^strikethrough$|onetrust|"
    r"cookie-?consent|consent-?banner",
    re.IGNORECASE,
)
_KEEP_TAGS = frozenset({"html", "body", "main", "article"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4"})
_BLOCKS = frozenset(
    " ".join(
        (
            "p div section li ul ol dl dt dd blockquote pre address figure figcaption caption",
            "h5 h6 tr td th tbody thead tfoot center fieldset details summary hr",
        )
    ).split()
)
_SPACE = re.compile(r"\s+")
_INLINE_BREAKS = _BLOCKS | _HEADINGS | {"br", "table"}
_TITLE_SUFFIX = re.compile(
    r"\s+[-–|:]\s+(?:medical\s+|pharmacy\s+)?clinical\s+policy\s+bulletins?\s*$", re.IGNORECASE
)
_META_KEYS = {
    "aet.cpbnumber": "policy_number",
    "aet.lastreviewdate": "last_review",
    "aet.anticipatedreviewdate": "next_review",
    "aet.nextreviewdate": "next_review",
    "aet.effectivedate": "effective_date",
    "aet.cpbtype": "policy_type",
    "description": "description",
    "policy_number": "policy_number",
    "effective_date": "effective_date",
    "last_review_date": "last_review",
}
_DATE_KEYS = frozenset({"last_review", "next_review", "effective_date", "publish_date"})
_HEADER_CHARS = 4000


_MAIN_MIN_SHARE = 0.2
_BOILERPLATE_REPEATS = 3  # the same line this often ("Click here to see …") is the site's


_NOT_ALNUM = re.compile(r"[\W_]+")  # `str.isalnum` is `\w` less the underscore
_ALNUM = re.compile(r"[^\W_]")


_NOT_ALNUM_ASCII = bytes(b for b in range(128) if not chr(b).isalnum())


def _key(text: str) -> str:
    """Letters and digits only: trafilatura spaces inline markup its own way."""
    if text.isascii():  # the same, at a tenth of the cost
        return text.lower().encode().translate(None, _NOT_ALNUM_ASCII).decode()
    return _NOT_ALNUM.sub("", text.lower())


def _extractor() -> Extractor:
    """The options `trafilatura.extract` builds from ``include_tables=True,
    include_comments=False, include_links=False, favor_recall=True, deduplicate=False``, built
    once a day: building them is a tenth of an extraction. Never changed by an extraction.
    Their date limit is today (local time, as trafilatura sets it), so a process that runs past
    midnight builds them again rather than keep yesterday's (it only bounds the metadata
    search, which is off, but the options stay exactly what `extract` would build)."""
    return _extractor_of(dt.date.today())


@functools.lru_cache(maxsize=1)
def _extractor_of(day: dt.date) -> Extractor:
    return Extractor(
        output_format="txt",
        tables=True,
        comments=False,
        links=False,
        recall=True,
        dedup=False,
    )


def _main_content(items: list[_Item], root: _Element) -> list[_Item]:
    """The walker's items without the chrome trafilatura finds (see above).

    An item trafilatura leaves out goes when it lies before the first or after the last item
    it keeps (menus, login panels, footers) or repeats three times or more on the page;
    between them the walker's reading stands (a sidebar of policy history, a related-policy
    list). Headings and lines stating document facts ("Last Review 06/02/2026") always stay.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main = trafilatura.extract(_trafilatura_input(root), options=_extractor())
    if not main:
        return items
    main_key = _key(main)

    def in_main(item: _Item) -> bool:
        kind, text, rows = item
        if kind == "heading":
            return True
        if kind != "table":
            key = _key(text)
            return not key or key in main_key or bool(header_meta(text))
        cells = [key for row in rows for cell in row if (key := _key(cell))]
        return sum(cell in main_key for cell in cells) * 2 >= len(cells)

    keep = [in_main(item) for item in items]
    found = [i for i, flag in enumerate(keep) if flag and items[i][0] != "heading"]
    if not found:
        return items
    first, last = found[0], found[-1]
    repeats = Counter(text for kind, text, _ in items if kind == "text")
    chosen = [
        item
        for i, item in enumerate(items)
        if keep[i] or (first <= i <= last and repeats[item[1]] < _BOILERPLATE_REPEATS)
    ]
    size = sum(len(text) + sum(map(len, rows)) for _, text, rows in items)
    chosen_size = sum(len(text) + sum(map(len, rows)) for _, text, rows in chosen)
    return chosen if chosen_size >= _MAIN_MIN_SHARE * size else items


_Item = tuple[str, str, tuple[tuple[str, ...], ...]]


def _trafilatura_input(root: _Element) -> _Element | str:
    """What trafilatura is handed: the page's tree itself, which it copies and reads as it is,
    where the page's markup would give it the same tree. Handed the markup (as before),
    trafilatura parses it again with libxml2 (`trafilatura.utils.load_html`, about 4 % of its
    time), and the tree it builds is this one: the same parser's reading of this tree's own
    serialisation. The markup still goes when its load would not be a plain parse of
    it: a tree that is not a whole page, or markup that `load_html` repairs first (characters
    XML forbids, which libxml2 keeps; a self-closing ``<html/>``)."""
    markup = etree.tostring(root, method="html", encoding="unicode")
    if not isinstance(root, lxml_html.HtmlElement) or root.tag != "html":
        return markup
    return root if repair_faulty_html(markup, markup[:50].lower()) == markup else markup


def parse_html(content: bytes, *, document_id: str) -> PolicyDocument:
    root = _parse_tree(content)
    title = _title(root)
    meta = _meta_tags(root)
    body: _Element | None = None
    if root is not None:
        _strip(root)
        body = next(root.iter("body"), root)
    items = [] if body is None else _Walker(title).walk(body)
    body_text = "\n".join(text for kind, text, _ in items if kind != "table")
    table_text = "\n".join(" ".join(row) for _, _, rows in items for row in rows)
    reason = error_page_reason(title, f"{body_text}\n{table_text}".strip())
    if reason:
        raise ParseError(document_id, f"looks like an error page: {reason}")

    assert root is not None  # a page without a tree has no text: refused above
    items = _main_content(items, root)
    paragraphs: list[Paragraph] = []
    pending: list[tuple[int, tuple[tuple[str, ...], ...]]] = []
    for kind, text, rows in items:
        if kind == "table":
            pending.append((len(paragraphs) - 1, rows))
        else:
            paragraphs.append(Paragraph(text=text, heading=kind == "heading"))
    sections, owner = build_sections(paragraphs, keep={i for i, _ in pending if i >= 0})
    tables = tuple(
        Table(rows=rows, page=None, section=owner[i] if i >= 0 else None) for i, rows in pending
    )
    if not title:
        title = next((p.text for p in paragraphs if p.heading), "")
    return PolicyDocument(
        title=title,
        content_type="html",
        sections=sections,
        tables=tables,
        meta=merge_meta(meta, header_meta(body_text[:_HEADER_CHARS])),
    )


_PARSER_ERRORS = (UnicodeDecodeError, LookupError, etree.ParserError)
# lxml.html's classes, so that trafilatura can be handed the tree (`_trafilatura_input`), chosen
# in C: `lxml.html.HTMLParser`'s lookup is a Python call per element object made. (lxml.html
# gives forms, their fields and labels classes of their own; those add methods trafilatura never
# calls, and the fields are dropped.)
_HTML_CLASSES = etree.ElementDefaultClassLookup(
    element=lxml_html.HtmlElement,
    comment=lxml_html.HtmlComment,
    pi=lxml_html.HtmlProcessingInstruction,
    entity=lxml_html.HtmlEntity,
)


def _parse_tree(content: bytes) -> _Element | None:
    """The page's element tree, as bs4's lxml builder reads it (which the walker was written
    against): the first encoding bs4's detector proposes that libxml2 accepts, the bytes fed in
    one piece. None for a page with no element at all."""
    detector = EncodingDetector(content, is_html=True)
    for encoding in detector.encodings:
        parser = etree.HTMLParser(recover=True, encoding=encoding)
        parser.set_element_class_lookup(_HTML_CLASSES)
        try:
            parser.feed(detector.markup)
        except _PARSER_ERRORS:
            continue
        try:
            root: _Element | None = parser.close()
        except etree.XMLSyntaxError:
            return None  # nothing to build a tree of ("Document is empty")
        except _PARSER_ERRORS:
            continue
        return root
    return None


def _get_text(node: _Element, separator: str = "") -> str:
    """bs4's ``get_text(separator)``: the text pieces under `node`, comments left out."""
    return separator.join(node.itertext())


def _first(root: _Element | None, name: str) -> _Element | None:
    return None if root is None else next(root.iter(name), None)


def _title(root: _Element | None) -> str:
    title = _first(root, "title")
    text = clean_line(_get_text(title, " ")) if title is not None else ""
    if not text and root is not None:
        og = next((m for m in root.iter("meta") if m.get("property") == "og:title"), None)
        text = clean_line(og.get("content") or "") if og is not None else ""
    if not text:
        h1 = _first(root, "h1")
        text = clean_line(_get_text(h1, " ")) if h1 is not None else ""
    if " | " in text:
        text = text.rsplit(" | ", 1)[0]  # "Physical Therapy - … | Aetna": the site name goes
    return _TITLE_SUFFIX.sub("", text).strip()


def _meta_tags(root: _Element | None) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for tag in () if root is None else root.iter("meta"):
        name = (tag.get("name") or "").strip()
        value = clean_line(tag.get("content") or "")
        key = _META_KEYS.get(name.lower())
        if key is None and name.lower().startswith("aet."):
            key = re.sub(r"(?<!^)(?=[A-Z])", "_", name[4:]).lower()
        if not key or not value:
            continue
        if key in _DATE_KEYS or key.endswith("_date"):
            iso = parse_date(value)
            if iso is None:
                continue
            value = iso
        found.append((key, value))
    return found


def _has(root: _Element, names: Iterable[str]) -> bool:
    """Whether an element named `names` is under `root`."""
    return next(root.iterdescendants(*names), None) is not None


def _remove(node: _Element) -> None:
    """Take `node` out of the tree, leaving the text that follows it in place (lxml keeps
    that text, the tail, on the node; bs4 keeps it as a string of the parent)."""
    parent = node.getparent()
    if parent is None:
        return
    if node.tail:
        previous = node.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + node.tail
        else:
            parent.text = (parent.text or "") + node.tail
    parent.remove(node)


_DROP = frozenset(_DROP_TAGS)
_MAIN_HEADINGS = ("h1", "h2", "main", "article")
_CLASS_TOKEN = re.compile(r"\S+")  # how bs4 splits a class attribute


def _strip(root: _Element) -> None:
    for node in list(root.iter(etree.Comment, etree.ProcessingInstruction, etree.Entity)):
        _remove(node)
    for node in list(root.iter(*_DROP)):
        _remove(node)
    _strip_chrome(root)


# Only an element with one of these attributes can be chrome by `_is_chrome`.
_MARKED = etree.XPath("//*[@role or @class or @id or @hidden or @style]")


def _strip_chrome(root: _Element) -> None:
    """Drop pop-ups, hidden blocks and what class names call chrome.

    Each element is judged on the tree as it stands before any of them goes: what a judgement
    reads (the element's attributes and what is under it) no removal of another element can
    change, except one under an element that goes too."""
    chrome = [tag for tag in _MARKED(root) if tag.tag not in _KEEP_TAGS and _is_chrome(tag)]
    for tag in chrome:
        _remove(tag)


def _is_chrome(tag: _Element) -> bool:
    if tag.get("role") in {"dialog", "alertdialog"}:
        return True  # a pop-up ("You are now leaving the Aetna website")
    tokens = [*_CLASS_TOKEN.findall(tag.get("class") or ""), tag.get("id") or ""]
    hidden = tag.get("hidden") is not None or "display:none" in (tag.get("style") or "").replace(
        " ", ""
    )
    # Class names are a guess; never drop what holds the page's main headings.
    return (hidden or any(_CHROME.search(t) for t in tokens if t)) and not _has(tag, _MAIN_HEADINGS)


class _Walker:
    """Document order: ("heading"|"text", text, ()) and ("table", "", rows) items."""

    def __init__(self, title: str) -> None:
        self.title = title.lower()
        # Text pieces of the current line, each marked True when it is the text of a link to
        # a place in the same page: a line of nothing else is a table-of-contents entry.
        self.buffer: list[tuple[str, bool]] = []
        self.title_seen = False
        self.items: list[_Item] = []

    def walk(self, root: _Element) -> list[_Item]:
        self._visit(root, False)
        self._flush()
        return self.items

    def _flush(self) -> None:
        if not self.buffer:
            return
        text = clean_line("".join(piece for piece, _ in self.buffer))
        toc_entry = all(linked for piece, linked in self.buffer if piece.strip())
        self.buffer.clear()
        if text and _ALNUM.search(text) and not is_stamp(text) and not toc_entry:
            self.items.append(("text", text, ()))

    def _visit(self, node: _Element, linked: bool) -> None:
        if node.text:
            self.buffer.append((_SPACE.sub(" ", node.text), linked))
        for child in node:
            name = child.tag
            if name == "br":
                self._flush()
            elif name in _HEADINGS or (name in {"p", "div"} and self._is_heading_block(child)):
                self._flush()
                self._heading(name, _text(child))
            elif name == "table" and _is_data_table(child):
                self._flush()
                caption = next(child.iterdescendants("caption"), None)
                heading = (
                    None if caption is None else next(caption.iterdescendants(*_HEADINGS), None)
                )
                if heading is not None:
                    self._heading(heading.tag, _text(heading))
                rows = _rows(child)
                if rows:
                    self.items.append(("table", "", rows))
            elif name in _BLOCKS or name == "table":
                self._flush()
                self._visit(child, linked)
                self._flush()
            else:
                in_page = name == "a" and (child.get("href") or "").startswith("#")
                self._visit(child, linked or in_page)
            if child.tail:
                self.buffer.append((_SPACE.sub(" ", child.tail), linked))

    def _heading(self, name: str, text: str) -> None:
        if name == "h1" and not self.title_seen and text.lower() == self.title:
            self.title_seen = True  # the page title again, not a section
        elif text and not is_stamp(text):  # "Table Of Contents" is no section
            self.items.append(("heading", text, ()))

    @staticmethod
    def _is_heading_block(tag: _Element) -> bool:
        """`<p><strong>Heading</strong></p>`, or a block reading exactly like a known heading."""
        if _has(tag, _NOT_IN_HEADINGS):
            return False  # first: a block of blocks (a page's wrapper) need not be read
        text = _text(tag)
        if not text or len(text) > 100 or text[-1] in ".,;" or _COLON_VALUE.search(text):
            return False
        links = "".join(_get_text(a) for a in tag.iterdescendants("a"))
        if links.strip() and clean_line(links) == text:
            return False  # a link (to a section, a popup), not a heading
        strong = "".join(_get_text(b) for b in tag.iterdescendants("strong", "b"))
        return clean_line(strong).rstrip(":") == text.rstrip(":") or is_known_heading(text)


def _is_data_table(table: _Element) -> bool:
    if _has(table, ("table",)):
        return False  # a layout table: its cells are read as ordinary blocks
    rows = list(table.iterdescendants("tr"))
    widest = max((sum(1 for _ in tr.iterdescendants("td", "th")) for tr in rows), default=0)
    return widest >= 2 and len(rows) >= 2


def _rows(table: _Element) -> tuple[tuple[str, ...], ...]:
    rows = []
    for tr in table.iterdescendants("tr"):
        cells = tuple(_text(cell) for cell in tr.iterdescendants("td", "th"))
        if any(cells):
            rows.append(cells)
    return tuple(rows)


_NOT_IN_HEADINGS = ("p", "div", "li", "table", "ul", "ol")
_COLON_VALUE = re.compile(r":\s*\S")


def _text(tag: _Element) -> str:
    """Clean text of an element: inline markup joins words, block markup separates them."""
    parts: list[str] = []
    _collect(tag, parts)
    return clean_line(_SPACE.sub(" ", "".join(parts)))


def _collect(node: _Element, parts: list[str]) -> None:
    """The text under `node` in document order, a space where an element breaks the line."""
    if node.text:
        parts.append(node.text)
    for child in node:
        if child.tag in _INLINE_BREAKS:
            parts.append(" ")
        _collect(child, parts)
        if child.tail:
            parts.append(child.tail)
