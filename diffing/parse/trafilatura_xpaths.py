"""Exact Python equivalents of the XPath expressions trafilatura evaluates on our pages.

trafilatura's boilerplate and main-block expressions test attributes with ``re:test`` (EXSLT
regular expressions). lxml evaluates that by calling back into Python once per candidate
element and clause, wrapping the attribute values for the call: on the fixture pages (issue 17)
the expressions below were a quarter of the HTML parse's CPU, five times what the same tests
cost as one walk over the elements in Python (two without a regex are here too: libxml2's own
walk of ``.//*`` cost them several times the Python walk of the tags they name). Each
equivalent returns what its expression returns, the same elements in the same (document) order:

- ``.//*`` is the context element's descendant elements (no comments, processing
  instructions or entities; not the context element); ``self::div`` the exact tag name,
  without a namespace (as ``iterdescendants("div")`` matches).
- ``re:test(@id, p)`` is lxml's ``re.compile(p).search(value)``, on "" when the attribute is
  missing; flag ``'i'`` adds `re.IGNORECASE`. ``re:test(@id|@class, p)`` and
  ``starts-with(@id|@class, s)`` test the string value of the first node of the union: the
  attribute that comes first on the element in source order.
- ``@class='v'`` is equality, false for a missing attribute; ``@x`` alone is the attribute's
  presence; ``contains(translate(@role, 'N', 'n'), 'nav')`` replaces then looks for the text.
- ``E[p][1]`` keeps, of each parent's children matching ``E[p]``, the first; ``(E)[1]`` is the
  first match in the document.

An equivalent replaces trafilatura's expression (`install`) only when that expression's text
is, character for character, the text translated here (`_Translation.text`), so a trafilatura
upgrade that changes an expression keeps trafilatura's own evaluation of it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree
from lxml.etree import _Element
from trafilatura import xpaths

_LOG = logging.getLogger(__name__)
_REGEXP_NS = "http://exslt.org/regular-expressions"

_Select = Callable[[_Element], list[_Element]]


def _first_of(element: _Element, first: str, second: str) -> str:
    """The string value of ``@first|@second``: of the attributes present, the one the element
    holds first ("" for neither)."""
    value_a = element.get(first)
    value_b = element.get(second)
    if value_a is None:
        return value_b or ""
    if value_b is None:
        return value_a
    keys = element.keys()
    return value_a if keys.index(first) < keys.index(second) else value_b


# OVERALL_DISCARD_XPATH[0]: boilerplate blocks by tag, role and id/class tokens.
_DISCARD_TAGS = ("div", "item", "list", "p", "section", "span")
_DISCARD_FIRST = "cookie"
_DISCARD_ID = (
    "^shar|social|viral|newsletter|syndication|tags|sidebar|banner|bread-?crumb|button|author|"
    "^(?:jp-|dpsp-content)|bmdh|footer|Footer|share|Share|nav|Nav|menu|related|"
    "message-container|premium|^ad-"
)
_DISCARD_CLASS = (
    "^shar|social|viral|newsletter|syndication|tags|sidebar|banner|bread-?crumb|button|author|"
    "^(?:nav|post-nav|ZendeskForm)|subnav|avigation|navbar|navbox|menu|bar| ad |-ad-|(?:^| )ad-|"
    "dfp[Aa]d|outbrain|taboola|criteo|paid-?content|widget|footer|Footer|byline|Byline|share-|"
    "sociable|embedded|embed|tag-list|consent|modal-content|permission|elated|next-|-stories|"
    "most-popular|more-on|meta|rating|attachment|timestamp|user-info|user-profile|-icon|"
    "article-infos|message-container|slide|viewport|overlay|options|expand|obfuscated|blurred|"
    "mol-factbox|yin|zlylin|nfoline"
)
_DISCARD_TEXT = f"""
        .//*[self::div or self::item or self::list or self::p or self::section or self::span][
        @data-lp-replacement-content or
        contains(translate(@role, 'N', 'n'), 'nav') or
        contains(@data-component, 'MostPopularStories') or
        re:test(@id|@class, '{_DISCARD_FIRST}') or
        re:test(@id, '{_DISCARD_ID}') or
        re:test(@class, '{_DISCARD_CLASS}')]
        """


_DISCARD_FIRST_RE = re.compile(_DISCARD_FIRST).search
_DISCARD_ID_RE = re.compile(_DISCARD_ID).search
_DISCARD_CLASS_RE = re.compile(_DISCARD_CLASS).search


def _discard(tree: _Element) -> list[_Element]:
    found = []
    for element in tree.iterdescendants(*_DISCARD_TAGS):
        get = element.get
        role = get("role")
        component = get("data-component")
        if (
            get("data-lp-replacement-content") is not None
            or (role is not None and "nav" in role.replace("N", "n"))
            or (component is not None and "MostPopularStories" in component)
            or _DISCARD_ID_RE(get("id") or "")
            or _DISCARD_CLASS_RE(get("class") or "")
            or _DISCARD_FIRST_RE(_first_of(element, "id", "class"))
        ):
            found.append(element)
    return found


# OVERALL_DISCARD_XPATH[1]: hidden blocks and comment furniture, on any element.
_HIDDEN_FIRST = "hidden"
_HIDDEN_ID = "reader-comments|akismet"
_HIDDEN_CLASS = (
    "^hide-|comments-title|nocomments|-reply-|message|akismet|suggest-links|-hide-|hide-print|"
    " hidden| hide|noprint|notloaded"
)
_HIDDEN_TEXT = f"""
        .//*[@class='comments-title' or
        starts-with(@id|@class, 'reply-') or
        re:test(@id|@style, '{_HIDDEN_FIRST}') or
        contains(@style, 'display:none') or contains(@style, 'display: none') or
        re:test(@id, '{_HIDDEN_ID}') or
        re:test(@class, '{_HIDDEN_CLASS}') or @aria-hidden='true']
        """


_HIDDEN_FIRST_RE = re.compile(_HIDDEN_FIRST).search
_HIDDEN_ID_RE = re.compile(_HIDDEN_ID).search
_HIDDEN_CLASS_RE = re.compile(_HIDDEN_CLASS).search


def _hidden(tree: _Element) -> list[_Element]:
    found = []
    for element in tree.iterdescendants(etree.Element):
        if not element.keys():
            continue  # most elements have no attribute, and every clause tests one
        get = element.get
        ident = get("id")
        cls = get("class")
        style = get("style")
        if ident is None and cls is None and style is None:
            if get("aria-hidden") == "true":
                found.append(element)
            continue  # every other clause needs one of the three (no pattern here matches "")
        if (
            cls == "comments-title"
            or get("aria-hidden") == "true"
            or _first_of(element, "id", "class").startswith("reply-")
            or _HIDDEN_FIRST_RE(_first_of(element, "id", "style"))
            or (style is not None and ("display:none" in style or "display: none" in style))
            or _HIDDEN_ID_RE(ident or "")
            or _HIDDEN_CLASS_RE(cls or "")
        ):
            found.append(element)
    return found


# REMOVE_COMMENTS_AND_LISTS_XPATH[0]: comment sections, and ol/ul comment lists.
_COMMENTS_TAGS = ("div", "list", "section", "details", "ol", "ul")
_COMMENTS_ID = "^(?:[Cc]omment(?!ary)|comol|disqus_thread|dsq-comments)"
_COMMENTS_LIST_ID = "^(?:[Cc]omment(?!ary)|comol)"
_COMMENTS_CLASS = "^[Cc]omment(?!ary)|(?:article|post)-comments"
_COMMENTS_TEXT = f"""
        .//*[self::div or self::list or self::section or self::details or self::ol or self::ul][
        re:test(@id, '{_COMMENTS_ID}') or
        re:test(@class, '{_COMMENTS_CLASS}')][
        not(self::ol or self::ul) or re:test(@id, '{_COMMENTS_LIST_ID}') or re:test(@class, '{_COMMENTS_CLASS}')]
        """  # noqa: E501 (trafilatura's text, as it is)


_COMMENTS_ID_RE = re.compile(_COMMENTS_ID).search
_COMMENTS_LIST_ID_RE = re.compile(_COMMENTS_LIST_ID).search
_COMMENTS_CLASS_RE = re.compile(_COMMENTS_CLASS).search


def _comments(tree: _Element) -> list[_Element]:
    found = []
    for element in tree.iterdescendants(*_COMMENTS_TAGS):
        get = element.get
        ident = get("id") or ""
        cls = get("class") or ""
        if (_COMMENTS_ID_RE(ident) or _COMMENTS_CLASS_RE(cls)) and (
            element.tag not in ("ol", "ul")
            or _COMMENTS_LIST_ID_RE(ident)
            or _COMMENTS_CLASS_RE(cls)
        ):
            found.append(element)
    return found


# RAW_TREE_PRUNE_XPATH[0]: infinite-scroll containers of follow-up articles.
_SCROLL_TAGS = ("div", "section", "aside")
_SCROLL = "mvp-post-add-(?:box|wrap)|infinite-?scroll"
_SCROLL_ADD = "mvp-post-add-(?:box|wrap)"
_SCROLL_TEXT = f"""
        .//*[self::div or self::section or self::aside][
        re:test(@id, '{_SCROLL}') or
        re:test(@class, '{_SCROLL}')][
        not(.//h1) or re:test(@id, '{_SCROLL_ADD}') or re:test(@class, '{_SCROLL_ADD}')]
        """


_SCROLL_RE = re.compile(_SCROLL).search
_SCROLL_ADD_RE = re.compile(_SCROLL_ADD).search


def _scroll(tree: _Element) -> list[_Element]:
    found = []
    for element in tree.iterdescendants(*_SCROLL_TAGS):
        get = element.get
        ident = get("id") or ""
        cls = get("class") or ""
        if (_SCROLL_RE(ident) or _SCROLL_RE(cls)) and (
            next(element.iterdescendants("h1"), None) is None
            or _SCROLL_ADD_RE(ident)
            or _SCROLL_ADD_RE(cls)
        ):
            found.append(element)
    return found


# BODY_XPATH[0], [2], [3]: the main block, by the names content blocks are given.
_BLOCK_TAGS = ("article", "div", "main", "section")
_ARTICLE_ID = (
    "(?:entry|article|art)-content|article__content|article(?:-|__)?body|articleBody|body-text"
)
_ARTICLE_CLASS = (
    "post[-_]text|post-body|post-?entry|post[-_]?content|postContent|post_inner_wrapper|"
    "article-?text|articleText|(?:entry|page|text|article|art)-content|article__content|"
    "article(?:-|__)?body|articleBody|ArticleContent|body-text|article__container"
)
_ARTICLE_TEXT = f"""
        .//*[self::article or self::div or self::main or self::section][
        @class='post' or @class='entry' or
        @itemprop='articleBody' or @id='articleContent' or
        re:test(@id, '{_ARTICLE_ID}') or
        re:test(@class, '{_ARTICLE_CLASS}')
        ][1]
        """


_ARTICLE_ID_RE = re.compile(_ARTICLE_ID).search
_ARTICLE_CLASS_RE = re.compile(_ARTICLE_CLASS).search


def _article(tree: _Element) -> list[_Element]:
    """Of each parent's matching children the first (``[1]`` applies per ``child::`` step)."""
    found = []
    parents = set()
    for element in tree.iterdescendants(*_BLOCK_TAGS):
        get = element.get
        ident = get("id")
        cls = get("class")
        if (
            cls == "post"
            or cls == "entry"
            or get("itemprop") == "articleBody"
            or ident == "articleContent"
            or _ARTICLE_ID_RE(ident or "")
            or _ARTICLE_CLASS_RE(cls or "")
        ):
            parent = element.getparent()
            if parent not in parents:
                parents.add(parent)
                found.append(element)
    return found


_STORY_ID = "^primary|story-body"
_STORY_FULLTEXT = "fulltext"
_STORY_CLASS = (
    "^article |post-bodycopy|story-?content|(?:theme|blog|section|single)-content|single-post|"
    "main-column|wpb_text_column|story-body|field-body"
)
_STORY_TEXT = f"""
        (.//*[self::article or self::div or self::main or self::section][
        @role='article' or
        @id='article' or @id='story' or
        @class='postarea' or @class='art-postcontent' or @class='text' or @class='cell' or @class='story' or
        re:test(@id, '{_STORY_ID}') or
        re:test(@class, '{_STORY_FULLTEXT}', 'i') or
        re:test(@class, '{_STORY_CLASS}')
        ])[1]
        """  # noqa: E501 (trafilatura's text, as it is)
_STORY_IDS = frozenset({"article", "story"})
_STORY_CLASSES = frozenset({"postarea", "art-postcontent", "text", "cell", "story"})


_STORY_ID_RE = re.compile(_STORY_ID).search
_STORY_FULLTEXT_RE = re.compile(_STORY_FULLTEXT, re.IGNORECASE).search
_STORY_CLASS_RE = re.compile(_STORY_CLASS).search


def _story(tree: _Element) -> list[_Element]:
    for element in tree.iterdescendants(*_BLOCK_TAGS):
        get = element.get
        ident = get("id")
        cls = get("class")
        if (
            get("role") == "article"
            or ident in _STORY_IDS
            or cls in _STORY_CLASSES
            or _STORY_ID_RE(ident or "")
            or _STORY_FULLTEXT_RE(cls or "")
            or _STORY_CLASS_RE(cls or "")
        ):
            return [element]
    return []


_MAIN_ID = "content-main|content-body|contentBody"
_MAIN_CLASS = "content[-_]main|content(?:-|__)body"
_MAIN_TEXT = f"""
        (.//*[self::article or self::div or self::main or self::section][
        @id='content' or @class='content' or
        re:test(@id, '{_MAIN_ID}') or
        re:test(@class, '{_MAIN_CLASS}') or
        contains(translate(@id, 'CM','cm'), 'main-content') or contains(translate(@class, 'CM','cm'), 'main-content') or
        contains(translate(@class, 'CP','cp'), 'page-content')
        ])[1]
        """  # noqa: E501 (trafilatura's text, as it is)


_MAIN_ID_RE = re.compile(_MAIN_ID).search
_MAIN_CLASS_RE = re.compile(_MAIN_CLASS).search


def _main(tree: _Element) -> list[_Element]:
    for element in tree.iterdescendants(*_BLOCK_TAGS):
        get = element.get
        ident = get("id") or ""
        cls = get("class") or ""
        if (
            ident == "content"
            or cls == "content"
            or _MAIN_ID_RE(ident)
            or _MAIN_CLASS_RE(cls)
            or "main-content" in ident.replace("C", "c").replace("M", "m")
            or "main-content" in cls.replace("C", "c").replace("M", "m")
            or "page-content" in cls.replace("C", "c").replace("P", "p")
        ):
            return [element]
    return []


# DISCARD_IMAGE_ELEMENTS[0] and RAW_TREE_PRUNE_XPATH[1] test no regex, but libxml2's walk of
# ``.//*`` costs several times the same tests on the elements of the named tags.
_CAPTION_TEXT = """
    .//*[self::div or self::item or self::list or self::p or self::section or self::span][
    contains(@id, 'caption') or contains(@class, 'caption')]
    """


def _caption(tree: _Element) -> list[_Element]:
    return [
        element
        for element in tree.iterdescendants(*_DISCARD_TAGS)
        if "caption" in (element.get("id") or "") or "caption" in (element.get("class") or "")
    ]


_SHARE_TEXT = (
    ".//*[self::div or self::section or self::aside][contains(@class, 'elementor-share-buttons')]"
)


def _share(tree: _Element) -> list[_Element]:
    return [
        element
        for element in tree.iterdescendants(*_SCROLL_TAGS)
        if "elementor-share-buttons" in (element.get("class") or "")
    ]


@dataclass(frozen=True)
class _Translation:
    """Where trafilatura keeps an expression, the text translated, and its translation."""

    name: str
    index: int
    text: str
    select: _Select


TRANSLATIONS = (
    _Translation("OVERALL_DISCARD_XPATH", 0, _DISCARD_TEXT, _discard),
    _Translation("OVERALL_DISCARD_XPATH", 1, _HIDDEN_TEXT, _hidden),
    _Translation("REMOVE_COMMENTS_AND_LISTS_XPATH", 0, _COMMENTS_TEXT, _comments),
    _Translation("RAW_TREE_PRUNE_XPATH", 0, _SCROLL_TEXT, _scroll),
    _Translation("RAW_TREE_PRUNE_XPATH", 1, _SHARE_TEXT, _share),
    _Translation("DISCARD_IMAGE_ELEMENTS", 0, _CAPTION_TEXT, _caption),
    _Translation("BODY_XPATH", 0, _ARTICLE_TEXT, _article),
    _Translation("BODY_XPATH", 2, _STORY_TEXT, _story),
    _Translation("BODY_XPATH", 3, _MAIN_TEXT, _main),
)


class Equivalent:
    """Called as trafilatura calls its `XPath` objects, answering as `xpath` would: on an
    element without variables by `select`, otherwise (a whole document, XPath variables) by
    `xpath` itself."""

    __slots__ = ("select", "xpath")

    def __init__(self, xpath: etree.XPath, select: _Select) -> None:
        self.xpath = xpath
        self.select = select

    @property
    def path(self) -> str:
        return str(self.xpath.path)

    def __call__(self, _etree_or_element: Any, **variables: Any) -> Any:
        if variables or not isinstance(_etree_or_element, _Element):
            return self.xpath(_etree_or_element, **variables)
        return self.select(_etree_or_element)


def install() -> None:
    """Put each equivalent in place of trafilatura's expression, in the list trafilatura's
    modules share, where that expression is the one translated; leave any other as it is."""
    if xpaths.REGEXP_NS != _REGEXP_NS:
        _LOG.debug("trafilatura's re: prefix is %r, not EXSLT's: left as it is", xpaths.REGEXP_NS)
        return
    for translation in TRANSLATIONS:
        expressions = getattr(xpaths, translation.name, None)
        if not isinstance(expressions, list) or len(expressions) <= translation.index:
            _LOG.debug("trafilatura has no %s[%d]", translation.name, translation.index)
            continue
        current = expressions[translation.index]
        if isinstance(current, Equivalent):
            continue  # installed already
        if not isinstance(current, etree.XPath) or current.path != translation.text:
            _LOG.debug(
                "trafilatura's %s[%d] is not the expression translated: left as it is",
                translation.name,
                translation.index,
            )
            continue
        expressions[translation.index] = Equivalent(current, translation.select)
