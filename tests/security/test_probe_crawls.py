"""Payer and MAC crawls against hostile pages: a meta refresh, link or redirect to an internal
address (127.0.0.2 listening and counting, 169.254.169.254, 10.0.0.1, or an allowed name that
resolves to loopback) makes no request there, and the document is an error with its reason,
never a returned body."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from diffing.model import RawDocument
from fixtures.loopback import Fault
from fixtures.probes import HTML, PDF_TYPE, SMALL_PDF, ProbeSite, link_page, refresh_page
from monitor.errors import SourceError
from sources.base import FetchFailure, FetchResult, Listing
from sources.mac_bulletins import MacBulletinsOptions, MacBulletinsSource
from sources.payer_policies import PayerPoliciesOptions, PayerPoliciesSource

pytestmark = pytest.mark.slow

ARTICLE = (
    b"<!DOCTYPE html><html><head><title>Prior authorization update</title></head><body>"
    b"<article><h1>Prior authorization update</h1><p>Effective 03/01/2026 prior authorization "
    b"is required for CPT 97110.</p></article></body></html>"
)


@pytest.fixture
def site() -> Iterator[ProbeSite]:
    with ProbeSite() as server:
        yield server


def _hostile_targets(site: ProbeSite, internal: ProbeSite, secret: str) -> dict[str, str]:
    port = site.base_url.rsplit(":", 1)[1]
    return {
        "other": internal.base_url + "/latest/meta-data/",
        "metadata": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "private": "http://10.0.0.1/admin",
        # An allowed host name (allowed_hosts) that resolves to loopback: refused after DNS.
        "localhost": f"http://localhost:{port}{secret}",
    }


def _run(source: PayerPoliciesSource | MacBulletinsSource) -> tuple[Listing, list[FetchResult]]:
    async def run() -> tuple[Listing, list[FetchResult]]:
        try:
            listing = await source.list_documents({})
            return listing, [r async for r in source.fetch(listing.documents)]
        finally:
            await source.aclose()

    return asyncio.run(run())


def test_payer_meta_refresh_and_links_to_internal_addresses_make_no_request(
    site: ProbeSite, internal: ProbeSite
) -> None:
    targets = _hostile_targets(site, internal, "/policies/secret.pdf")
    site.pages["/policies/secret.pdf"] = (PDF_TYPE, SMALL_PDF)
    site.pages["/policies/good.pdf"] = (PDF_TYPE, SMALL_PDF)
    links = {"Good policy": "/policies/good.pdf"}
    for name, target in targets.items():
        site.pages[f"/policies/refresh-{name}.html"] = (HTML, refresh_page(target))
        links[f"Policy {name}"] = f"/policies/refresh-{name}.html"
    links["Linked internal"] = internal.base_url + "/policies/linked.pdf"
    links["Linked metadata"] = "http://169.254.169.254/policies/meta.pdf"
    site.pages["/policies/index.html"] = (HTML, link_page("Drug policies", links))
    # An index page that refreshes away: the listing is incomplete, nothing is requested.
    site.pages["/policies/moved.html"] = (HTML, refresh_page(targets["other"]))
    options = PayerPoliciesOptions(
        payer="Probe",
        start_urls=(site.base_url + "/policies/index.html", site.base_url + "/policies/moved.html"),
        allow=("/policies/",),
        allowed_hosts=("localhost",),
        obey_robots=False,
        download_delay_seconds=0,
        max_retries=0,
        timeout_seconds=10,
        crawl_timeout_seconds=90,
    )
    listing, results = _run(PayerPoliciesSource(name="probe", options=options))

    assert internal.request_count == 0, internal.requests
    assert "/policies/secret.pdf" not in site.requests
    assert not listing.complete
    assert any("moved.html" in p and "outbound policy" in p for p in listing.problems)
    returned = {r.key for r in results if isinstance(r, RawDocument)}
    assert returned == {"/policies/good.pdf"}
    failures = {r.key: r.message for r in results if isinstance(r, FetchFailure)}
    assert set(failures) == {f"/policies/refresh-{name}.html" for name in targets}
    for key, message in failures.items():
        assert "refused by the outbound policy" in message, (key, message)
    assert (
        "resolves to 127.0.0.1, a loopback address" in failures["/policies/refresh-localhost.html"]
    )


def test_payer_redirect_to_an_allowed_name_resolving_inside_is_refused(site: ProbeSite) -> None:
    port = site.base_url.rsplit(":", 1)[1]
    site.pages["/policies/index.html"] = (
        HTML,
        link_page("Drug policies", {"Policy": "/policies/a.pdf"}),
    )
    site.inject("/policies/a.pdf", Fault.redirect(f"http://localhost:{port}/policies/b.pdf"))
    site.pages["/policies/b.pdf"] = (PDF_TYPE, SMALL_PDF)
    options = PayerPoliciesOptions(
        payer="Probe",
        start_urls=(site.base_url + "/policies/index.html",),
        allow=("/policies/",),
        allowed_hosts=("localhost",),
        obey_robots=False,
        download_delay_seconds=0,
        max_retries=0,
    )
    _, results = _run(PayerPoliciesSource(name="probe", options=options))
    assert "/policies/b.pdf" not in site.requests
    [failure] = results
    assert isinstance(failure, FetchFailure) and "loopback" in failure.message


def test_payer_trickling_document_hits_the_download_deadline(site: ProbeSite) -> None:
    site.pages["/policies/index.html"] = (
        HTML,
        link_page("Drug policies", {"Slow": "/policies/slow.pdf"}),
    )
    site.pages["/policies/slow.pdf"] = (PDF_TYPE, SMALL_PDF * 64)
    site.inject("/policies/slow.pdf", Fault.slow_body(6.0))
    options = PayerPoliciesOptions(
        payer="Probe",
        start_urls=(site.base_url + "/policies/index.html",),
        allow=("/policies/",),
        obey_robots=False,
        download_delay_seconds=0,
        max_retries=0,
        timeout_seconds=1.5,  # each piece comes within it; the whole body does not
    )
    _, results = _run(PayerPoliciesSource(name="probe", options=options))
    [failure] = results
    assert isinstance(failure, FetchFailure)
    assert "timed out" in failure.message.lower() or "timeout" in failure.message.lower()


def _feed(entries: dict[str, str]) -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>{link}</link>"
        "<pubDate>Tue, 03 Feb 2026 14:00:00 -0500</pubDate></item>"
        for title, link in entries.items()
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>'
        f"{items}</channel></rss>"
    ).encode()


def test_mac_feed_entries_that_refresh_inside_make_no_request(
    site: ProbeSite, internal: ProbeSite
) -> None:
    targets = _hostile_targets(site, internal, "/news/secret.html")
    site.pages["/news/secret.html"] = (HTML, ARTICLE)
    site.pages["/news/good.html"] = (HTML, ARTICLE)
    entries = {"Good": site.base_url + "/news/good.html"}
    for name, target in targets.items():
        site.pages[f"/news/refresh-{name}.html"] = (HTML, refresh_page(target))
        entries[f"Moved {name}"] = site.base_url + f"/news/refresh-{name}.html"
    entries["Internal"] = internal.base_url + "/news/x.html"
    site.pages["/feed.xml"] = ("application/rss+xml", _feed(entries))
    options = MacBulletinsOptions(
        mac="Probe",
        feed_url=site.base_url + "/feed.xml",
        allowed_hosts=("127.0.0.1", "localhost"),
        obey_robots=False,
        download_delay_seconds=0,
        max_retries=0,
    )
    _, results = _run(MacBulletinsSource(name="probe", options=options))
    assert internal.request_count == 0, internal.requests
    assert "/news/secret.html" not in site.requests
    assert {r.key for r in results if isinstance(r, RawDocument)} == {"/news/good.html"}
    failures = {r.key: r.message for r in results if isinstance(r, FetchFailure)}
    assert set(failures) == {f"/news/refresh-{name}.html" for name in targets}
    assert all("refused by the outbound policy" in m for m in failures.values()), failures


def test_mac_listing_that_refreshes_inside_fails_the_run_without_a_request(
    site: ProbeSite, internal: ProbeSite
) -> None:
    site.pages["/news/"] = (HTML, refresh_page(internal.base_url + "/latest/meta-data/"))
    options = MacBulletinsOptions(
        mac="Probe",
        listing_urls=(site.base_url + "/news/",),
        item_selector="li",
        obey_robots=False,
        download_delay_seconds=0,
        max_retries=0,
    )
    with pytest.raises(SourceError, match="outbound policy"):
        _run(MacBulletinsSource(name="probe", options=options))
    assert internal.request_count == 0, internal.requests
