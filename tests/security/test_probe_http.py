"""The API and export sources (CMS Coverage API over aiohttp, MCD exports over httpx) against
hostile servers: a redirect to another host is refused before connecting, a name that resolves
to loopback is refused after DNS, and a trickling server hits the whole-download deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from fixtures.loopback import Fault
from fixtures.probes import ProbeSite
from monitor.errors import FetchError, SourceError
from sources.cms_coverage import CmsCoverageOptions, CmsCoverageSource
from sources.mcd_downloads import McdDownloadsOptions, McdDownloadsSource

ZIP_PATH = "/exports/current_lcd.zip"


@pytest.fixture
def site() -> Iterator[ProbeSite]:
    with ProbeSite({ZIP_PATH: ("application/zip", b"PK\x05\x06" + b"\0" * 18)}) as server:
        yield server


def _list(source: McdDownloadsSource | CmsCoverageSource) -> None:
    async def run() -> None:
        try:
            await source.list_documents({})
        finally:
            await source.aclose()

    asyncio.run(run())


def _mcd(base_url: str, **options: object) -> McdDownloadsSource:
    settings: dict[str, object] = {"document_types": ("lcd",), "max_retries": 0, **options}
    return McdDownloadsSource(
        name="mcd", options=McdDownloadsOptions(base_url=base_url, **settings)
    )


@pytest.mark.parametrize(
    "target",
    [
        "{internal}/latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/current_lcd.zip",
        "{site}:6379/",  # same host, another port
        "file:///etc/passwd",
    ],
)
def test_mcd_redirect_off_policy_is_refused_without_a_request(
    site: ProbeSite, internal: ProbeSite, target: str
) -> None:
    location = target.format(internal=internal.base_url, site=site.base_url.rsplit(":", 1)[0])
    site.inject(ZIP_PATH, Fault.redirect(location))
    with pytest.raises(FetchError, match="refused by the outbound policy") as refused:
        _list(_mcd(site.base_url + "/exports"))
    assert "not followed" in str(refused.value)
    assert internal.request_count == 0
    assert site.requests == [ZIP_PATH]


def test_mcd_redirect_on_its_own_host_is_followed(site: ProbeSite) -> None:
    site.inject(ZIP_PATH, Fault.redirect("/mirror/current_lcd.zip"))
    site.pages["/mirror/current_lcd.zip"] = site.pages[ZIP_PATH]
    with pytest.raises(SourceError) as failed:  # the empty zip itself is refused, later
        _list(_mcd(site.base_url + "/exports"))
    assert not isinstance(failed.value, FetchError)
    assert site.requests == [ZIP_PATH, "/mirror/current_lcd.zip"]


def test_mcd_trickling_server_hits_the_deadline(site: ProbeSite) -> None:
    site.pages[ZIP_PATH] = ("application/zip", b"PK" * 4096)
    # 20 pieces 0.3 s apart: each within the 0.4 s read timeout, the whole past 10 x 0.4 s.
    site.inject(ZIP_PATH, Fault.slow_body(6.0))
    with pytest.raises(FetchError, match="no complete download within 4 s"):
        _list(_mcd(site.base_url + "/exports", timeout_seconds=0.4))


def test_mcd_name_resolving_to_loopback_is_refused_after_dns(site: ProbeSite) -> None:
    port = site.base_url.rsplit(":", 1)[1]
    with pytest.raises(FetchError, match=r"'localhost' resolves to 127\.0\.0\.1, a loopback"):
        _list(_mcd(f"http://localhost:{port}/exports"))
    assert site.request_count == 0


def test_cms_name_resolving_to_loopback_is_refused_after_dns(site: ProbeSite) -> None:
    port = site.base_url.rsplit(":", 1)[1]
    options = CmsCoverageOptions(base_url=f"http://localhost:{port}", max_retries=0)
    with pytest.raises(FetchError, match=r"'localhost' resolves to 127\.0\.0\.1, a loopback"):
        _list(CmsCoverageSource(name="cms", options=options))
    assert site.request_count == 0
