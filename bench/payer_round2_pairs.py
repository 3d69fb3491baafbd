"""Benchmark: round 2 of ``bench/vs_urlwatch.py`` (a re-check after 5 % of 1,000 pages changed)
of this tree against another checkout, many times over, with code and database crossed.

Each tree runs round 1 (``policy-monitor check`` on week 1) once into its own SQLite database;
the fixture then serves week 2 and every round-2 run starts from a fresh copy of one of the two
databases. All four pairs (this code or the other, on this tree's round-1 database or the
other's) run in turns, rotated each round, so a difference is told apart as the code's or the
database's (the order rows were written in round 1). Wall and CPU times (user + system of
the command and what it reaped), medians and the load average go to
``bench/results/payer_round2_pairs_<name>.json``.

    python bench/payer_round2_pairs.py --against DIR [--rounds 7] [--name NAME]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import results_file
from machine import MachineProbe
from vs_urlwatch import write_project_config

from fixtures.loopback import spawn_fixture

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).parent / "policy-monitor")


def _check(config: Path, tree: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the command and what it reaped)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [CLI, "--config", str(config), "check"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(tree)},
    )
    _pid, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"policy-monitor check failed in {tree}")
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True)
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--name", default="")
    args = parser.parse_args()
    probe = MachineProbe()  # the machine's speed, for figures of other sessions
    trees = {"this": ROOT, "against": args.against.resolve()}
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
    figures: dict[str, list[float]] = {}
    cpu_seconds: dict[str, list[float]] = {}
    round1: dict[str, float] = {}
    loads: list[list[float]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-round2-") as scratch:
            directory = Path(scratch)
            databases = {}
            for name, tree in trees.items():
                (directory / name).mkdir()
                config = write_project_config(directory / name, base_url, args.documents)
                round1[name] = _check(config, tree)[0]
                databases[name] = directory / name / "monitor.db"
                print(f"round 1 of {name}: {round1[name]:.2f} s", flush=True)
            request = urllib.request.Request(
                base_url + "/_control/scenario?name=week2", method="POST"
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
            run = directory / "run"
            run.mkdir()
            config = write_project_config(run, base_url, args.documents)
            pairs = [(code, db) for code in trees for db in trees]
            for number in range(args.rounds):
                loads.append(list(os.getloadavg()))
                turn = pairs[number % len(pairs) :] + pairs[: number % len(pairs)]
                line = []
                for code, db in turn:
                    shutil.copyfile(databases[db], run / "monitor.db")
                    seconds, cpu = _check(config, trees[code])
                    figures.setdefault(f"code={code} db={db}", []).append(seconds)
                    cpu_seconds.setdefault(f"code={code} db={db}", []).append(cpu)
                    line.append(f"{code}/{db} {seconds:.2f} ({cpu:.2f} CPU)")
                print(f"round {number + 1} (load {loads[-1][0]:.2f}): " + ", ".join(line))
    finally:
        server.terminate()
        server.wait(timeout=10)
    medians = {pair: statistics.median(values) for pair, values in figures.items()}
    cpu_medians = {pair: statistics.median(values) for pair, values in cpu_seconds.items()}
    for pair, median in medians.items():
        print(f"median {pair}: {median:.2f} s, {cpu_medians[pair]:.2f} s CPU")
    name = f"_{args.name}" if args.name else ""
    results_file.write(
        f"payer_round2_pairs{name}",
        {
            "benchmark": "payer_round2_pairs",
            "against": str(args.against),
            "documents": args.documents,
            "round1_seconds": round1,
            "round2_seconds": figures,
            "medians": medians,
            "round2_cpu_seconds": cpu_seconds,
            "cpu_medians": cpu_medians,
            "loadavg_before_rounds": loads,
        },
        machine=probe.finish(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
