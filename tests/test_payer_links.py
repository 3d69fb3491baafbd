"""`sources.payer_links` against Scrapy itself: the links, the index-page verdict and the meta
refresh the in-process fetch sees must be those the crawl (`sources.payer_crawl`) would see, on
made-up pages with the awkward cases and on every real payer HTML page of the shared data."""

from __future__ import annotations

from pathlib import Path

import pytest
from realdata_support import REALDATA
from scrapy.http import HtmlResponse
from scrapy.linkextractors import LinkExtractor
from scrapy.utils.response import get_meta_refresh

from sources.payer_crawl import _index_problem
from sources.payer_links import extract_links, index_problem, meta_refresh, read_page

HTML = "text/html"

PAGES: dict[str, tuple[str, bytes]] = {
    "plain": (
        HTML,
        b"""<html><head><title>Policies</title></head><body>
        <p>Clinical policy bulletins of the plan, listed by number, with review dates.</p>
        <a href="/policies/a.pdf">Policy <b>A</b></a> <a href="/policies/b.html"> B </a>
        <a href="/policies/a.pdf">A again</a> text directly in body
        </body></html>""",
    ),
    "base-fragments-area": (
        HTML,
        b"""<html><head><title>Policies</title><base href="/cpb/"></head><body>
        <a href="a.html#top"> CPB
          0001 </a><a href="a.html#x">again</a><a href="a.html">bare</a>
        <map><area href="/cpb/b.html"></map>
        <a href="https://other.example/cpb/c.html">off site</a>
        <a href="/private/d.html">private</a><a href="mailto:x@example.org">mail</a>
        <a href="javascript:void(0)">js</a><a href="ftp://h/cpb/f.pdf">ftp</a>
        <a href="file:///etc/cpb/passwd">file</a><a href="">empty</a><a>no href</a>
        <a href="/cpb/e.html">denied</a></body></html>""",
    ),
    "whitespace-and-odd-urls": (
        HTML,
        b"""<html><body><ul>
        <li><a href="  /cpb/space name.pdf\n">spaces</a></li>
        <li><a href="/cpb/caf\xc3\xa9.html">caf\xc3\xa9</a></li>
        <li><a href="http://[bad/cpb/x">bad</a></li>
        <li><a href="/cpb/q.html?b=1&amp;a=2">query</a></li>
        <li><A HREF="/cpb/UPPER.HTML">upper</A></li>
        <li><a href="//127.0.0.1:9/cpb/scheme-relative.pdf">scheme-relative</a></li>
        <li><a href="../cpb/../cpb/dots.pdf">dots</a></li>
        </ul></body></html>""",
    ),
    "latin1-declared-in-meta": (
        "text/html",
        b'<html><head><meta charset="iso-8859-1"><title>Politiques</title></head><body>'
        b'<a href="/cpb/r\xe9sum\xe9.html">r\xe9sum\xe9</a></body></html>',
    ),
    "charset-in-header": (
        "text/html; charset=windows-1252",
        b'<html><body><a href="/cpb/\x93quoted\x94.html">\x93q\x94</a></body></html>',
    ),
    "undeclared-cp1252": (
        HTML,
        b'<html><body><p>Caf\xe9 policies \x96 medical</p><a href="/cpb/na\xefve.html">'
        b"na\xefve caf\xe9 \x96 policy bulletin for the plan</a></body></html>",
    ),
    "xhtml": (
        "application/xhtml+xml",
        b'<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
        b'<body><a href="/cpb/x.html">x</a></body></html>',
    ),
    "bom": (HTML, b'\xef\xbb\xbf<html><body><a href="/cpb/bom.html">bom</a></body></html>'),
    "nul-and-empty": (HTML, b"\x00\x00  "),
    "error-page": (
        HTML,
        b"<html><head><title>Access Denied</title></head><body><h1>Access Denied</h1>"
        b"<p>You don't have permission to access this page on this server.</p></body></html>",
    ),
    "refresh": (
        HTML,
        b'<html><head><meta http-equiv="refresh" content="0; url=/cpb/new-index.html">'
        b'</head><body><a href="/cpb/a.html">a</a></body></html>',
    ),
    "slow-refresh": (
        HTML,
        b'<html><head><meta http-equiv="Refresh" content="300; url=/cpb/later.html">'
        b'</head><body><a href="/cpb/a.html">a</a></body></html>',
    ),
    "refresh-in-noscript": (
        HTML,
        b'<html><head><noscript><meta http-equiv="refresh" content="0;url=/nojs"></noscript>'
        b'</head><body><a href="/cpb/a.html">a</a></body></html>',
    ),
}
FILTERS = [((), ()), ((r"/cpb/",), (r"e\.html",)), ((r"\.pdf$", r"policies"), (r"a\.pdf",))]


def _scrapy(
    url: str, content_type: str, body: bytes, allow: tuple[str, ...], deny: tuple[str, ...]
):
    response = HtmlResponse(url, body=body, headers={"Content-Type": content_type})
    extractor = LinkExtractor(allow=allow, deny=deny, unique=True, deny_extensions=())
    links = [(link.url, link.text) for link in extractor.extract_links(response)]
    interval, target = get_meta_refresh(response, ignore_tags=["noscript"])
    refresh = target if target and interval is not None and interval < 100 else None
    return links, _index_problem(response), refresh


def _ours(url: str, content_type: str, body: bytes, allow: tuple[str, ...], deny: tuple[str, ...]):
    page = read_page(body, url, content_type)
    links = extract_links(page, allow=allow, deny=deny)
    return links, index_problem(page), meta_refresh(page)


@pytest.mark.parametrize(("allow", "deny"), FILTERS, ids=["all", "cpb", "pdf"])
@pytest.mark.parametrize("name", sorted(PAGES))
def test_links_equal_scrapys_link_extractor(
    name: str, allow: tuple[str, ...], deny: tuple[str, ...]
) -> None:
    content_type, body = PAGES[name]
    url = "http://127.0.0.1:8000/index/page.html"
    assert _ours(url, content_type, body, allow, deny) == _scrapy(
        url, content_type, body, allow, deny
    )


def test_the_awkward_cases_are_really_there() -> None:
    """The comparison above is only worth something if the pages exercise the differences."""
    url = "http://127.0.0.1:8000/index/page.html"
    links, _, _ = _ours(url, HTML, PAGES["base-fragments-area"][1], (), ())
    urls = [u for u, _text in links]
    assert "http://127.0.0.1:8000/cpb/a.html#top" in urls and (
        "http://127.0.0.1:8000/cpb/a.html#x" in urls  # unique by the exact URL
    )
    assert "ftp://h/cpb/f.pdf" in urls and not any(u.startswith("mailto:") for u in urls)
    links, _, _ = _ours(url, HTML, PAGES["whitespace-and-odd-urls"][1], (), ())
    assert "http://127.0.0.1:8000/cpb/space%20name.pdf" in [u for u, _ in links]
    assert _ours(url, HTML, PAGES["error-page"][1], (), ())[1] is not None
    assert (
        _ours(url, HTML, PAGES["refresh"][1], (), ())[2]
        == "http://127.0.0.1:8000/cpb/new-index.html"
    )
    assert _ours(url, HTML, PAGES["slow-refresh"][1], (), ())[2] is None


def _real_pages() -> list[Path]:
    if not REALDATA.exists():
        return []
    return sorted(p for p in REALDATA.rglob("*") if p.suffix.lower() in (".html", ".htm"))


@pytest.mark.parametrize("path", _real_pages() or [None], ids=lambda p: p.name if p else "absent")
def test_links_equal_scrapys_on_real_payer_pages(path: Path | None) -> None:
    if path is None:
        pytest.skip(f"real data not present at {REALDATA}")
    body = path.read_bytes()
    url = "https://www.payer.example/medical-policies/" + path.name
    for allow, deny in [((), ()), ((r"polic", r"\.pdf"), (r"news",))]:
        assert _ours(url, HTML, body, allow, deny) == _scrapy(url, HTML, body, allow, deny)


_HREF_PARTS = ["/", "/", "a", "B9", ".", "..", "%", "%2F", "?", "#", ";", " ", "\u00e9", ":", "@"]
_HREF_PARTS += ["'", "(", "~", "+", "-", "_", "!", "$", "&amp;", "*", ",", "=", "//", "x.pdf"]


@pytest.mark.parametrize(
    ("url", "head"),
    [
        ("http://127.0.0.1:8000/index/page.html", ""),
        ("https://Policies.Example.COM:443/a/b/", ""),
        ("http://127.0.0.1:8000/index/page.html", '<base href="https://other.example/x/">'),
        ("http://user@127.0.0.1/index.html", ""),
    ],
    ids=["plain", "upper-host-default-port", "base", "userinfo"],
)
def test_random_hrefs_equal_scrapys(url: str, head: str) -> None:
    """Many generated links, plain paths (the quick path) and awkward ones (the full one)."""
    import random

    from sources.payer_links import _PLAIN_PATH

    draw = random.Random(17)
    hrefs = [
        "/" * draw.randint(0, 1) + "".join(draw.choices(_HREF_PARTS, k=draw.randint(1, 8)))
        for _ in range(1500)
    ]
    links = "".join(f'<a href="{href}">{n}</a>' for n, href in enumerate(hrefs))
    body = f"<html><head>{head}</head><body>{links}</body></html>".encode()
    assert _ours(url, HTML, body, (), ()) == _scrapy(url, HTML, body, (), ())
    plain = sum(bool(_PLAIN_PATH.match(h.replace("&amp;", "&"))) for h in hrefs)
    assert 100 < plain < len(hrefs) - 100  # both paths were taken
