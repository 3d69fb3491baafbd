"""Two `policy-monitor run` processes on one PostgreSQL database: never the same source at once,
and when one is killed with SIGKILL the other carries on with its sources."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from fixtures.cms_api import CmsApiFixture, Fault
from monitor.store.core import Store
from monitor.store.models.core import SourceRow, SourceRun

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def server() -> Iterator[CmsApiFixture]:
    with CmsApiFixture(scenario="week1") as fixture:
        yield fixture


def _daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as handle:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monitor.cli",
                "--config",
                str(config),
                "run",
                "--jitter-seconds",
                "0",
                "--grace-seconds",
                "20",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=handle,
        )


def _runs(store: Store, source: str) -> list[SourceRun]:
    with store.session() as s:
        return list(
            s.scalars(
                select(SourceRun)
                .join(SourceRow, SourceRun.source_id == SourceRow.id)
                .where(SourceRow.name == source)
                .order_by(SourceRun.started_at)
            )
        )


def _wait(what: str, predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_daemons_share_sources_without_overlap_and_survive_a_kill(
    tmp_path: Path, server: CmsApiFixture, postgres_url: str
) -> None:
    config = tmp_path / "monitor.toml"
    sources = "".join(
        f"""
[[sources]]
name = "{name}"
kind = "cms_coverage"
base_url = "{server.base_url}"
schedule = "every 1s"
backoff_seconds = 0.01
"""
        for name in ("cms-a", "cms-b")
    )
    config.write_text(f'[database]\nurl = "{postgres_url}"\n[api]\nport = 0\n{sources}')
    # Every run lasts longer than the 1 s between firings (its NCD listing answers after 1.1 s),
    # so the other daemon's firing of a source always comes while a run of it holds the lock:
    # the two compete on every source, however quick an unchanged run has become.
    server.inject("/v1/reports/national-coverage-ncd", Fault.delayed(1.1), times=100_000)
    store = Store.open(postgres_url)
    try:
        _share_and_survive_a_kill(config, tmp_path, store)
    finally:
        store.close()  # also when an assertion failed: no connection left to the next test


def _share_and_survive_a_kill(config: Path, tmp_path: Path, store: Store) -> None:
    first = _daemon(config, tmp_path / "first.log")
    second = _daemon(config, tmp_path / "second.log")
    try:
        _wait(
            "several finished runs of both sources",
            lambda: all(
                len([r for r in _runs(store, s) if r.finished_at]) >= 3 for s in ("cms-a", "cms-b")
            ),
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = time.time()
        _wait(
            "runs after the kill",
            lambda: all(
                any(
                    r.started_at.timestamp() > killed_at + 0.5 and r.finished_at
                    for r in _runs(store, s)
                )
                for s in ("cms-a", "cms-b")
            ),
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    second_log = (tmp_path / "second.log").read_text()
    logs = (tmp_path / "first.log").read_text() + second_log
    # They competed: firings found the source's lock taken and were skipped, not queued.
    assert "skipped, a run of this source is going on elsewhere" in logs
    # After the kill the survivor ran both sources itself.
    assert ": cms-a: success" in second_log and ": cms-b: success" in second_log, second_log
    for source in ("cms-a", "cms-b"):
        runs = _runs(store, source)
        finished = [r for r in runs if r.finished_at is not None]
        # One run of a source at a time, across both processes.
        for earlier, later in itertools.pairwise(finished):
            assert earlier.finished_at is not None  # `finished` holds finished runs only
            assert later.started_at >= earlier.finished_at, (source, earlier.id, later.id, logs)
        # A run the killed process left behind was closed by the survivor (or none was left).
        assert not [r for r in runs if r.outcome == "running"], logs
        assert [r for r in runs if r.outcome == "success"]
