"""Benchmark: repeat the kill -9 test (tests/test_kill_resume.py) and count how many repetitions
passed and how many kills landed inside a publishing transaction.

Each repetition is one pytest run of that test, seeded differently (KILL_RESUME_SEED), so the
kills fall at other transactions; the figures come from the test's own record (junit XML).
Writes bench/results/kill_resume.json (date, commit, cores, figures); the README quotes it.

    python bench/kill_resume.py [--repetitions 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "kill_resume.json"
TEST = "tests/test_kill_resume.py"


def _one_run(seed: int, junit: Path) -> dict[str, object]:
    env = {**os.environ, "KILL_RESUME_SEED": str(seed), "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST,
         "-o", "junit_family=xunit1", f"--junitxml={junit}"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.monotonic() - started
    properties = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")}
    return {
        "seed": seed,
        "passed": done.returncode == 0,
        "seconds": round(seconds, 1),
        "kills": int(properties.get("kills") or 0),
        "kills_inside_a_transaction": int(properties.get("kills_inside_a_transaction") or 0),
        "tail": "" if done.returncode == 0 else done.stdout[-2000:],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1)
    args = parser.parse_args(argv)
    commit = subprocess.run(  # read before the runs: what was measured, not what came after
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for n in range(args.repetitions):
            run = _one_run(args.first_seed + n, Path(scratch) / f"run{n}.xml")
            runs.append(run)
            print(
                f"run {n + 1:>2}/{args.repetitions} seed {run['seed']}: "
                f"{'passed' if run['passed'] else 'FAILED'}, {run['kills_inside_a_transaction']}"
                f"/{run['kills']} kills inside a publishing transaction, {run['seconds']} s",
                flush=True,
            )
    passed = sum(bool(r["passed"]) for r in runs)
    kills = sum(int(r["kills"]) for r in runs)  # type: ignore[call-overload]
    inside = sum(int(r["kills_inside_a_transaction"]) for r in runs)  # type: ignore[call-overload]
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "cores": os.cpu_count(),
        "repetitions": len(runs),
        "passed": passed,
        "kills": kills,
        "kills_inside_a_transaction": inside,
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"{passed} of {len(runs)} repetitions passed; {inside} of {kills} kills landed inside a "
        f"publishing transaction (commit {commit}, {os.cpu_count()} cores) -> {RESULTS}"
    )
    return 0 if passed == len(runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
