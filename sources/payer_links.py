"""The links of a payer index page exactly as the Scrapy crawl (`sources.payer_crawl`) finds them,
without importing Scrapy (half a second): the in-process fetch (`sources.payer_recheck`) must
follow the links, and judge the pages, that the crawl would.

What is reproduced, from Scrapy 2.x: the response's text (`TextResponse.encoding` and `.text`:
BOM, then the Content-Type charset, then the body's declaration, then ascii / utf-8 / detection),
its parse (parsel's `create_root_node`), the base URL (`<base href>` in the first 4,096
characters), `LinkExtractor(allow=, deny=, unique=True, deny_extensions=())` (``a`` and ``area``
``href``, HTML5 whitespace stripped, joined, made safe with `safe_url_string`, schemes http,
https, file and ftp, unique by the exact URL, fragment included, first occurrence kept, text by
XPath ``string()``), the crawl's `_index_problem`, and whether `MetaRefreshMiddleware` would
follow a ``<meta http-equiv="refresh">`` (then only the crawl can say what the page is).
`tests/test_payer_links.py` holds this equal to Scrapy's own classes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import lxml.etree
import lxml.html
from w3lib.encoding import (
    html_body_declared_encoding,
    html_to_unicode,
    http_content_type_encoding,
    read_bom,
    resolve_encoding,
)
from w3lib.html import get_base_url, get_meta_refresh, strip_html5_whitespace
from w3lib.url import safe_url_string

from diffing.parse.clean import error_page_reason

# Content types Scrapy makes an `HtmlResponse` of (scrapy/mime.types via `responsetypes`).
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "application/vnd.wap.xhtml+xml"})
META_REFRESH_MAX_DELAY = 100.0  # Scrapy's METAREFRESH_MAXDELAY
_LINK_SCHEMES = frozenset({"http", "https", "file", "ftp"})  # scrapy.linkextractors._is_valid_url
_REFRESH = re.compile(rb"refresh", re.IGNORECASE)
_string = lxml.etree.XPath("string()")
_titles = lxml.etree.XPath("descendant-or-self::title/text()")  # "title::text"
_body_texts = lxml.etree.XPath(
    "descendant-or-self::body/descendant-or-self::text()"
)  # "body *::text"


@dataclass(frozen=True, kw_only=True)
class Page:
    """An HTML response as Scrapy reads it: its encoding, text, base URL and parsed tree."""

    url: str
    encoding: str
    text: str
    base_url: str
    root: lxml.etree._Element


def is_html(content_type: str) -> bool:
    """Whether Scrapy makes an `HtmlResponse` of a response declared `content_type`."""
    return content_type.split(";", 1)[0].strip().lower() in HTML_TYPES


def _auto_detect(body: bytes) -> str | None:
    for encoding in ("ascii", "utf-8"):  # TextResponse._auto_detect_fun
        try:
            body.decode(encoding)
        except UnicodeError:
            continue
        return resolve_encoding(encoding)
    from charset_normalizer import from_bytes  # rare: only undeclared, non-UTF-8 pages

    match = from_bytes(body).best()
    return resolve_encoding(match.encoding) if match else None


def page_encoding(body: bytes, content_type: str) -> str:
    """`TextResponse.encoding`."""
    declared = (
        read_bom(body)[0]
        or http_content_type_encoding(content_type)
        or html_body_declared_encoding(body)
    )
    if declared:
        return declared
    return html_to_unicode(
        content_type, body, auto_detect_fun=_auto_detect, default_encoding="ascii"
    )[0]


def read_page(body: bytes, url: str, content_type: str) -> Page:
    """The page as Scrapy's `HtmlResponse` and its `Selector` see it."""
    encoding = page_encoding(body, content_type)
    text = html_to_unicode(f"charset={encoding}", body)[1]
    base_url = get_base_url(text[0:4096], url, encoding)
    data = text.strip().replace("\x00", "").encode("utf-8") or b"<html/>"
    parser = lxml.html.HTMLParser(recover=True, encoding="utf-8", huge_tree=True)
    root = lxml.etree.fromstring(data, parser=parser, base_url=base_url)
    if root is None:
        root = lxml.etree.fromstring(b"<html/>", parser=parser, base_url=base_url)
    return Page(url=url, encoding=encoding, text=text, base_url=base_url, root=root)


def meta_refresh(page: Page) -> str | None:
    """The URL Scrapy's `MetaRefreshMiddleware` would go to instead of reading this page."""
    if not _REFRESH.search(page.text[0:4096].encode("utf-8", errors="replace")):
        return None  # the common case, without w3lib's scan
    interval, target = get_meta_refresh(
        page.text[0:4096], page.base_url, page.encoding, ignore_tags=["noscript"]
    )
    if target and interval is not None and interval < META_REFRESH_MAX_DELAY:
        return target
    return None


def may_refresh(body: bytes, content_type: str) -> bool:
    """Cheap test of a downloaded body: could Scrapy have followed a meta refresh in it? False
    for every body that is not HTML or has no "refresh" near its start."""
    if content_type and not is_html(content_type):
        return False
    if not _REFRESH.search(body, 0, 4 * 4096):
        return False
    return meta_refresh(read_page(body, "http://refresh.invalid/", content_type)) is not None


def extract_links(
    page: Page, *, allow: Iterable[str], deny: Iterable[str]
) -> list[tuple[str, str]]:
    """(URL, link text as in the page) of each link `LinkExtractor(allow=allow, deny=deny,
    unique=True, deny_extensions=())` extracts, in its order."""
    allowed = [re.compile(p) for p in allow]
    denied = [re.compile(p) for p in deny]
    links: list[tuple[str, str]] = []
    seen: set[str] = set()
    origin = _plain_origin(page)
    for element in page.root.iter(*_LINK_TAGS):
        value = element.get("href")
        if value is None:
            continue
        href = strip_html5_whitespace(value)
        if origin is not None and _PLAIN_PATH.match(href):
            url = origin + href  # what the three steps below give such a path, 20 times quicker
        else:
            try:
                url = urljoin(page.base_url, href)
                url = safe_url_string(url, encoding=page.encoding)
            except ValueError:
                continue  # a bogus link, skipped by Scrapy as well
            url = urljoin(page.url, url)
        if url in seen or url.split("://", 1)[0] not in _LINK_SCHEMES:
            continue
        if allowed and not any(p.search(url) for p in allowed):
            continue
        if any(p.search(url) for p in denied):
            continue
        seen.add(url)
        links.append((url, str(_string(element)) or ""))
    return links


_XHTML = "{http://www.w3.org/1999/xhtml}"
_LINK_TAGS = ("a", "area", _XHTML + "a", _XHTML + "area")
# An absolute path whose joining and quoting change nothing: characters `safe_url_string` keeps,
# no empty segment (urljoin drops those), no "." or ".." segment, no query, fragment or params.
_SEGMENT = r"(?!\.\.?(?:/|\Z))[A-Za-z0-9._~!$&'()*+,=:@-]+"
_PLAIN_PATH = re.compile(rf"/(?:{_SEGMENT}/)*(?:{_SEGMENT})?\Z")


def _plain_origin(page: Page) -> str | None:
    """``scheme://host[:port]`` of the base URL when a plain absolute path joined to it is
    just the two strings put together (`_PLAIN_PATH`); None otherwise (the slow path)."""
    parts = urlsplit(page.base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    origin = f"{parts.scheme}://{parts.netloc}"
    try:
        joined = urljoin(page.url, safe_url_string(origin + "/", encoding=page.encoding))
    except ValueError:
        return None
    return origin if joined == origin + "/" else None


def index_problem(page: Page) -> str | None:
    """Why an HTML index page cannot be believed (`sources.payer_crawl._index_problem`)."""
    title = " ".join(str(t) for t in _titles(page.root))
    text = "\n".join(str(t).strip() for t in _body_texts(page.root) if str(t).strip())
    return index_text_problem(title, text)


def index_text_problem(title: str, text: str) -> str | None:
    """Why an index page of this title and body text cannot be believed: an error or
    bot-challenge page (a page with little text may still be a short index). The one verdict
    of the crawl and the in-process fetch alike."""
    reason = error_page_reason(title, text)
    if reason is not None and not reason.startswith("almost no text"):
        return f"looks like an error or bot-challenge page ({reason})"
    return None
