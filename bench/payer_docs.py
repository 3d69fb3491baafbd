"""Benchmark: 1,000 payer documents (half PDF, half HTML) on the fixture payer site (not a test).

Prints: the baseline run (time, peak RSS); a re-check with nothing changed, with the server's
ETags (target <= 1 s) and from a server that sends no validators; a run with 5 % of the
documents changed; the parse time of a 20-page PDF. Baseline target: <= 30 s for 1,000
documents. Raw figures go to ``bench/results/payer_docs.json`` (with the load average).

    python bench/payer_docs.py [--documents 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from machine import MachineProbe

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
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "payer_docs.json"


def _figures(summary: RunSummary, seconds: float, **extra: float) -> dict[str, object]:
    c = summary.counts
    return {
        "seconds": seconds,
        "outcome": summary.outcome,
        "listed": c.listed,
        "fetched": c.fetched,
        "new_versions": c.new_versions,
        "changes": c.changes,
        "errors": c.errors,
        "requests": c.requests,
        **extra,
    }


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

    load_before = os.getloadavg()
    probe = MachineProbe()  # before the runs: the machine's speed, for other sessions
    figures: dict[str, object] = {}
    pdf = benchmark_pdf()
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        document = parse_document(pdf, "application/pdf", document_id="bench-20-pages")
        timings.append(time.perf_counter() - started)
    figures["pdf_20_pages_parse_median_s"] = statistics.median(timings)
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
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            figures["baseline"] = _figures(baseline, t_base, peak_rss_mb=peak)
            figures["baseline"]["largest_child_rss_mb"] = workers  # type: ignore[index]
            print(
                f"baseline:             {t_base:6.1f} s  peak RSS "
                f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB  "
                f"{baseline.counts.listed} listed, {baseline.counts.new_versions} versions, "
                f"{baseline.counts.errors} errors"
            )
            same, t_same = _run(_source(base_url, args.documents, url), store)
            figures["unchanged_etags"] = _figures(same, t_same)
            print(
                f"unchanged, ETags:     {t_same:6.1f} s  {same.counts.fetched} fetched, "
                f"{same.counts.new_versions} new versions"
            )
            plain_run, t_plain = _run(_source(plain_url, args.documents, url), store)
            figures["unchanged_no_validators"] = _figures(plain_run, t_plain)
            print(
                f"unchanged, no ETags:  {t_plain:6.1f} s  {plain_run.counts.fetched} fetched "
                f"(bodies compared by sha256), {plain_run.counts.new_versions} new versions"
            )
            _control(base_url, "/_control/scenario?name=week2", "POST")
            changed, t_changed = _run(_source(base_url, args.documents, url), store)
            figures["five_percent_changed"] = _figures(changed, t_changed)
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
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "payer_docs",
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "commit": commit,
                "cpu_count": os.cpu_count(),
                "platform": platform.platform(),
                "loadavg_before": list(load_before),
                "loadavg_after": list(os.getloadavg()),
                "machine": probe.finish(),
                "documents": args.documents,
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
