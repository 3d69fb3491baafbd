"""`kill -9` at random moments of `policy-monitor run`: the database stays consistent and the
next start resumes where the killed one stopped."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from fixtures.cms_api import CmsApiFixture, Fault
from monitor.cli.main import main
from monitor.store.core import Store

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture
def server() -> Iterator[CmsApiFixture]:
    with CmsApiFixture(scenario="week1") as fixture:
        yield fixture


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


def test_kill_9_at_random_moments_leaves_a_consistent_database(
    tmp_path: Path, server: CmsApiFixture
) -> None:
    database = tmp_path / "monitor.store.db"
    config = tmp_path / "monitor.toml"
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
    # Slow every detail request a little so that kills land in the middle of runs.
    server.inject("/v1/data/", Fault(delay=0.02), times=100_000)
    chance = random.Random(20261126)
    kills = 0
    for week in ("week1", "week2"):
        server.set_scenario(week)
        for _ in range(4):
            with (tmp_path / "daemon.log").open("a") as log:
                daemon = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "monitor.cli",
                        "--config",
                        str(config),
                        "run",
                        "--jitter-seconds",
                        "0",
                    ],
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            time.sleep(chance.uniform(1.0, 2.5))
            daemon.send_signal(signal.SIGKILL)
            daemon.wait(timeout=10)
            kills += 1
        if week == "week1":
            # Finish week 1 before week 2 is served: a document whose week-1 version no
            # killed run reached is first seen at its week-2 version, and then there is
            # nothing to compare (which depends on how fast the daemons started, not on the
            # kills). This start also closes the runs the week-1 kills left.
            assert main(["--config", str(config), "check"]) == 0
    server.clear_faults()

    store = Store.open(f"sqlite:///{database}")
    try:
        assert _orphans(store) == dict.fromkeys(_orphans(store), 0)
        with store.session() as session:
            interrupted = session.execute(
                text("SELECT count(*) FROM source_runs WHERE outcome = 'running'")
            ).scalar_one()
        assert kills == 8
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
        assert interrupted <= 1  # each start closed the runs its predecessor left
        assert still_running == 0
        assert tuple(last) == (0, 0, 0)  # all caught up: the last run found nothing new
        # Week 2's changes are all there exactly once, whatever the kills interrupted.
        removed = [c for c in store.changes(document="A57520") if c.kind == "code_removed"]
        assert [c.before for c in removed] == ["L82.0"]
        assert _orphans(store) == dict.fromkeys(_orphans(store), 0)
    finally:
        store.close()
