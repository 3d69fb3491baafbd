"""Benchmark: how long the command line takes to answer (not a test).

Times, as the median of --runs fresh processes each: the interpreter alone (`python -c pass`, the
floor), `policy-monitor --help`, and `policy-monitor changes` on an empty, migrated SQLite
database (issue 17's target: both <= 0.3 s); and `policy-monitor check` with no sources on that
database: the fixed cost every re-check pays before its first request (the pipeline's modules,
the store opened). With --against REV the same commands run, in the
same session and interleaved, on a git worktree of REV (e.g. the commit before lazy imports), so
the before/after figures share the machine's load.

    python bench/cli_startup.py [--runs 15] [--against REV]

Writes bench/results/cli_startup.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import MachineProbe

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "cli_startup.json"


def _time(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return elapsed


def _commit(path: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=path, capture_output=True, text=True
    ).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--against", help="also time this git revision, interleaved")
    args = parser.parse_args()
    probe = MachineProbe()  # before the runs: the machine's speed, for other sessions

    with tempfile.TemporaryDirectory(prefix="cli-startup-") as scratch:
        work = Path(scratch)
        trees = {"current": ROOT}
        if args.against:
            baseline = work / "baseline"
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(baseline), args.against],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            trees["baseline"] = baseline
        try:
            config = work / "config.toml"
            config.write_text(f'[database]\nurl = "sqlite:///{work / "empty.db"}"\n')
            # No source to run (without [[sources]] the default CMS source would be).
            idle = work / "idle.toml"
            idle.write_text(
                config.read_text() + '[[sources]]\nname = "off"\nkind = "cms_coverage"\n'
                "enabled = false\n"
            )
            # As a user's machine runs it: bytecode cached (pip compiles installed packages; the
            # warm-up run below writes the project's), whatever this shell's setting.
            dropped = {"POLICY_MONITOR_CONFIG", "PYTHONDONTWRITEBYTECODE"}
            base_env = {k: v for k, v in os.environ.items() if k not in dropped}
            envs = {name: {**base_env, "PYTHONPATH": str(tree)} for name, tree in trees.items()}
            cli = [sys.executable, "-m", "monitor.cli"]
            subprocess.run(
                [*cli, "--config", str(config), "db", "upgrade"],
                env=envs["current"],
                cwd=work,
                check=True,
                capture_output=True,
            )
            commands = {
                "python -c pass": [sys.executable, "-c", "pass"],
                "policy-monitor --help": [*cli, "--help"],
                "policy-monitor changes (empty database)": [
                    *cli,
                    "--config",
                    str(config),
                    "changes",
                ],
                "policy-monitor check (no sources)": [*cli, "--config", str(idle), "check"],
            }
            samples: dict[str, dict[str, list[float]]] = {
                tree: {name: [] for name in commands} for tree in trees
            }
            for tree in trees:  # warm the page cache and .pyc files first
                for argv in commands.values():
                    _time(argv, envs[tree], work)
            for _ in range(args.runs):
                for tree in trees:
                    for name, argv in commands.items():
                        samples[tree][name].append(_time(argv, envs[tree], work))
        finally:
            if args.against:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(trees["baseline"])],
                    cwd=ROOT,
                    capture_output=True,
                )

    figures = {
        tree: {
            name: {
                "median_s": round(statistics.median(values), 3),
                "min_s": round(min(values), 3),
                "max_s": round(max(values), 3),
            }
            for name, values in by_command.items()
        }
        for tree, by_command in samples.items()
    }
    for tree, by_command in figures.items():
        label = f"{tree} ({args.against})" if tree == "baseline" else f"{tree} ({_commit(ROOT)})"
        print(label)
        for name, figure in by_command.items():
            print(
                f"  {name:42} median {figure['median_s']:.3f} s "
                f"(min {figure['min_s']:.3f}, max {figure['max_s']:.3f})"
            )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "cli_startup",
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "commit": _commit(ROOT),
                "against": args.against,
                "cpu_count": os.cpu_count(),
                "loadavg": os.getloadavg(),
                "machine": probe.finish(),
                "runs": args.runs,
                "target_s": 0.3,
                "target_of": ["policy-monitor --help", "policy-monitor changes (empty database)"],
                "figures": figures,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"raw figures: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
