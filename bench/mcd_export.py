"""Benchmark: the MCD export source at the size of the real exports (not a test).

Serves the full-scale week-1 and week-2 exports (~612,000 Article rows each; generated once and
cached, see fixtures.mcd_export) from fixture processes of their own and measures, in this
process: the backfill of an empty database (wall, CPU, peak RSS), an unchanged export (three
conditional GETs answered 304) and the diff of the week-1 and week-2 exports (about 2 % of the
documents revised). Targets on a 2-core machine: backfill <= 20 s (issue 17) and <= 600 MB;
unchanged <= 1 s; diff <= 20 s.

Writes bench/results/mcd_export.json (date, commit, cores, load averages, figures); a run with
`--label` is added to the runs kept there under that label, so before/after pairs stay together.

    python bench/mcd_export.py [--scale full|sample] [--database URL] [--label NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import MachineProbe

from fixtures.cms_corpus import full_scale_week2_changes
from fixtures.cms_corpus.model import scenario_named
from fixtures.loopback import spawn_fixture
from fixtures.mcd_export import EXPORT_PATH, export_directory
from monitor.config import SourceConfig, parse_config
from monitor.pipeline.runner import RunSummary, run_source
from monitor.store.core import Store
from monitor.store.models.core import ChangeRow, DocumentVersion

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "mcd_export.json"


def _commit() -> str:
    """The commit of the code measured: the checkout `monitor` is imported from (a run with
    PYTHONPATH set to another worktree measures that one, and says so)."""
    code = Path(sys.modules[Store.__module__].__file__ or ROOT).resolve().parents[2]
    answer = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=code, capture_output=True, text=True
    )
    return f"{answer.stdout.strip() or 'unknown'} ({code})"


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _save(label: str, figures: dict[str, object]) -> None:
    """Keep this run in RESULTS, replacing an earlier run of the same label."""
    kept: list[dict[str, object]] = []
    if RESULTS.exists():
        kept = [r for r in json.loads(RESULTS.read_text()).get("runs", []) if r["label"] != label]
    run = {
        "label": label,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "cores": os.cpu_count(),
        **figures,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"runs": [*kept, run]}, indent=1) + "\n")
    print(f"-> {RESULTS.relative_to(ROOT)} ({label})")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _source(base_url: str) -> SourceConfig:
    table = {"name": "mcd", "kind": "mcd_downloads", "base_url": base_url + EXPORT_PATH}
    return parse_config({"sources": [table]}).source("mcd")


def _figures(summary: RunSummary, wall: float, cpu: float) -> dict[str, object]:
    counts = summary.counts
    return {
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),  # this process only (the fixture servers are apart)
        "outcome": summary.outcome,
        "listed": counts.listed,
        "new_versions": counts.new_versions,
        "changes": counts.changes,
        "errors": counts.errors,
        "requests": counts.requests,
    }


def main() -> int:
    # As `policy-monitor check` does once its modules are loaded (monitor.cli.main): what the
    # imports made is left out of every later collection.
    gc.freeze()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="full", choices=["full", "sample"])
    parser.add_argument("--database", help="database URL (default: SQLite in a temp dir)")
    parser.add_argument("--label", default="latest", help="name of this run in the results")
    args = parser.parse_args()

    probe = MachineProbe()  # the machine's speed, for figures of other sessions
    started = time.monotonic()
    sizes = {}
    for week in ("week1", "week2"):
        folder = export_directory(week, args.scale)
        sizes[week] = sum(p.stat().st_size for p in folder.glob("*.zip"))
    print(
        f"exports ready in {time.monotonic() - started:.1f} s (cached after the first time): "
        f"week1 {sizes['week1'] / 1e6:.1f} MB, week2 {sizes['week2'] / 1e6:.1f} MB of zips"
    )
    servers = [
        spawn_fixture("fixtures.mcd_export", "--scenario", week, "--scale", args.scale)
        for week in ("week1", "week2")
    ]
    try:
        with tempfile.TemporaryDirectory(prefix="mcd-bench-") as scratch:
            url = args.database or f"sqlite:///{Path(scratch) / 'bench.db'}"
            store = Store.open(url)

            loads: dict[str, list[float]] = {}

            def run(week: str, base_url: str, phase: str) -> tuple[RunSummary, float, float]:
                today = scenario_named(week).today
                loads[f"{phase}_before"] = _load()
                wall, cpu = time.monotonic(), _cpu_seconds()
                summary = asyncio.run(run_source(_source(base_url), store, today=lambda: today))
                loads[f"{phase}_after"] = _load()
                return summary, time.monotonic() - wall, _cpu_seconds() - cpu

            (_, week1_url), (_, week2_url) = servers
            base, t_base, c_base = run("week1", week1_url, "backfill")
            print(
                f"backfill:  {t_base:6.1f} s wall, {c_base:5.1f} s CPU, peak RSS "
                f"{_peak_rss_mb():4.0f} MB  (target <= 20 s, <= 600 MB)\n    {base.line()}"
            )
            same, t_same, c_same = run("week1", week1_url, "unchanged")
            print(
                f"unchanged: {t_same:6.2f} s wall, {c_same:5.2f} s CPU, "
                f"{same.counts.requests} requests  (target <= 1 s)\n    {same.line()}"
            )
            diff, t_diff, c_diff = run("week2", week2_url, "diff")
            expected = len(full_scale_week2_changes()) if args.scale == "full" else None
            print(
                f"diff:      {t_diff:6.1f} s wall, {c_diff:5.1f} s CPU, "
                f"{diff.counts.new_versions} new versions, {diff.counts.changes} changes"
                + (f" ({expected} substantive expected from the corpus)" if expected else "")
                + f"  (target <= 20 s)\n    {diff.line()}"
            )
            versions, changes = store.count(DocumentVersion), store.count(ChangeRow)
            print(
                f"stored: {versions} versions, {changes} changes; peak RSS overall "
                f"{_peak_rss_mb():.0f} MB"
            )
            store.close()
            _save(
                args.label,
                {
                    "scale": args.scale,
                    # The backend the URL names (a --database may be SQLite too).
                    "database": url.split(":", 1)[0].split("+", 1)[0],
                    "loadavg": loads,
                    "machine": probe.finish(),
                    "backfill": _figures(base, t_base, c_base),
                    "unchanged": _figures(same, t_same, c_same),
                    "diff": _figures(diff, t_diff, c_diff),
                    "stored_versions": versions,
                    "stored_changes": changes,
                    "peak_rss_mb": round(_peak_rss_mb()),
                },
            )
    finally:
        for process, _url in servers:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            if process.stdout is not None:
                process.stdout.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
