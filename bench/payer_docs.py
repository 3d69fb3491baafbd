"""Benchmark: 1,000 payer documents (half PDF, half HTML) on the fixture payer site (not a test).

Prints: the baseline run (time, peak RSS); a re-check with nothing changed, with the server's
ETags (target <= 10 s) and from a server that sends no validators (target <= 30 s); a run with
5 % of the documents changed; the parse time of a 20-page PDF (target <= 2 s).

    python bench/payer_docs.py [--documents 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from diffing.parse import parse_document
from fixtures.loopback import spawn_fixture
from fixtures.payer_site import AETNA_INDEX_PATH, UHC_INDEX_PATH, benchmark_pdf
from fixtures.payer_site.html_pages import index_page_path
from fixtures.payer_site.site import INDEX_PAGE_SIZE
from monitor.config import SourceConfig, parse_config
from monitor.pipeline.runner import RunSummary, run_source
from monitor.store.core import Store
from monitor.store.models.core import ChangeRow, DocumentVersion

TODAY = dt.date(2026, 11, 12)


def _start_server(documents: int, *, conditional: bool) -> tuple[subprocess.Popen[str], str]:
    extra = () if conditional else ("--no-conditional",)
    return spawn_fixture(
        "fixtures.payer_site",
        "--scenario",
        "week1",
        "--documents",
        str(documents),
        "--warm",
        *extra,
    )


def _control(base_url: str, path: str, method: str = "GET") -> dict[str, object]:
    request = urllib.request.Request(base_url + path, method=method)
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
    return json.loads(body) if body else {}


def _source(base_url: str, documents: int, url: str) -> SourceConfig:
    pages = max(1, math.ceil(documents / 2 / INDEX_PAGE_SIZE))
    start = [
        base_url + index_page_path(first, n)
        for first in (UHC_INDEX_PATH, AETNA_INDEX_PATH)
        for n in range(1, pages + 1)
    ]
    return parse_config(
        {
            "database": {"url": url},
            "sources": [
                {
                    "name": "payers",
                    "kind": "payer_policies",
                    "payer": "Bench Health",
                    "start_urls": start,
                    "allow": ["/policies/drug/", "/cpb/medical/data/"],
                    "download_delay_seconds": 0.0,
                    "concurrency_per_host": 16,
                }
            ],
        }
    ).source("payers")


def _run(source: SourceConfig, store: Store) -> tuple[RunSummary, float]:
    started = time.perf_counter()
    summary = asyncio.run(run_source(source, store, today=lambda: TODAY))
    elapsed = time.perf_counter() - started
    if summary.outcome != "success":
        print(f"  run not clean: {summary.line()}", file=sys.stderr)
    return summary, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1000)
    args = parser.parse_args()

    pdf = benchmark_pdf()
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        document = parse_document(pdf, "application/pdf", document_id="bench-20-pages")
        timings.append(time.perf_counter() - started)
    print(
        f"20-page PDF parse: median {statistics.median(timings):.2f} s "
        f"({document.pages} pages, {len(pdf) // 1024} KB)"
    )

    server, base_url = _start_server(args.documents, conditional=True)
    plain, plain_url = _start_server(args.documents, conditional=False)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-payer-") as scratch:
            url = f"sqlite:///{Path(scratch) / 'bench.db'}"
            store = Store.open(url)
            baseline, t_base = _run(_source(base_url, args.documents, url), store)
            print(
                f"baseline:             {t_base:6.1f} s  peak RSS "
                f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB  "
                f"{baseline.counts.listed} listed, {baseline.counts.new_versions} versions, "
                f"{baseline.counts.errors} errors"
            )
            same, t_same = _run(_source(base_url, args.documents, url), store)
            print(
                f"unchanged, ETags:     {t_same:6.1f} s  {same.counts.fetched} fetched, "
                f"{same.counts.new_versions} new versions"
            )
            plain_run, t_plain = _run(_source(plain_url, args.documents, url), store)
            print(
                f"unchanged, no ETags:  {t_plain:6.1f} s  {plain_run.counts.fetched} fetched "
                f"(bodies compared by sha256), {plain_run.counts.new_versions} new versions"
            )
            _control(base_url, "/_control/scenario?name=week2", "POST")
            changed, t_changed = _run(_source(base_url, args.documents, url), store)
            print(
                f"5% changed:           {t_changed:6.1f} s  {changed.counts.new_versions} "
                f"new versions, {changed.counts.changes} changes"
            )
            print(
                f"stored: {store.count(DocumentVersion)} versions, {store.count(ChangeRow)} changes"
            )
            store.close()
    finally:
        for process in (server, plain):
            process.terminate()
            process.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
