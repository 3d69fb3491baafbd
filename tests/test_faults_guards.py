"""The guards and the fault injection themselves, at the wire: what each `Fault` does to a real
client, redirects in `HttpFetcher`, content sniffing of payer bodies, and that no name taken
from a fetched URL reaches the filesystem outside the crawl's scratch directory."""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from fixtures.faults import (
    AKAMAI_ACCESS_DENIED,
    LANDING_PAGE,
    OtherHost,
    corrupt_pdf,
    huge_pdf,
)
from fixtures.loopback import Fault, FixtureServer, KeepAliveHandler, write_response
from fixtures.payer_site import AETNA_INDEX_PATH, UHC_INDEX_PATH, PayerSiteFixture
from monitor.errors import FetchError, SourceError
from sources.crawl_child import CrawledSource
from sources.http import HttpFetcher, RetryPolicy
from sources.mac_bulletins import MacBulletinsOptions, MacBulletinsSource
from sources.payer_policies import PayerPoliciesOptions, PayerPoliciesSource, unexpected_content


@pytest.fixture
def site() -> Iterator[OtherHost]:
    """A server on 127.0.0.1 that answers every path with a small PDF (faults injectable)."""
    with OtherHost(host="127.0.0.1") as server:
        yield server


@pytest.fixture
def elsewhere() -> Iterator[OtherHost]:
    with OtherHost() as server:
        yield server


def _raw_get(base_url: str, path: str) -> tuple[int, dict[str, str], bytes]:
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


# --- the faults at the wire ----------------------------------------------------------------


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="needs"):
        Fault()
    with pytest.raises(ValueError, match="3xx"):
        Fault(status=200, location="http://x/")
    with pytest.raises(ValueError, match="not both"):
        Fault(truncate=True, reset=True)
    assert Fault.served(b"x").status == 200
    assert Fault.redirect("/b").location == "/b"


def test_content_type_replaced_or_missing_and_no_length(site: OtherHost) -> None:
    site.inject("/a", Fault(content_type=""))
    site.inject("/b", Fault(content_type="text/html"))
    site.inject("/c", Fault(status=200, body=b"abc" * 1000, declare_length=False))
    _, headers, body = _raw_get(site.base_url, "/a")
    assert "Content-Type" not in headers and body.startswith(b"%PDF-")
    assert _raw_get(site.base_url, "/b")[1]["Content-Type"] == "text/html"
    _, headers, body = _raw_get(site.base_url, "/c")
    assert "Content-Length" not in headers and body == b"abc" * 1000  # ends at close


def test_reset_and_truncation_break_the_body(site: OtherHost) -> None:
    site.inject("/reset", Fault.connection_reset())
    site.inject("/cut", Fault.truncated())
    with pytest.raises(httpx.ReadError):
        httpx.get(site.base_url + "/reset")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(site.base_url + "/cut")
    assert httpx.get(site.base_url + "/reset").status_code == 200  # one request each


def test_slow_body_trickles_past_a_deadline_but_not_a_read_timeout(site: OtherHost) -> None:
    site.inject("/slow", Fault.slow_body(3.0), times=2)
    # Each piece arrives well within a 1 s read timeout: httpx alone would wait it out ...
    assert httpx.get(site.base_url + "/slow", timeout=1.0).content.startswith(b"%PDF-")
    # ... which is why HttpFetcher also has a deadline for the whole response.
    fetcher = _fetcher(deadline_seconds=1.0, allowed_hosts=())
    with pytest.raises(FetchError, match="no complete response within 1 s"):
        asyncio.run(_get(fetcher, site.base_url + "/slow"))


# --- redirects in HttpFetcher ----------------------------------------------------------------


def _fetcher(
    *, allowed_hosts: tuple[str, ...], deadline_seconds: float | None = None
) -> HttpFetcher:
    return HttpFetcher(
        source="test",
        client=httpx.AsyncClient(timeout=5.0, follow_redirects=False),
        retry=RetryPolicy(max_retries=0),
        max_response_bytes=1_000_000,
        concurrency=2,
        allowed_hosts=allowed_hosts,
        deadline_seconds=deadline_seconds,
    )


async def _get(fetcher: HttpFetcher, url: str) -> bytes:
    try:
        return (await fetcher.get(url)).content
    finally:
        await fetcher.client.aclose()


def test_redirect_on_the_same_host_is_followed(site: OtherHost) -> None:
    site.inject("/old", Fault.redirect("/new", status=301))
    body = asyncio.run(_get(_fetcher(allowed_hosts=("127.0.0.1",)), site.base_url + "/old"))
    assert body.startswith(b"%PDF-")
    assert site.requests == ["/old", "/new"]


def test_redirect_to_another_host_is_refused_before_connecting(
    site: OtherHost, elsewhere: OtherHost
) -> None:
    site.inject("/doc", Fault.redirect(elsewhere.base_url + "/doc"))
    with pytest.raises(
        FetchError, match=r"redirected to another host .*127\.0\.0\.2.*not followed"
    ):
        asyncio.run(_get(_fetcher(allowed_hosts=("127.0.0.1",)), site.base_url + "/doc"))
    assert elsewhere.request_count == 0


def test_redirect_loop_and_redirect_without_location(site: OtherHost) -> None:
    site.inject("/loop", Fault.redirect(site.base_url + "/loop"), times=50)
    with pytest.raises(FetchError, match="more than 5 redirects"):
        asyncio.run(_get(_fetcher(allowed_hosts=("127.0.0.1",)), site.base_url + "/loop"))
    assert site.request_count == 6
    site.inject("/bare", Fault(status=302, body=b""))
    with pytest.raises(FetchError, match="HTTP 302"):
        asyncio.run(_get(_fetcher(allowed_hosts=("127.0.0.1",)), site.base_url + "/bare"))


# --- content sniffing of payer bodies --------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "body", "content_type", "refused"),
    [
        ("http://h/p.pdf", LANDING_PAGE, "text/html", "an HTML page titled 'Drug Policies"),
        ("http://h/p.PDF", AKAMAI_ACCESS_DENIED, "", "titled 'Access Denied'"),
        ("http://h/p", b"<html><body>x</body></html>", "application/pdf", "declared"),
        ("http://h/p.pdf", b"", "application/pdf", "an empty body"),
        ("http://h/p.pdf", b"GIF89a\x00\x01", "image/gif", "bytes without a %PDF- header"),
        ("http://h/p.pdf", corrupt_pdf(), "application/pdf", None),  # a PDF: the parser decides
        ("http://h/p.html", LANDING_PAGE, "text/html", None),  # HTML was linked
        ("http://h/p.pdf", huge_pdf()[:2000], "text/html", None),  # sniffed, not declared
    ],
    # Named, not derived from the bodies: a generated PDF carries its creation time, and under
    # pytest-xdist every worker must collect the same test ids.
    ids=[
        "landing-page",
        "access-denied",
        "html-declared-pdf",
        "empty-body",
        "gif",
        "corrupt-pdf",
        "html-linked",
        "pdf-sniffed",
    ],
)
def test_unexpected_content(url: str, body: bytes, content_type: str, refused: str | None) -> None:
    reason = unexpected_content(url, body, content_type)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason and "expected a PDF" in reason


# --- names from URLs never leave the scratch directory ---------------------------------------

_HOSTILE_LINKS = (
    "/policies/../../../../tmp/escape.pdf",
    "/policies/%2e%2e/%2e%2e/%2e%2e/etc/passwd.pdf",
    "/policies/..%2f..%2f..%2froot.pdf",
    "/policies/" + "a" * 300 + ".pdf",
    "/policies/%00nul.pdf",
    "/policies/..\\..\\win.pdf",
    "file:///etc/passwd",
    "/policies/normal.pdf",
)


class _HostileIndex(FixtureServer):
    extra_links: tuple[str, ...] = ()

    def _handler_class(self) -> type[KeepAliveHandler]:
        return _HostileHandler


class _HostileHandler(KeepAliveHandler):
    def _dispatch(self, method: str) -> None:
        path = self.path.partition("?")[0]
        fault = self.server.fixture._record(path, self.path)
        if path == "/index.html":
            hostile = (*_HOSTILE_LINKS, *self.server.fixture.extra_links)
            links = "".join(f'<li><a href="{link}">policy</a></li>' for link in hostile)
            body = f"<html><body><h1>Policies</h1><ul>{links}</ul></body></html>".encode()
            headers = [("Content-Type", "text/html")]
        elif path == "/robots.txt":
            body, headers = b"", [("Content-Type", "text/plain")]
        else:
            body, headers = b"%PDF-1.4\n% policy\n%%EOF\n", [("Content-Type", "application/pdf")]
        status = 200
        if fault is not None and fault.status is not None:
            status, body = fault.status, fault.body or b""
        write_response(self, status, headers, body, fault=fault)


@pytest.mark.parametrize("max_depth", [1, 2], ids=["in-process", "crawl"])
def test_names_from_urls_stay_inside_the_scratch_directory(
    tmp_path: Path, elsewhere: OtherHost, max_depth: int
) -> None:
    before = set(Path("/tmp").iterdir())
    with _HostileIndex() as server:
        server.extra_links = (elsewhere.base_url + "/policies/offsite.pdf",)
        server.inject("/policies/normal.pdf", Fault.redirect("file:///etc/passwd"))
        options = PayerPoliciesOptions(
            payer="Hostile",
            start_urls=(server.base_url + "/index.html",),
            allow=(".",),
            download_delay_seconds=0.0,
            max_retries=0,
            obey_robots=False,
            max_depth=max_depth,  # 1: the in-process fetch; 2: the Scrapy crawl in a child
        )
        source = PayerPoliciesSource(name="hostile", options=options)
        scratch = source._scratch
        listing = asyncio.run(source.list_documents({}))
        assert source.crawled == (max_depth > 1)
        written = [p for p in scratch.rglob("*") if p.is_file()]
        results = scratch / "results.jsonl"
        records = (
            [json.loads(line) for line in results.read_text().splitlines()]
            if source.crawled
            else [*source._documents.values(), *source._errors.values()]
        )
        # The in-process fetch keeps small bodies in memory, under the path each would have
        # been written to (`KEPT_BODY_BYTES`): named as written ones are, read as they are.
        kept = {Path(path): content for path, content in source._kept.items()}
        contents = [p.read_bytes() for p in written] + list(kept.values())
        asyncio.run(source.aclose())
    assert all(p.parent == scratch / "bodies" for p in kept)
    bodies = [p for p in [*written, *kept] if p.parent == scratch / "bodies"]
    assert bodies  # documents were downloaded ...
    assert all(len(p.name) == 64 and p.name.isalnum() for p in bodies)  # ... under sha256 names
    # The crawl's job and results besides the bodies; the in-process fetch writes bodies only.
    job = {scratch / "job.json", scratch / "results.jsonl"} if max_depth > 1 else set()
    assert set(written) - set(bodies) == job
    assert not any(r["url"].startswith("file:") and r["type"] == "document" for r in records)
    assert not any(b"root:" in content for content in contents)  # /etc/passwd never read
    normal = next(d for d in listing.documents if d.key == "/policies/normal.pdf")
    assert normal.fingerprint.startswith("error:")  # its redirect to file: was refused
    assert elsewhere.request_count == 0  # a link to another host is not followed
    assert not any(d.key == "/policies/offsite.pdf" for d in listing.documents)
    # Only the scratch directory was made in /tmp (other tests, run in parallel, make theirs).
    assert set(Path("/tmp").glob("policy-monitor-hostile-*")) - before <= {scratch}
    assert not scratch.exists()


def _payer_source() -> CrawledSource:
    options = PayerPoliciesOptions(payer="P", documents=("http://127.0.0.1/x.pdf",))
    return PayerPoliciesSource(name="p", options=options)


def _mac_source() -> CrawledSource:
    options = MacBulletinsOptions(mac="Novitas", feed_url="http://127.0.0.1/rss")
    return MacBulletinsSource(name="m", options=options)


@pytest.mark.parametrize("make_source", [_payer_source, _mac_source], ids=["payer", "mac"])
def test_a_crawl_record_pointing_outside_the_scratch_directory_is_refused(
    tmp_path: Path, make_source: Callable[[], CrawledSource]
) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    source = make_source()
    try:
        with pytest.raises(SourceError, match="outside its directory"):
            source._body({"path": str(source._scratch / ".." / outside.name)})
        with pytest.raises(SourceError, match="outside its directory"):
            source._body({"path": str(outside)})
    finally:
        asyncio.run(source.aclose())


# --- an index page that cannot be believed ----------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        (Fault.served(AKAMAI_ACCESS_DENIED), "looks like an error or bot-challenge page"),
        (Fault.served(b"<html><body><h1>Policies</h1>" + b"<p>Soon.</p>" * 50), "links to no"),
    ],
    ids=["challenge", "no-links"],
)
def test_an_index_page_replaced_by_an_error_page_makes_the_listing_incomplete(
    fault: Fault, problem: str
) -> None:
    """Otherwise every document it listed would count as missing, and then as withdrawn."""
    with PayerSiteFixture(scenario="week1") as payer_site:
        payer_site.inject(AETNA_INDEX_PATH, fault)
        options = PayerPoliciesOptions(
            payer="Acme",
            start_urls=(
                payer_site.base_url + UHC_INDEX_PATH,
                payer_site.base_url + AETNA_INDEX_PATH,
            ),
            allow=("/policies/drug/", "/cpb/medical/data/"),
            download_delay_seconds=0.0,
            max_retries=0,
        )
        source = PayerPoliciesSource(name="acme", options=options)
        try:
            listing = asyncio.run(source.list_documents({}))
        finally:
            asyncio.run(source.aclose())
    assert not listing.complete
    assert len(listing.problems) == 1 and problem in listing.problems[0]
    assert AETNA_INDEX_PATH in listing.problems[0]
    assert {d.key for d in listing.documents} and all(
        d.key.startswith("/policies/drug/") for d in listing.documents
    )
