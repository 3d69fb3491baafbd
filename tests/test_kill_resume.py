"""`kill -9` of `policy-monitor run` inside its publishing transactions: the database stays
consistent, the killed transaction leaves no row, and the next start resumes where the killed
one stopped.

Where each kill lands is not left to timing: the daemon runs with the publish trace hook
(POLICY_MONITOR_TRACE_FILE, in monitor/pipeline/publish.py), which notes every publishing
transaction with its rows written but not yet committed and holds it open a moment; the test
kills the daemon at its k-th such moment (k seeded), then reads from the trace where the kill
landed. bench/kill_resume.py repeats this test and counts the passes.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from fixtures.cms_api import CmsApiFixture, Fault
from monitor.cli.main import main
from monitor.store.core import Store

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

KILLS_PER_WEEK = 4
MIN_KILLS_INSIDE_A_TRANSACTION = 6  # of 8; each one is also checked to have left no row
HOLD_SECONDS = 1.0  # how long a traced transaction stays open, rows written, before COMMIT
WAIT_FOR_PUBLISHING_SECONDS = 90.0  # generous: a loaded machine is slow, never wrong
SEED = int(os.environ.get("KILL_RESUME_SEED", "20261126"))


@pytest.fixture
def server() -> Iterator[CmsApiFixture]:
    with CmsApiFixture(scenario="week1") as fixture:
        yield fixture


@dataclass(frozen=True)
class Landing:
    """Where one kill landed, from the trace: the daemon's last publishing step."""

    pid: int
    target: int  # killed at its target-th uncommitted transaction
    event: str  # "uncommitted", "committed" or "none" (no publishing reached)
    outcome: str = ""
    key: str = ""
    source_version: str = ""

    @property
    def inside_a_transaction(self) -> bool:
        return self.event == "uncommitted" and self.outcome in ("new", "changed")


def _steps(trace: Path, pid: int) -> list[list[str]]:
    if not trace.exists():
        return []
    lines = trace.read_text(encoding="utf-8").splitlines()
    return [fields[1:] for fields in map(str.split, lines) if fields and fields[0] == str(pid)]


def _wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _kill_at_publishing(daemon: subprocess.Popen[bytes], trace: Path, target: int) -> Landing:
    """SIGKILL once the daemon has `target` transactions open-then-traced, then read back
    where the kill landed."""

    def reached() -> bool:
        steps = _steps(trace, daemon.pid)
        return sum(step[0] == "uncommitted" for step in steps) >= target

    _wait_for(reached, WAIT_FOR_PUBLISHING_SECONDS)
    daemon.send_signal(signal.SIGKILL)
    daemon.wait(timeout=30)
    steps = _steps(trace, daemon.pid)
    if not steps:
        return Landing(pid=daemon.pid, target=target, event="none")
    event, outcome, key, version = steps[-1]
    return Landing(daemon.pid, target, event, outcome, key, version)


def _versions_of(store: Store, key: str, source_version: str) -> int:
    with store.session() as session:
        return int(
            session.execute(
                text(
                    "SELECT count(*) FROM document_versions v JOIN documents d "
                    "ON d.id = v.document_id WHERE d.key = :key AND v.source_version = :version"
                ),
                {"key": key, "version": "" if source_version == "-" else source_version},
            ).scalar_one()
        )


def _orphans(store: Store) -> dict[str, int]:
    queries = {
        "versions without criteria": "SELECT count(*) FROM document_versions v "
        "WHERE NOT EXISTS (SELECT 1 FROM criteria c WHERE c.version_id = v.id)",
        "versions without payload": "SELECT count(*) FROM document_versions v "
        "WHERE NOT EXISTS (SELECT 1 FROM payloads p WHERE p.sha256 = v.content_sha256)",
        "listing entries without a version": "SELECT count(*) FROM listing_entries l "
        "WHERE NOT EXISTS (SELECT 1 FROM documents d JOIN document_versions v "
        "ON v.document_id = d.id WHERE d.key = l.key AND v.source_version = l.source_version)",
        "documents without versions": "SELECT count(*) FROM documents d "
        "WHERE NOT EXISTS (SELECT 1 FROM document_versions v WHERE v.document_id = d.id)",
    }
    with store.session() as session:
        return {name: int(session.execute(text(sql)).scalar_one()) for name, sql in queries.items()}


def test_kill_9_inside_publishing_transactions_leaves_a_consistent_database(
    tmp_path: Path, server: CmsApiFixture, record_property: Callable[[str, object], None]
) -> None:
    database = tmp_path / "monitor.store.db"
    config = tmp_path / "monitor.toml"
    trace = tmp_path / "publish.trace"
    config.write_text(f"""
[database]
url = "sqlite:///{database}"

[api]
port = 0

[[sources]]
name = "cms"
kind = "cms_coverage"
base_url = "{server.base_url}"
schedule = "every 1s"
backoff_seconds = 0.01
concurrency = 1
""")
    env = {
        **os.environ,
        "POLICY_MONITOR_TRACE_FILE": str(trace),
        "POLICY_MONITOR_TRACE_HOLD_SECONDS": str(HOLD_SECONDS),
    }
    # Slow every detail request a little, as real CMS is: runs are long, kills mid-run.
    server.inject("/v1/data/", Fault(delay=0.02), times=100_000)
    chance = random.Random(SEED)
    landings: list[Landing] = []
    store = Store.open(f"sqlite:///{database}")
    try:
        for week in ("week1", "week2"):
            server.set_scenario(week)
            for _ in range(KILLS_PER_WEEK):
                with (tmp_path / "daemon.log").open("a") as log:
                    daemon = subprocess.Popen(
                        [sys.executable, "-m", "monitor.cli", "--config", str(config), "run",
                         "--jitter-seconds", "0"],
                        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
                    )  # fmt: skip
                landing = _kill_at_publishing(daemon, trace, target=chance.randint(1, 3))
                landings.append(landing)
                if landing.inside_a_transaction:
                    # Killed with its rows written but not committed: none of them is there.
                    assert _versions_of(store, landing.key, landing.source_version) == 0
            if week == "week1":
                # Finish week 1 before week 2 is served: a document whose week-1 version no
                # killed run reached is first seen at its week-2 version, and then there is
                # nothing to compare (which depends on how fast the daemons started, not on
                # the kills). This start also closes the runs the week-1 kills left.
                assert main(["--config", str(config), "check"]) == 0
        server.clear_faults()

        inside = [landing for landing in landings if landing.inside_a_transaction]
        record_property("kills", len(landings))
        record_property("kills_inside_a_transaction", len(inside))
        print(f"\n{len(inside)} of {len(landings)} kills landed inside a publishing transaction")
        for landing in landings:
            print(f"  {landing}")
        assert len(landings) == 2 * KILLS_PER_WEEK
        assert len(inside) >= MIN_KILLS_INSIDE_A_TRANSACTION, landings
        assert _orphans(store) == dict.fromkeys(_orphans(store), 0)
        with store.session() as session:
            interrupted = session.execute(
                text("SELECT count(*) FROM source_runs WHERE outcome = 'running'")
            ).scalar_one()
        # Each start closed the runs its predecessor left; the last kill's run is still open
        # (it certainly was mid-run when it landed inside a transaction).
        assert interrupted == (1 if landings[-1].inside_a_transaction else interrupted) <= 1
        # The next start closes what the kills left running and finishes the work.
        assert main(["--config", str(config), "check"]) == 0
        assert main(["--config", str(config), "check"]) == 0
        with store.session() as session:
            still_running = session.execute(
                text("SELECT count(*) FROM source_runs WHERE outcome = 'running'")
            ).scalar_one()
            last = session.execute(
                text(
                    "SELECT fetched, new_versions, changes FROM source_runs "
                    "ORDER BY id DESC LIMIT 1"
                )
            ).one()
        assert still_running == 0
        assert tuple(last) == (0, 0, 0)  # all caught up: the last run found nothing new
        # Every version a kill rolled back was published by a later start, exactly once.
        for landing in inside:
            assert _versions_of(store, landing.key, landing.source_version) == 1, landing
        # Week 2's changes are all there exactly once, whatever the kills interrupted.
        removed = [c for c in store.changes(document="A57520") if c.kind == "code_removed"]
        assert [c.before for c in removed] == ["L82.0"]
        assert _orphans(store) == dict.fromkeys(_orphans(store), 0)
    finally:
        store.close()
