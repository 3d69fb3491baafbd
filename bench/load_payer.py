"""Load run: 5,000 payer documents on the fixture site, 10 % of them failing in random ways.

The fixture site (scale mode) runs in its own process with a seeded mix of the faults of
`fixtures.faults` injected on 10 % of the documents for the whole first run. Then:

1. baseline run with the faults: it must complete, record one failure per faulted document and
   publish every other document;
2. the faults are cleared and a second run retries: every failed document must publish.

Prints, per run: wall time, peak RSS of this process plus its children (Scrapy crawl, parse
workers; sampled from /proc, the fixture server excluded), failures recorded, versions and
changes published.

    python bench/load_payer.py [--documents 5000] [--share 0.1] [--seed 8]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import math
import os
import random
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from fixtures.faults import FAULT_CASES, FaultContext, OtherHost
from fixtures.loopback import serve_until_signalled, spawn_fixture
from fixtures.payer_site import AETNA_INDEX_PATH, UHC_INDEX_PATH, PayerSiteFixture
from fixtures.payer_site.html_pages import index_page_path
from fixtures.payer_site.scale import spec
from fixtures.payer_site.site import INDEX_PAGE_SIZE
from monitor.config import SourceConfig, parse_config
from monitor.pipeline.runner import RunSummary, run_source
from monitor.store.core import Store
from monitor.store.models.core import ChangeRow, DocumentVersion

TODAY = dt.date(2026, 11, 12)
TIMEOUT = 10.0
MAX_BYTES = 2_000_000


def fault_plan(documents: int, share: float, seed: int) -> dict[int, str]:
    """Document index -> fault case name, for `share` of the documents (seeded)."""
    rng = random.Random(seed)
    chosen = rng.sample(range(documents), k=round(documents * share))
    plan = {}
    for index in sorted(chosen):
        kind = "pdf" if spec(index).is_pdf else "html"
        cases = [c for c in FAULT_CASES if c.expect_error and c.applies_to(kind)]
        plan[index] = rng.choice(cases).name
    return plan


# --- the fixture process ---------------------------------------------------------------------


def serve(documents: int, share: float, seed: int, port: int) -> int:
    """``--serve``: the fixture site with the planned faults (until SIGTERM)."""
    site = PayerSiteFixture(scenario="week1", documents=documents, conditional=True, port=port)
    other = OtherHost()
    by_name = {c.name: c for c in FAULT_CASES}

    def start() -> str:
        site.warm(("week1",))
        base_url = site.start()
        other.start()
        for index, name in fault_plan(documents, share, seed).items():
            path = spec(index).url_path
            context = FaultContext(
                path=path,
                url=base_url + path,
                other_host=other.base_url,
                max_bytes=MAX_BYTES,
                timeout_seconds=TIMEOUT,
            )
            site.inject(path, by_name[name].make(context), times=1000)
        return base_url

    def stop() -> None:
        site.stop()
        other.stop()

    return serve_until_signalled(start, stop)


# --- the monitor side ------------------------------------------------------------------------


class RssSampler:
    """Peak of the summed RSS of this process and its descendants, but not `exclude`."""

    def __init__(self, exclude: int) -> None:
        self.exclude = exclude
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self.peak_kb = max(self.peak_kb, self._tree_kb())

    def _tree_kb(self) -> int:
        children: dict[int, list[int]] = collections.defaultdict(list)
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children[parent].append(int(entry))
        total, stack = 0, [os.getpid()]
        while stack:
            pid = stack.pop()
            if pid == self.exclude:
                continue
            total += _rss_kb(pid)
            stack.extend(children.get(pid, ()))
        return total


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


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
                    "payer": "Load Health",
                    "start_urls": start,
                    "allow": ["/policies/drug/", "/cpb/medical/data/"],
                    "download_delay_seconds": 0.0,
                    "concurrency_per_host": 16,
                    "max_retries": 1,
                    "timeout_seconds": TIMEOUT,
                    "max_document_bytes": MAX_BYTES,
                    "parse_timeout_seconds": 120.0,
                }
            ],
        }
    ).source("payers")


def _run(source: SourceConfig, store: Store, server_pid: int) -> tuple[RunSummary, float, int]:
    with RssSampler(exclude=server_pid) as sampler:
        started = time.perf_counter()
        summary = asyncio.run(run_source(source, store, today=lambda: TODAY))
        elapsed = time.perf_counter() - started
    return summary, elapsed, sampler.peak_kb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.documents, args.share, args.seed, args.port)

    plan = fault_plan(args.documents, args.share, args.seed)
    planned = collections.Counter(plan.values())
    print(f"{args.documents} documents, {len(plan)} with a fault for the whole first run:")
    print("  " + ", ".join(f"{name} {n}" for name, n in sorted(planned.items())))
    started = time.perf_counter()
    server, base_url = spawn_fixture(
        "bench.load_payer",
        "--serve",
        "--documents",
        str(args.documents),
        "--share",
        str(args.share),
        "--seed",
        str(args.seed),
        cwd=str(Path(__file__).resolve().parent.parent),
    )
    print(f"fixture ready in {time.perf_counter() - started:.1f} s")
    try:
        with tempfile.TemporaryDirectory(prefix="load-payer-") as scratch:
            url = f"sqlite:///{Path(scratch) / 'load.db'}"
            store = Store.open(url)
            source = _source(base_url, args.documents, url)
            faulted_keys = {spec(i).url_path: name for i, name in plan.items()}

            first, seconds, peak = _run(source, store, server.pid)
            errors = {e.document_key: e.message for e in store.run_errors(first.run_id)}
            versions_1 = store.count(DocumentVersion)
            print(
                f"run 1 (baseline, faults): {seconds:7.1f} s  peak RSS {peak / 1024:.0f} MB  "
                f"outcome {first.outcome}  {first.counts.listed} listed, "
                f"{first.counts.errors} failures recorded, {versions_1} versions, "
                f"{store.count(ChangeRow)} changes"
            )
            unexpected = set(errors) - set(faulted_keys)
            missed = set(faulted_keys) - set(errors)
            print(
                f"  failures on faulted documents {len(set(errors) & set(faulted_keys))}/"
                f"{len(faulted_keys)}, on clean documents {len(unexpected)}, "
                f"faulted but not recorded {len(missed)}; clean documents published "
                f"{versions_1}/{args.documents - len(faulted_keys)}"
            )
            for key in sorted(unexpected | missed)[:10]:
                print(f"  ! {key}: {errors.get(key, 'not recorded')} ({faulted_keys.get(key)})")
            by_case = collections.Counter(faulted_keys[k] for k in errors if k in faulted_keys)
            example = {faulted_keys[k]: m for k, m in errors.items() if k in faulted_keys}
            for name in sorted(by_case):
                print(f"  {name:24} {by_case[name]:4}  e.g. {example[name][-110:]}")

            request = urllib.request.Request(base_url + "/_control/reset", method="POST")
            with urllib.request.urlopen(request, timeout=30) as response:
                json.loads(response.read())
            second, seconds, peak = _run(source, store, server.pid)
            print(
                f"run 2 (clean retry):      {seconds:7.1f} s  peak RSS {peak / 1024:.0f} MB  "
                f"outcome {second.outcome}  {second.counts.fetched} fetched, "
                f"{second.counts.new_versions} new versions, {second.counts.errors} failures, "
                f"{second.counts.changes} changes"
            )
            late = store.changes(run_id=second.run_id)
            print(
                f"stored: {store.count(DocumentVersion)} versions of {args.documents} documents, "
                f"{store.count(ChangeRow)} changes; run 2's are "
                + ", ".join(
                    f"{k} {n}" for k, n in collections.Counter(c.kind for c in late).items()
                )
            )
            store.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stdout is not None:
            server.stdout.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
