"""Benchmark: the CMS Coverage API source at the size of the real MCD (not a test).

Starts the fixture server in its own process at ``--scale full`` and measures, in this process:
the baseline run (wall time, peak RSS), an unchanged run (time, HTTP requests), and a run in
which about 2 % of the documents changed. Targets on a 2-core machine (issue 17): baseline
<= 20 s and <= 300 MB; unchanged <= 2 s; 2 % changed <= 15 s. Writes the raw figures (date,
commit, cores, load average before and after, CPU seconds) to bench/results/cms_full_scale.json
(``--scale full`` only, unless ``--results`` names another file).

    python bench/cms_full_scale.py [--scale full|sample] [--database URL] [--results PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from machine import MachineProbe

from fixtures.cms_corpus.model import scenario_named
from fixtures.loopback import spawn_fixture
from monitor.config import parse_config
from monitor.pipeline.runner import RunSummary, run_source
from monitor.store.core import Store
from monitor.store.models.core import ChangeRow, DocumentVersion

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "cms_full_scale.json"


def _cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of this process, or of `pid` (from /proc)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _peak_rss_children_mb() -> float:
    """The largest peak RSS of this process's ended child processes (extraction workers,
    if any; the fixture server runs until the end and is not among them)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _control(base_url: str, path: str, method: str = "GET") -> dict[str, object]:
    request = urllib.request.Request(base_url + path, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body else {}


def main() -> int:
    # As `policy-monitor check` does once its modules are loaded (monitor.cli.main): what the
    # imports made is left out of every later collection.
    gc.freeze()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="full", choices=["full", "sample"])
    parser.add_argument("--database", help="database URL (default: SQLite in a temp dir)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--results", type=Path, help=f"where to write the figures ({RESULTS})")
    args = parser.parse_args()
    probe = MachineProbe()  # the machine's speed, for figures of other sessions
    results = args.results or (RESULTS if args.scale == "full" else None)
    # Read before the runs: what was measured, not what came after. The checkout `monitor` is
    # imported from (a run with PYTHONPATH set to another worktree measures that one, and says so).
    code = Path(sys.modules[Store.__module__].__file__ or ROOT).resolve().parents[2]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=code, capture_output=True, text=True
    ).stdout.strip()
    if code != ROOT:
        commit = f"{commit} ({code})"
    load_before = os.getloadavg()
    cpu: dict[str, tuple[float, float]] = {}

    server, base_url = spawn_fixture(
        "fixtures.cms_api", "--scenario", "week1", "--scale", args.scale
    )
    try:
        with tempfile.TemporaryDirectory(prefix="bench-cms-") as scratch:
            url = args.database or f"sqlite:///{Path(scratch) / 'bench.db'}"
            config = parse_config(
                {
                    "database": {"url": url},
                    "sources": [
                        {
                            "name": "cms",
                            "kind": "cms_coverage",
                            "base_url": base_url,
                            "concurrency": args.concurrency,
                        }
                    ],
                }
            )
            source = config.source("cms")
            store = Store.open(url)

            def run(week: str) -> tuple[RunSummary, float, int]:
                _control(base_url, f"/_control/scenario?name={week}", "POST")
                _control(base_url, "/_control/reset", "POST")
                today = scenario_named(week).today
                started = time.perf_counter()
                cpu_client, cpu_server = _cpu_seconds(), _cpu_seconds(server.pid)
                summary = asyncio.run(run_source(source, store, today=lambda: today))
                elapsed = time.perf_counter() - started
                spent = (_cpu_seconds() - cpu_client, _cpu_seconds(server.pid) - cpu_server)
                cpu[week if week not in cpu else f"{week} again"] = spent
                print(f"  [{week}: CPU monitor {spent[0]:.1f} s, fixture server {spent[1]:.1f} s]")
                requests = int(_control(base_url, "/_control/stats")["request_count"])  # type: ignore[arg-type]
                if summary.outcome != "success":
                    print(f"  run not clean: {summary.line()}", file=sys.stderr)
                return summary, elapsed, requests

            print(f"scale={args.scale} concurrency={args.concurrency} database={url.split(':')[0]}")
            baseline, t_base, r_base = run("week1")
            rss, rss_worker = _peak_rss_mb(), _peak_rss_children_mb()
            print(
                f"baseline:    {t_base:6.1f} s  peak RSS {rss:5.0f} MB "
                f"(largest ended child {rss_worker:.0f} MB)  "
                f"{baseline.counts.listed} listed, {baseline.counts.new_versions} versions, "
                f"{r_base} requests"
            )
            unchanged, t_same, r_same = run("week1")
            print(
                f"unchanged:   {t_same:6.2f} s  {r_same} requests  "
                f"{unchanged.counts.new_versions} new versions"
            )
            changed, t_changed, r_changed = run("week2")
            share = 100 * changed.counts.new_versions / max(1, baseline.counts.listed)
            print(
                f"2% changed:  {t_changed:6.1f} s  {changed.counts.new_versions} new versions "
                f"({share:.1f}% of documents), {changed.counts.changes} changes, "
                f"{r_changed} requests"
            )
            versions, changes = store.count(DocumentVersion), store.count(ChangeRow)
            print(
                f"stored:      {versions} versions, "
                f"{changes} changes; peak RSS overall {_peak_rss_mb():.0f} MB"
            )
            store.close()
            figures = {
                "baseline_seconds": round(t_base, 2),
                "baseline_peak_rss_mb": round(rss),
                "baseline_peak_rss_mb_largest_ended_child": round(rss_worker),
                "baseline_cpu_seconds_monitor": round(cpu["week1"][0], 2),
                "baseline_cpu_seconds_fixture_server": round(cpu["week1"][1], 2),
                "baseline_requests": r_base,
                "listed": baseline.counts.listed,
                "baseline_versions": baseline.counts.new_versions,
                "unchanged_seconds": round(t_same, 3),
                "unchanged_requests": r_same,
                "changed_seconds": round(t_changed, 2),
                "changed_versions": changed.counts.new_versions,
                "changed_changes": changed.counts.changes,
                "changed_requests": r_changed,
                "stored_versions": versions,
                "stored_changes": changes,
                "peak_rss_mb_overall": round(_peak_rss_mb()),
                "outcomes": [baseline.outcome, unchanged.outcome, changed.outcome],
            }
    finally:
        server.terminate()
        server.wait(timeout=10)
    if results is not None:
        record = {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "commit": commit,
            "cores": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "machine": probe.finish(),
            "scale": args.scale,
            "database": url.split(":")[0],
            "concurrency": args.concurrency,
            "figures": figures,
        }
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(record, indent=1) + "\n")
        print(f"-> {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
