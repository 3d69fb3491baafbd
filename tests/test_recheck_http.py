"""The payer re-check's HTTP over aiohttp (`sources.http_aio`) keeps every property of the
httpx path: the outbound policy before a request and after DNS, redirects checked hop by hop,
the size limit, the whole-response deadline, conditional answers and retries."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
from http_support import QuietHandler, loopback_http

from fixtures.loopback import Fault
from fixtures.probes import HTML, ProbeSite
from monitor.errors import FetchError, ResponseTooLarge
from sources.http import FetchedBody, HttpFetcher, RetryPolicy
from sources.http_aio import AiohttpFetcher, policy_session
from sources.outbound import OutboundPolicy

T = TypeVar("T")
PAGE = b"<html><body><p>Prior authorization is required.</p></body></html>"


@pytest.fixture
def site() -> Iterator[ProbeSite]:
    with ProbeSite({"/a.html": (HTML, PAGE)}) as server:
        yield server


@pytest.fixture
def other() -> Iterator[ProbeSite]:
    with ProbeSite({"/secret.html": (HTML, b"secret")}, host="127.0.0.2") as server:
        yield server


def _run(
    site: ProbeSite,
    use: Callable[[HttpFetcher], Awaitable[T]],
    *,
    extra_hosts: tuple[str, ...] = (),
    also: tuple[str, ...] = (),
    max_bytes: int = 1_000_000,
    deadline: float = 10.0,
    retries: int = 0,
) -> T:
    policy = OutboundPolicy.for_source([site.base_url, *also], extra_hosts=extra_hosts)
    retry = RetryPolicy(max_retries=retries, backoff_seconds=0.01)

    async def run() -> T:
        session = policy_session(
            policy, timeout_seconds=deadline, headers={"User-Agent": "t"}, max_connections=4
        )
        fetcher = AiohttpFetcher(
            source="probe",
            session=session,
            retry=retry,
            max_response_bytes=max_bytes,
            concurrency=4,
            deadline_seconds=deadline,
            policy=policy,
            redirect_hosts=policy.hosts,
        )
        try:
            return await use(fetcher)
        finally:
            await session.close()

    return asyncio.run(run())


def _error(site: ProbeSite, url: str, **kwargs: object) -> FetchError:
    async def use(fetcher: HttpFetcher) -> FetchError:
        with pytest.raises(FetchError) as caught:
            await fetcher.get(url)
        return caught.value

    return _run(site, use, **kwargs)  # type: ignore[arg-type]


def test_a_page_and_its_headers_arrive(site: ProbeSite) -> None:
    async def use(fetcher: HttpFetcher) -> FetchedBody:
        return await fetcher.get(site.base_url + "/a.html")

    got = _run(site, use)
    assert (got.status, got.content) == (200, PAGE)
    assert got.headers["content-type"] == HTML
    assert site.request_count == 1


def test_a_conditional_answer_is_304_without_a_body(site: ProbeSite) -> None:
    site.inject("/a.html", Fault.http(304))

    async def use(fetcher: HttpFetcher) -> FetchedBody:
        return await fetcher.get(
            site.base_url + "/a.html", headers={"If-None-Match": '"x"'}, not_modified=True
        )

    got = _run(site, use)
    assert (got.status, got.content) == (304, b"")


def test_another_host_is_refused_without_a_request(site: ProbeSite, other: ProbeSite) -> None:
    error = _error(site, other.base_url + "/secret.html")
    assert "refused by the outbound policy" in str(error)
    assert other.request_count == 0


def test_an_allowed_name_resolving_to_loopback_is_refused_after_dns(site: ProbeSite) -> None:
    port = site.base_url.rsplit(":", 1)[1]
    error = _error(site, f"http://localhost:{port}/a.html", extra_hosts=("localhost",))
    assert "resolves to 127.0.0.1, a loopback address" in str(error)
    assert "not requested" in str(error)
    assert site.request_count == 0


def test_a_redirect_to_a_name_resolving_inside_is_not_followed(site: ProbeSite) -> None:
    port = site.base_url.rsplit(":", 1)[1]
    site.inject("/a.html", Fault.redirect(f"http://localhost:{port}/b.html"))
    site.pages["/b.html"] = (HTML, PAGE)
    error = _error(site, site.base_url + "/a.html", extra_hosts=("localhost",))
    assert "loopback" in str(error)
    assert "/b.html" not in site.requests


def test_a_redirect_to_another_host_is_not_followed(site: ProbeSite, other: ProbeSite) -> None:
    site.inject("/a.html", Fault.redirect(other.base_url + "/secret.html"))
    error = _error(site, site.base_url + "/a.html")
    assert "not followed" in str(error)
    assert other.request_count == 0


def test_a_redirect_on_the_same_host_is_followed(site: ProbeSite) -> None:
    site.inject("/old.html", Fault.redirect("/a.html", status=301))
    site.pages["/old.html"] = (HTML, b"")

    async def use(fetcher: HttpFetcher) -> FetchedBody:
        return await fetcher.get(site.base_url + "/old.html")

    got = _run(site, use)
    assert (got.url, got.content) == (site.base_url + "/a.html", PAGE)


def test_a_redirect_loop_gives_up(site: ProbeSite) -> None:
    site.pages["/loop.html"] = (HTML, b"")
    site.inject("/loop.html", Fault.redirect("/loop.html"), times=10)
    error = _error(site, site.base_url + "/loop.html")
    assert "more than 5 redirects" in str(error)


def test_a_body_over_the_limit_is_refused(site: ProbeSite) -> None:
    site.pages["/big.html"] = (HTML, b"x" * 5000)
    error = _error(site, site.base_url + "/big.html", max_bytes=4096)
    assert isinstance(error, ResponseTooLarge)
    site.inject("/big.html", Fault(declare_length=False))  # no Content-Length: counted
    error = _error(site, site.base_url + "/big.html", max_bytes=4096)
    assert isinstance(error, ResponseTooLarge)


class _GzipHandler(QuietHandler):
    """Answers every GET with a small gzip body that inflates to 2 MB."""

    body = gzip.compress(b"\0" * 2_000_000)

    def do_GET(self) -> None:
        self.send_body(
            200, self.body, content_type="text/html", headers={"Content-Encoding": "gzip"}
        )


def test_a_compressed_body_is_held_to_the_limit_as_it_inflates(site: ProbeSite) -> None:
    with loopback_http(_GzipHandler) as base_url:
        assert len(_GzipHandler.body) < 4096  # the declared length passes the limit
        bomb = f"{base_url}/bomb.html"
        error = _error(site, bomb, also=(bomb,), max_bytes=64 * 1024)
        assert isinstance(error, ResponseTooLarge)


def test_a_trickled_body_hits_the_deadline(site: ProbeSite) -> None:
    site.pages["/slow.html"] = (HTML, PAGE * 20)
    site.inject("/slow.html", Fault.slow_body(4.0))
    error = _error(site, site.base_url + "/slow.html", deadline=1.0)
    assert "no complete response within 1 s" in str(error)


def test_a_cut_body_and_a_503_are_retried_then_reported(site: ProbeSite) -> None:
    site.inject("/a.html", Fault.truncated(), times=2)
    error = _error(site, site.base_url + "/a.html", retries=1)
    assert "ClientPayloadError" in str(error) and "incomplete body" in str(error), error
    assert site.request_count == 2
    site.inject("/a.html", Fault.http(503), times=2)
    error = _error(site, site.base_url + "/a.html", retries=1)
    assert error.status == 503
