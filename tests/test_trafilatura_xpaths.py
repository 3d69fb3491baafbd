"""trafilatura's XPath expressions and their Python equivalents (`diffing.parse.trafilatura_xpaths`)
answer alike: the same elements, in the same order, on the pages we parse and on random trees."""

from __future__ import annotations

import contextlib
import copy
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trafilatura
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from lxml.etree import _Element
from parse_chrome_pages import chrome_page
from trafilatura import xpaths
from trafilatura.htmlprocessing import convert_tags, tree_cleaning

import diffing.parse.html  # installs the equivalents
from diffing.parse import parse_document, trafilatura_xpaths
from diffing.parse.html import _extractor, _parse_tree, _strip, _trafilatura_input
from diffing.parse.trafilatura_xpaths import TRANSLATIONS, Equivalent, install
from monitor.errors import ParseError

ROOT = Path(__file__).resolve().parent.parent
REALDATA = Path("/work/shared/realdata")
EXSLT = {"re": "http://exslt.org/regular-expressions"}


def _installed() -> list[Equivalent]:
    found = []
    for translation in TRANSLATIONS:
        current = getattr(xpaths, translation.name)[translation.index]
        assert isinstance(current, Equivalent), (translation.name, translation.index)
        assert current.xpath.path == translation.text == current.path
        found.append(current)
    return found


def test_every_translation_is_installed_by_the_html_parser() -> None:
    assert diffing.parse.html.trafilatura_xpaths is trafilatura_xpaths
    assert len(_installed()) == len(TRANSLATIONS)


def _same(expected: list[Any], got: list[Any]) -> bool:
    return len(expected) == len(got) and all(a is b for a, b in zip(expected, got, strict=True))


def _assert_alike(tree: _Element) -> None:
    """Each equivalent answers as its expression, from the root and from every element under it."""
    elements = [tree, *tree.iterdescendants(etree.Element)]
    for equivalent in _installed():
        for context in elements:
            expected = equivalent.xpath(context)
            got = equivalent.select(context)
            assert _same(expected, got), (equivalent.path, context, expected, got)


class _Checking:
    """An installed equivalent that also evaluates trafilatura's expression, and records any
    call at which the two differ."""

    def __init__(self, equivalent: Equivalent, differ: list[str], calls: list[int]) -> None:
        self.equivalent = equivalent
        self.differ = differ
        self.calls = calls

    def __call__(self, tree: Any, **variables: Any) -> Any:
        expected = self.equivalent.xpath(tree, **variables)
        got = self.equivalent(tree, **variables)
        self.calls.append(len(expected))
        if not _same(expected, got):
            self.differ.append(self.equivalent.path)
        return got


@pytest.fixture
def checking() -> Iterator[tuple[list[str], list[int]]]:
    """Every translated expression, where trafilatura calls it, checked against its equivalent
    (in the lists trafilatura's modules share, so in place)."""
    differ: list[str] = []
    calls: list[int] = []
    installed = _installed()
    for translation, equivalent in zip(TRANSLATIONS, installed, strict=True):
        checked = _Checking(equivalent, differ, calls)
        getattr(xpaths, translation.name)[translation.index] = checked
    try:
        yield differ, calls
    finally:
        for translation, equivalent in zip(TRANSLATIONS, installed, strict=True):
            getattr(xpaths, translation.name)[translation.index] = equivalent


def _pages() -> list[tuple[str, bytes]]:
    from fixtures.payer_site.site import PayerSite, body

    pages = []
    site = PayerSite(documents=1000, html_only=True)
    resources = site.resources("week1")
    pages += [(path, body(resources[path]).data) for path in sorted(site.document_paths("week1"))]
    named = PayerSite()
    for scenario in ("week1", "week2"):
        for path, resource in sorted(named.resources(scenario).items()):
            if resource.content_type.startswith("text/html"):
                pages.append((f"{scenario}:{path}", body(resource).data))
    for base in (ROOT / "tests", ROOT / "fixtures"):
        pages += [(str(path), path.read_bytes()) for path in sorted(base.rglob("*.htm*"))]
    pages += [(f"chrome {variant}", chrome_page(variant).encode()) for variant in (0, 1)]
    return pages


PAGES = _pages()
# The real corpora's captures are visible text (parsed as text, never by trafilatura), read here
# as HTML trees all the same; the fixture site's 1,000 pages share a template, four of them.
TREES = [
    *(page for page in PAGES if not page[0].startswith("/cpb/")),
    *((str(path), path.read_bytes()) for path in sorted(REALDATA.rglob("*.htm*"))),
    *PAGES[:1000:250],
]


@pytest.mark.slow
def test_alike_where_trafilatura_calls_them_on_every_page(
    checking: tuple[list[str], list[int]],
) -> None:
    differ, calls = checking
    for name, content in PAGES:
        with contextlib.suppress(ParseError):  # an error page: refused before trafilatura runs
            parse_document(content, "text/html; charset=utf-8", document_id=name)
    assert not differ
    assert len(calls) >= len(TRANSLATIONS) * 1000


@pytest.mark.parametrize(("name", "content"), TREES, ids=[name for name, _ in TREES])
def test_alike_on_the_pages_trees_from_every_element(name: str, content: bytes) -> None:
    """On the tree as parsed, as handed to trafilatura, and after trafilatura's cleaning and tag
    conversion (``<list>``, ``<item>``), from every element as the context."""
    root = _parse_tree(content)
    if root is None:
        return
    _assert_alike(root)
    _strip(root)
    _assert_alike(root)
    tree = _trafilatura_input(root)
    if isinstance(tree, str):
        return
    converted = convert_tags(tree_cleaning(copy.deepcopy(tree), _extractor()), _extractor())
    _assert_alike(converted)


# Tags the expressions name, and others; "Div" and a namespaced div are not ``self::div``.
TAGS = (
    "div",
    "p",
    "span",
    "section",
    "list",
    "item",
    "article",
    "main",
    "aside",
    "ol",
    "ul",
    "details",
    "h1",
    "h1",
    "h2",
    "a",
    "table",
    "li",
    "Div",
    "{urn:x}div",
)
# id, class and style weigh most: ``@id|@class`` and ``@id|@style`` read the first present.
ATTRIBUTES = (
    *("id", "class") * 4,
    *("style", "role", "aria-hidden") * 2,
    "itemprop",
    "data-component",
    "data-lp-replacement-content",
    "title",
    "{urn:x}id",
)


def _alternatives(pattern: str) -> list[str]:
    """Strings each alternative of a translated pattern matches, and near misses: the pattern's
    text without its regex syntax, in upper and lower case."""
    words = []
    for alternative in re.split(r"\|", pattern):
        plain = re.sub(r"\(\?:|\(\?!\w+\)|[()^$?]", "", alternative)
        plain = re.sub(r"\[(.)[^\]]*\]", r"\1", plain)
        words += [plain, plain.upper(), plain.lower(), plain.strip(" -")]
    return words


VOCABULARY = sorted(
    {
        word
        for name in dir(trafilatura_xpaths)
        if name.startswith("_") and name.isupper() and not name.endswith(("_TEXT", "_TAGS"))
        for value in [getattr(trafilatura_xpaths, name)]
        if isinstance(value, str)
        for word in _alternatives(value)
    }
    | {
        "commentary",
        "Comments",
        "comment-list",
        "display:none",
        "display: none",
        "DISPLAY:NONE",
        "true",
        "True",
        "Navigation",
        "reply-to",
        "content",
        "Main-Content",
        "PAGE-CONTENT",
        "post",
        "entry",
        "articleContent",
        "articleBody",
        "article",
        "story",
        "text",
        "cell",
        "postarea",
        "art-postcontent",
        "FullText",
        "comments-title",
        "MostPopularStories",
        "elementor-share-buttons",
        "caption",
        "",
    }
)
# The words a single clause turns on, in the cases its translation must tell apart.
KEYWORDS = (
    "cookie",
    "Cookie",
    "hidden",
    "Hidden",
    "reply-",
    "x reply-",
    "fulltext",
    "FullText",
    "nav",
    "Nav",
    "NAV",
    "page-content",
    "Page-Content",
    "PAGE-CONTENT",
    "main-content",
    "Main-Content",
    "comment",
    "Comment",
    "commentary",
    "comol",
    "disqus_thread",
    "mvp-post-add-box",
    "infinite-scroll",
    "caption",
    "true",
    "display:none",
    "",
)
WORDS = st.one_of(st.sampled_from(KEYWORDS), st.sampled_from(VOCABULARY))
VALUES = st.one_of(
    WORDS,
    st.lists(
        st.one_of(WORDS, st.text(alphabet="abnNcCmMpP -_:^", max_size=5)), min_size=2, max_size=3
    ).flatmap(lambda parts: st.sampled_from(("", " ", "-", "_")).map(lambda sep: sep.join(parts))),
)
# Some attributes are tested for one value.
VALUES_OF = {
    "aria-hidden": st.sampled_from(("true", "True", "false", "")),
    "role": st.one_of(
        st.sampled_from(("navigation", "Navigation", "NAV", "article", "main")), VALUES
    ),
}
ATTRS = st.lists(
    st.sampled_from(ATTRIBUTES).flatmap(
        lambda name: st.tuples(st.just(name), VALUES_OF.get(name, VALUES))
    ),
    max_size=5,
    unique_by=lambda pair: pair[0],
)


def _node(depth: int) -> st.SearchStrategy[Any]:
    element = st.tuples(
        st.sampled_from(TAGS),
        ATTRS,
        st.lists(_node(depth - 1), max_size=4) if depth else st.just([]),
    )
    return st.one_of(element, st.just("comment"), st.just("pi")) if depth < 3 else element


def _build(spec: Any, parent: _Element | None = None) -> _Element:
    if spec == "comment":
        node: _Element = etree.Comment("c")
    elif spec == "pi":
        node = etree.ProcessingInstruction("php", "echo 1")
    else:
        tag, attributes, children = spec
        node = etree.Element(tag)
        for key, value in attributes:  # in this order: the order ``@id|@class`` reads
            node.set(key, value)
        for child in children:
            _build(child, node)
    if parent is not None:
        parent.append(node)
    return node


@settings(max_examples=1500)
@given(_node(3))
def test_alike_on_random_trees(spec: Any) -> None:
    _assert_alike(_build(spec))


# The fixture's record of differences is checked after each example.
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(_node(3).filter(lambda spec: spec not in ("comment", "pi")), min_size=1, max_size=6)
)
def test_alike_on_random_pages_where_trafilatura_calls_them(
    checking: tuple[list[str], list[int]], blocks: list[Any]
) -> None:
    differ, _ = checking
    body = etree.Element("body")
    for spec in blocks:
        block = _build(spec, body)
        block.text = "Aetna considers this treatment medically necessary. " * 8
        for element in block.iterdescendants(etree.Element):
            element.text = "Prior authorization is required for members. "
            element.tail = "The criteria apply. "
    html = etree.Element("html")
    html.append(body)
    markup = etree.tostring(html, encoding="unicode", method="html")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trafilatura.extract(markup, options=_extractor())
    assert not differ


# The points where an XPath reading and a plain Python one part, each a case of its own.
CASES = {
    "first of id and class": (
        '<div class="x" id="cookie"/><div id="cookie" class="x"/><div id="" class="cookie"/>',
        '<span class="reply-x" id="y"/><span id="y" class="reply-x"/>',
    ),
    "first of id and style": (
        '<p style="a" id="hidden"/><p id="hidden" style="a"/><p style="hidden"/>',
    ),
    "regex flags and translate": (
        '<div class="FullText"/><div class="FULLTEXT"/>',
        '<i role="NAVIGATION"/><p role="Navigation"/>',
        '<section class="Page-Content"/><section class="PAGE-CONTENT"/>',
        '<div id="Main-Content"/><div class="MAIN-CONTENT"/><div class="Main-content"/>',
    ),
    "first match per parent": (
        '<div class="post"/><div class="post"/><section><div class="x"/>',
        '<div class="entry"><main class="articleBody"/></div><main class="articleBody"/></section>',
    ),
    "first match in the document": (
        '<div><div id="story"><div class="text"/></div></div>',
        '<div id="content"><div class="content"/></div>',
    ),
    "comment lists": (
        '<ol id="comments"/><ul class="article-comments"/><ol id="disqus_thread"/>',
        '<div id="disqus_thread"/><ul id="commentary"/><ul class="Comment x"/><list id="comol"/>',
    ),
    "infinite scroll": (
        '<div class="infinite-scroll"><h1/></div><div class="infinite-scroll"><p/></div>',
        '<div class="mvp-post-add-box"><h1/></div>',
        '<aside id="infinitescroll"><section><h1/></section></aside><h1 class="infinite-scroll"/>',
    ),
    "presence and equality": (
        '<b aria-hidden="true"/><b aria-hidden="TRUE"/><span data-lp-replacement-content=""/>',
        '<p class="comments-title"/><p class="comments-title x"/><p itemprop="articleBody"/>',
    ),
    "style": ('<p style="display: none"/><p style="DISPLAY:NONE"/><div style="display:none;"/>',),
    "names in a namespace": (
        '<x:div xmlns:x="urn:x" class="nav"/><div xmlns:x="urn:x" x:id="cookie"/>',
        '<div xmlns:x="urn:x" x:class="cookie" id="z"/>',
        '<div xmlns:x="urn:x" x:class="z" class="cookie"/>',
    ),
    "comments and processing instructions": (
        '<!--nav--><?x cookie?><div class="nav"><!--c--></div>',
    ),
    "captions and share buttons": (
        '<div id="caption"/><figure class="caption"/><item class="x caption"/>',
        '<aside class="elementor-share-buttons"/><p class="elementor-share-buttons"/>',
    ),
}


@pytest.mark.parametrize("parts", CASES.values(), ids=CASES.keys())
def test_alike_on_the_cases_that_part_readings(parts: tuple[str, ...]) -> None:
    markup = "".join(parts)
    tree = etree.fromstring(f"<r><main>{markup}</main><div>{markup}</div></r>")
    _assert_alike(tree)
    assert any(equivalent.xpath(tree) for equivalent in _installed())


def test_a_document_or_variables_go_to_the_xpath() -> None:
    equivalent = _installed()[0]
    tree = etree.ElementTree(etree.fromstring('<r><div role="Navigation"/></r>'))
    assert _same(equivalent(tree), equivalent.xpath(tree))
    assert len(equivalent(tree)) == 1
    assert equivalent(tree.getroot(), unused="x") == equivalent.xpath(tree.getroot(), unused="x")


def test_a_changed_expression_is_left_to_trafilatura(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    discard, hidden = (
        etree.XPath(translation.text, namespaces=EXSLT) for translation in TRANSLATIONS[:2]
    )
    changed = etree.XPath(TRANSLATIONS[0].text.replace("'cookie'", "'cookies'"), namespaces=EXSLT)
    monkeypatch.setattr(xpaths, "OVERALL_DISCARD_XPATH", [changed, hidden])
    monkeypatch.setattr(xpaths, "REMOVE_COMMENTS_AND_LISTS_XPATH", [])
    with caplog.at_level(logging.DEBUG, logger=trafilatura_xpaths.__name__):
        install()
    assert xpaths.OVERALL_DISCARD_XPATH[0] is changed
    assert isinstance(xpaths.OVERALL_DISCARD_XPATH[1], Equivalent)
    assert xpaths.OVERALL_DISCARD_XPATH[1].xpath is hidden
    assert "OVERALL_DISCARD_XPATH[0] is not the expression translated" in caplog.text
    assert "REMOVE_COMMENTS_AND_LISTS_XPATH[0]" in caplog.text

    monkeypatch.setattr(xpaths, "OVERALL_DISCARD_XPATH", [discard])
    monkeypatch.setattr(xpaths, "REGEXP_NS", "urn:other")
    install()
    assert xpaths.OVERALL_DISCARD_XPATH[0] is discard
