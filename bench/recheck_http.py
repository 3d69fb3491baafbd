"""Benchmark: 1,000 conditional GETs on loopback through each HTTP client (not a test).

What the payer re-check's requests cost, client against client, on the fixture payer site
(``--html-only``, 1,000 CPB pages): the project's `HttpFetcher` over httpx (`policy_client`),
the same fetcher over aiohttp (`sources.http_aio`, what the re-check uses), and as the floor a
bare pool of threads each holding one `http.client` connection (no policy, no retries: what the
network alone costs). A third variant, the same fetcher over such a thread pool with
policy-checked connections (commit dea9e88, ``sources/http_threads.py``), measured 0.67 s wall
against aiohttp's 0.25 s and was removed.
Every request carries the page's ETag and must answer 304; six at a time, as
``concurrency_per_host = 6``. Wall and CPU time of each round (best of
``--rounds``, the clients alternating); raw figures go to ``bench/results/recheck_http.json``.

    python bench/recheck_http.py [--documents 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import http.client
import json
import os
import platform
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from fixtures.loopback import spawn_fixture
from fixtures.payer_site.site import PayerSite
from sources.http import HttpFetcher, RetryPolicy, policy_client
from sources.http_aio import AiohttpFetcher, policy_session
from sources.outbound import OutboundPolicy

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "recheck_http.json"
CONCURRENCY = 6


def _etags(urls: list[str]) -> dict[str, str]:
    tags = {}
    for url in urls:
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
            tags[url] = response.headers["ETag"]
    return tags


async def _through(fetcher: HttpFetcher, etags: dict[str, str]) -> list[int]:
    answers = await asyncio.gather(
        *(
            fetcher.get(url, headers={"If-None-Match": tag}, not_modified=True)
            for url, tag in etags.items()
        )
    )
    return [answer.status for answer in answers]


def httpx_round(policy: OutboundPolicy, etags: dict[str, str]) -> list[int]:
    async def run() -> list[int]:
        client = policy_client(
            policy,
            timeout=httpx.Timeout(30.0),
            headers={"User-Agent": "bench"},
            limits=httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY),
        )
        fetcher = HttpFetcher(
            source="bench",
            client=client,
            retry=RetryPolicy(max_retries=0),
            max_response_bytes=10_000_000,
            concurrency=CONCURRENCY,
            deadline_seconds=30.0,
            policy=policy,
            redirect_hosts=policy.hosts,
        )
        try:
            return await _through(fetcher, etags)
        finally:
            await client.aclose()

    return asyncio.run(run())


def aiohttp_round(policy: OutboundPolicy, etags: dict[str, str]) -> list[int]:
    async def run() -> list[int]:
        session = policy_session(
            policy, timeout_seconds=30.0, headers={"User-Agent": "bench"}, max_connections=6
        )
        fetcher = AiohttpFetcher(
            source="bench",
            session=session,
            retry=RetryPolicy(max_retries=0),
            max_response_bytes=10_000_000,
            concurrency=CONCURRENCY,
            deadline_seconds=30.0,
            policy=policy,
            redirect_hosts=policy.hosts,
        )
        try:
            return await _through(fetcher, etags)
        finally:
            await session.close()

    return asyncio.run(run())


def threads_round(_policy: OutboundPolicy, etags: dict[str, str]) -> list[int]:
    work: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
    for item in etags.items():
        work.put(item)
    statuses: list[int] = []

    def worker() -> None:
        parts = urlsplit(next(iter(etags)))
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        try:
            while True:
                try:
                    url, tag = work.get_nowait()
                except queue.Empty:
                    return
                connection.request("GET", urlsplit(url).path, headers={"If-None-Match": tag})
                response = connection.getresponse()
                response.read()
                statuses.append(response.status)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


CLIENTS: dict[str, Callable[[OutboundPolicy, dict[str, str]], list[int]]] = {
    "httpx (HttpFetcher, policy_client)": httpx_round,
    "aiohttp (AiohttpFetcher, policy_session)": aiohttp_round,
    "bare threads + http.client keep-alive (no policy)": threads_round,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server, base_url = spawn_fixture(
        "fixtures.payer_site",
        "--scenario",
        "week1",
        "--documents",
        str(args.documents),
        "--html-only",
        "--warm",
        cwd=str(ROOT),
    )
    load_before = os.getloadavg()
    figures: dict[str, dict[str, float]] = {}
    try:
        site = PayerSite(documents=args.documents, html_only=True)
        urls = [base_url + path for path in sorted(site.document_paths("week1"))]
        etags = _etags(urls)
        policy = OutboundPolicy.for_source([base_url])
        for _ in range(args.rounds):
            for name, run in CLIENTS.items():
                started, cpu = time.perf_counter(), time.process_time()
                statuses = run(policy, etags)
                wall, cpu = time.perf_counter() - started, time.process_time() - cpu
                if set(statuses) != {304} or len(statuses) != len(urls):
                    print(f"{name}: unexpected answers {sorted(set(statuses))}", file=sys.stderr)
                    return 1
                best = figures.setdefault(name, {"wall_s": wall, "cpu_s": cpu})
                best["wall_s"], best["cpu_s"] = min(best["wall_s"], wall), min(best["cpu_s"], cpu)
    finally:
        server.terminate()
        server.wait(timeout=10)
    for name, best in figures.items():
        print(f"{name:50s} {best['wall_s']:6.3f} s wall  {best['cpu_s']:6.3f} s CPU")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "recheck_http",
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "commit": commit,
                "cpu_count": os.cpu_count(),
                "platform": platform.platform(),
                "loadavg_before": list(load_before),
                "loadavg_after": list(os.getloadavg()),
                "requests": len(urls),
                "concurrency": CONCURRENCY,
                "best_of_rounds": args.rounds,
                "figures": figures,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
