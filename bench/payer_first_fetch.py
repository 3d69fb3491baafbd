"""Benchmark: the first listing of a depth-1 payer source, in-process against the Scrapy crawl.

Both list the same loopback fixture (``python -m fixtures.payer_site --html-only``: N HTML pages
behind N/250 index pages) from an empty store, alternately in the same rounds, with the settings
of ``bench/vs_urlwatch.py`` (no delay, six requests at a time); each listing runs in its own
process (as ``policy-monitor check`` would: imports included). The listings must be equal (keys,
fingerprints, titles); wall times and the load average go to
``bench/results/payer_first_fetch_<name>.json``.

    python bench/payer_first_fetch.py [--documents 1000] [--rounds 5] [--name NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import results_file
from machine import MachineProbe

from fixtures.loopback import spawn_fixture
from fixtures.payer_site import AETNA_INDEX_PATH
from fixtures.payer_site.html_pages import index_page_path
from fixtures.payer_site.site import INDEX_PAGE_SIZE

ROOT = Path(__file__).resolve().parent.parent

# One listing in a fresh process; prints {"seconds": ..., "documents": [[key, fingerprint, title]]}
_CHILD = """
import asyncio, json, sys, time
started = time.perf_counter()
from sources.payer_policies import PayerPoliciesSource
from sources.options import PayerPoliciesOptions

options = PayerPoliciesOptions(
    payer="Bench Health", start_urls=tuple(json.loads(sys.argv[1])),
    allow=("/cpb/medical/data/",), download_delay_seconds=0.0, concurrency_per_host=6,
)
source = PayerPoliciesSource(name="payers", options=options)
if sys.argv[2] == "crawl":
    async def no_recheck(known):
        return None
    source._recheck = no_recheck

async def main():
    try:
        return await source.list_documents({})
    finally:
        await source.aclose()

listing = asyncio.run(main())
assert source.crawled == (sys.argv[2] == "crawl")
rows = sorted([d.key, d.fingerprint, d.title] for d in listing.documents)
print(json.dumps({"seconds": time.perf_counter() - started, "documents": rows}))
"""


def _listing(starts: list[str], path: str) -> tuple[float, list[list[str]]]:
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(starts), path],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout
    result = json.loads(output)
    return time.perf_counter() - started, result["documents"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--name", default="")
    args = parser.parse_args()
    probe = MachineProbe()  # the machine's speed, for figures of other sessions
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
    pages = max(1, -(-args.documents // INDEX_PAGE_SIZE))
    starts = [base_url + index_page_path(AETNA_INDEX_PATH, n) for n in range(1, pages + 1)]
    figures: dict[str, list[float]] = {"in_process": [], "crawl": []}
    loads: list[list[float]] = []
    try:
        for number in range(args.rounds):
            loads.append(list(os.getloadavg()))
            order = ["in_process", "crawl"] if number % 2 == 0 else ["crawl", "in_process"]
            listings = {}
            for path in order:
                seconds, listings[path] = _listing(starts, path)
                figures[path].append(seconds)
            if listings["in_process"] != listings["crawl"]:
                print("the listings differ", file=sys.stderr)
                return 1
            print(
                f"round {number + 1} (load {loads[-1][0]:.2f}): in-process "
                f"{figures['in_process'][-1]:.2f} s, crawl {figures['crawl'][-1]:.2f} s, "
                f"{len(listings['crawl'])} documents, listings equal"
            )
    finally:
        server.terminate()
        server.wait(timeout=10)
    medians = {path: statistics.median(values) for path, values in figures.items()}
    print(f"medians: in-process {medians['in_process']:.2f} s, crawl {medians['crawl']:.2f} s")
    name = f"_{args.name}" if args.name else ""
    results_file.write(
        f"payer_first_fetch{name}",
        {
            "benchmark": "payer_first_fetch",
            "documents": args.documents,
            "seconds": figures,
            "medians": medians,
            "loadavg_before_rounds": loads,
        },
        machine=probe.finish(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
