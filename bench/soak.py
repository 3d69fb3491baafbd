"""Soak: `policy-monitor run` for N minutes against the fixture servers, with changes every minute.

The CMS fixture API and the fixture payer site run in their own processes; every source runs
every minute (no jitter). Each minute the payer site flips between its week-1 and week-2 pages
(the flip back is a revert, itself a change) and the CMS API steps week1 -> week2 -> week3 once.
The daemon's resident memory (its own process; the Scrapy and extraction children are transient)
is sampled every few seconds. Printed: runs by outcome, changes published, peak and idle RSS, and
RSS growth between the second minute and the last (target: flat within 10 %, idle <= 150 MB).

    python bench/soak.py [--minutes 10] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from fixtures.loopback import spawn_fixture
from fixtures.payer_site import AETNA_INDEX_PATH, UHC_INDEX_PATH

SAMPLE_SECONDS = 2.0


def rss_mb(pid: int) -> float:
    """The resident set of `pid` in MB (VmRSS), 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(directory: Path, cms_url: str, payer_url: str, api_port: int) -> Path:
    path = directory / "soak.toml"
    path.write_text(f"""
[database]
url = "sqlite:///{directory / "soak.db"}"

[api]
port = {api_port}
public_url = "http://127.0.0.1:{api_port}"

[scheduler]
jitter_seconds = 0
shutdown_grace_seconds = 60

[[sources]]
name = "cms"
kind = "cms_coverage"
base_url = "{cms_url}"
schedule = "every 1m"

[[sources]]
name = "acme"
kind = "payer_policies"
payer = "Acme Health"
start_urls = ["{payer_url}{UHC_INDEX_PATH}", "{payer_url}{AETNA_INDEX_PATH}"]
allow = ["/policies/drug/", "/cpb/medical/data/"]
download_delay_seconds = 0.0
schedule = "every 1m"
""")
    return path


def summary(database: Path) -> tuple[dict[str, int], int]:
    with sqlite3.connect(database) as connection:
        runs = dict(
            connection.execute("SELECT outcome, COUNT(*) FROM source_runs GROUP BY outcome")
        )
        changes = connection.execute(
            "SELECT COUNT(*) FROM changes WHERE baseline = 0 AND severity != 'noise'"
        ).fetchone()[0]
    return runs, int(changes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--keep", help="keep the database and logs in this directory")
    args = parser.parse_args()
    directory = Path(args.keep or tempfile.mkdtemp(prefix="soak-"))
    directory.mkdir(parents=True, exist_ok=True)

    cms, cms_url = spawn_fixture("fixtures.cms_api", "--scenario", "week1")
    payer, payer_url = spawn_fixture("fixtures.payer_site", "--scenario", "week1")
    api_port = free_port()
    config = write_config(directory, cms_url, payer_url, api_port)
    log_file = (directory / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor.cli.main",
            "--config",
            str(config),
            "--log-level",
            "INFO",
            "--log-format",
            "json",
            "run",
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    samples: list[tuple[float, float]] = []  # (seconds since start, RSS MB)
    health_failures = health_checks = 0
    started = time.monotonic()
    minute = 0
    cms_weeks = ["week1", "week2", "week3"]
    try:
        with httpx.Client(timeout=5.0) as client:
            while (elapsed := time.monotonic() - started) < args.minutes * 60:
                if daemon.poll() is not None:
                    print(f"daemon exited early with {daemon.returncode}", file=sys.stderr)
                    return 1
                if int(elapsed // 60) > minute:
                    minute = int(elapsed // 60)
                    payer_week = "week2" if minute % 2 else "week1"
                    client.post(f"{payer_url}/_control/scenario", params={"name": payer_week})
                    cms_week = cms_weeks[min(minute, len(cms_weeks) - 1)]
                    client.post(f"{cms_url}/_control/scenario", params={"name": cms_week})
                samples.append((elapsed, rss_mb(daemon.pid)))
                if len(samples) % 5 == 0:
                    health_checks += 1
                    try:
                        answer = client.get(f"http://127.0.0.1:{api_port}/healthz")
                        health_failures += answer.status_code != 200
                    except httpx.HTTPError:
                        health_failures += 1
                time.sleep(SAMPLE_SECONDS)
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            status = daemon.wait(timeout=90)
        except subprocess.TimeoutExpired:
            daemon.kill()
            status = daemon.wait()
        log_file.close()
        for fixture in (cms, payer):
            fixture.send_signal(signal.SIGTERM)
            fixture.wait(timeout=10)

    runs, changes = summary(directory / "soak.db")
    rss = [r for _, r in samples if r > 0]
    # Idle: the lowest sample once the daemon has done its first runs (not the start-up).
    settled = [r for t, r in samples if t >= 60 and r > 0] or rss
    second_minute = [r for t, r in samples if 60 <= t < 120 and r > 0]
    last_minute = [r for t, r in samples if t >= samples[-1][0] - 60 and r > 0]
    early = sum(second_minute) / max(len(second_minute), 1)
    late = sum(last_minute) / max(len(last_minute), 1)
    print(f"soak: {args.minutes:g} min, daemon exit status {status}")
    print(f"  runs by outcome: {runs}  (failed: {runs.get('failed', 0)})")
    print(f"  changes published (not baseline, not noise): {changes}")
    print(
        f"  RSS peak {max(rss):.0f} MB, idle (lowest after the first minute) {min(settled):.0f} MB"
    )
    print(
        f"  RSS mean in minute 2: {early:.0f} MB, in the last minute: {late:.0f} MB, "
        f"growth {100 * (late - early) / max(early, 1):+.1f} %"
    )
    print(f"  /healthz: {health_checks - health_failures}/{health_checks} answered 200")
    print(f"  files: {directory}")
    if not args.keep:
        print("  (pass --keep DIR to keep them)")
    return 0 if status == 0 else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
