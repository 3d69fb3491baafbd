"""The daemon: jobs and triggers from the config, runs on schedule, graceful stop (in process and
as a real `policy-monitor run` process), stale runs, per-source locks, `policy-monitor status`."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from fixtures.cms_api import CmsApiFixture, Fault
from monitor.cli.main import main
from monitor.config import Config, Schedule, SourceConfig, parse_config
from monitor.daemon import EXIT_GRACE_EXPIRED, STALE_REASON, Daemon, _Services, status_report
from monitor.pipeline.runner import default_factory
from monitor.pipeline.scheduling import (
    SchedulingOptions,
    add_jobs,
    build_jobs,
    crontab_day_of_week,
    next_fire_times,
)
from monitor.store.core import Store
from monitor.store.locks import FileLocks, PostgresLocks, lock_key, source_locks
from monitor.store.models.core import SourceRun
from sources.base import Source

ROOT = Path(__file__).resolve().parents[1]
UTC = dt.UTC
# A Tuesday.
NOW = dt.datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
NO_JITTER = SchedulingOptions(jitter_seconds=0)


@pytest.fixture
def server() -> Iterator[CmsApiFixture]:
    with CmsApiFixture(scenario="week1") as fixture:
        yield fixture


def _config(database_url: str, *sources: dict[str, Any]) -> Config:
    return parse_config({"database": {"url": database_url}, "sources": list(sources)})


def _cms(name: str, server: CmsApiFixture, schedule: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "cms_coverage",
        "base_url": server.base_url,
        "schedule": schedule,
        "backoff_seconds": 0.01,
        "max_retries": 0,
        **extra,
    }


def _runs(store: Store) -> list[SourceRun]:
    with store.session() as s:
        return list(s.scalars(select(SourceRun).order_by(SourceRun.id)))


def _wait_for(what: str, predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# -- scheduling ------------------------------------------------------------------------------


def test_jobs_from_cron_and_interval_schedules(tmp_path: Path) -> None:
    config = parse_config(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'm.db'}"},
            "sources": [
                {"name": "thursday", "kind": "cms_coverage", "schedule": "30 7 * * 4"},
                {"name": "weekdays", "kind": "cms_coverage", "schedule": "0 6 * * 1-5"},
                {"name": "default", "kind": "cms_coverage"},  # "30 7 * * *"
                {"name": "new", "kind": "cms_coverage", "schedule": "every 6h"},
                {"name": "recent", "kind": "cms_coverage", "schedule": "every 6h"},
                {"name": "overdue", "kind": "cms_coverage", "schedule": "every 6h"},
                {"name": "off", "kind": "cms_coverage", "enabled": False},
            ],
        }
    )
    last = {"recent": NOW - dt.timedelta(hours=2), "overdue": NOW - dt.timedelta(hours=30)}
    jobs = {
        j.source: j
        for j in build_jobs(config.sources, options=SchedulingOptions(), now=NOW, last_started=last)
    }
    assert set(jobs) == {"thursday", "weekdays", "default", "new", "recent", "overdue"}
    assert isinstance(jobs["thursday"].trigger, CronTrigger)
    assert isinstance(jobs["new"].trigger, IntervalTrigger)
    assert jobs["new"].trigger.interval == dt.timedelta(hours=6)
    assert jobs["thursday"].trigger.jitter == 60
    assert jobs["new"].trigger.jitter == 60  # a tenth of 6 h is more than the 60 s asked for

    assert next_fire_times(config.sources, now=NOW, last_started=last) == {
        # crontab weekday 4 is Thursday (APScheduler 3 alone would read it as Friday)
        "thursday": dt.datetime(2026, 11, 12, 7, 30, tzinfo=UTC),
        "weekdays": dt.datetime(2026, 11, 11, 6, 0, tzinfo=UTC),
        "default": dt.datetime(2026, 11, 11, 7, 30, tzinfo=UTC),
        "new": NOW,  # never ran: at once
        "recent": NOW + dt.timedelta(hours=4),  # one interval after its last run
        "overdue": NOW,
    }
    # Interval sources keep their cadence after the first run.
    recent = jobs["recent"]
    first = recent.next_fire_time(NOW)
    assert first is not None
    second = recent.trigger.get_next_fire_time(first, first)
    assert second is not None and dt.timedelta(hours=6) <= second - first <= dt.timedelta(
        hours=6, seconds=60
    )

    scheduler = BackgroundScheduler(timezone=UTC)
    added = {j.id: j for j in add_jobs(scheduler, jobs.values(), lambda name: None)}
    assert set(added) == set(jobs)
    for job in added.values():
        assert job.max_instances == 1
        assert job.coalesce is True
        assert job.misfire_grace_time == 3600
        assert job.args == (job.id,)
    assert added["recent"].next_run_time == NOW + dt.timedelta(hours=4)


def test_sunday_and_ranges_follow_crontab() -> None:
    assert crontab_day_of_week("0") == crontab_day_of_week("7") == "sun"
    assert crontab_day_of_week("1-5") == "mon,tue,wed,thu,fri"
    assert crontab_day_of_week("0-7") == "*"
    assert crontab_day_of_week("*/2") == "sun,tue,thu,sat"
    assert crontab_day_of_week("fri-mon") == "sun,mon,fri,sat"
    sunday = SourceConfig(
        name="s",
        kind="cms_coverage",
        schedule=Schedule.parse("0 5 * * 0"),
        enabled=True,
        options=None,
    )
    assert next_fire_times([sunday], now=NOW) == {"s": dt.datetime(2026, 11, 15, 5, tzinfo=UTC)}
    with pytest.raises(ValueError, match="not a weekday"):
        crontab_day_of_week("funday")


def test_jitter_delays_a_cron_run_by_at_most_the_jitter() -> None:
    source = SourceConfig(
        name="s",
        kind="cms_coverage",
        schedule=Schedule.parse("0 6 * * *"),
        enabled=True,
        options=None,
    )
    (job,) = build_jobs([source], options=SchedulingOptions(jitter_seconds=60), now=NOW)
    exact = dt.datetime(2026, 11, 11, 6, 0, tzinfo=UTC)
    times = {job.trigger.get_next_fire_time(None, NOW) for _ in range(20)}
    assert all(t is not None and exact <= t <= exact + dt.timedelta(seconds=60) for t in times)
    assert len(times) > 1


# -- the daemon in process ---------------------------------------------------------------------


def test_daemon_runs_a_source_on_schedule_and_stops_cleanly(
    database_url: str, server: CmsApiFixture
) -> None:
    config = _config(database_url, _cms("cms", server, "every 1s"))
    store = Store.open(database_url)
    daemon = Daemon(config, store, options=NO_JITTER)
    try:
        daemon.start()
        _wait_for(
            "two finished runs",
            lambda: len([r for r in _runs(store) if r.outcome == "success"]) >= 2,
        )
        assert daemon.stop(grace_seconds=10) is True
        stopped_with = len(_runs(store))
        time.sleep(1.5)  # a second's schedule would have fired again by now
        runs = _runs(store)
    finally:
        daemon.stop(grace_seconds=10)
        daemon.locks.close()
        store.close()
    assert len(runs) == stopped_with
    assert all(r.outcome == "success" for r in runs)
    assert runs[0].baseline and runs[0].listed == 17 and runs[0].new_versions == 17
    assert not runs[1].baseline and runs[1].new_versions == 0


def test_a_failing_job_is_logged_and_the_daemon_goes_on(
    tmp_path: Path, server: CmsApiFixture, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    config = _config(url, _cms("cms", server, "every 1s"))
    calls: list[str] = []

    def flaky_factory(source: SourceConfig) -> Source:
        calls.append(source.name)
        if len(calls) == 1:
            raise RuntimeError("factory exploded")
        return default_factory(source)

    store = Store.open(url)
    daemon = Daemon(config, store, options=NO_JITTER, factory=flaky_factory)
    caplog.set_level(logging.INFO, logger="policy_monitor.daemon")
    try:
        daemon.start()
        _wait_for(
            "a run after the failure", lambda: any(r.outcome == "success" for r in _runs(store))
        )
        assert daemon.stop(grace_seconds=10)
    finally:
        daemon.stop(grace_seconds=10)
        store.close()
    failures = [r for r in caplog.records if "could not be carried out" in r.getMessage()]
    assert failures and failures[0].exc_info and "factory exploded" in str(failures[0].exc_info[1])
    assert len(calls) >= 2


def test_stale_runs_are_closed_at_start_unless_running_elsewhere(
    database_url: str, server: CmsApiFixture
) -> None:
    config = _config(
        database_url,
        _cms("cms", server, "0 0 1 1 *"),
        _cms("busy", server, "0 0 1 1 *"),
    )
    store = Store.open(database_url)
    stale = store.start_run(store.ensure_source("cms", "cms_coverage").id, baseline=True)
    live = store.start_run(store.ensure_source("busy", "cms_coverage").id, baseline=True)
    other_instance = source_locks(database_url)
    lease = other_instance.try_acquire("busy")  # "busy" is being run by another process
    assert lease is not None
    daemon = Daemon(config, store, options=NO_JITTER)
    try:
        daemon.start()
        runs = {r.id: r for r in _runs(store)}
    finally:
        daemon.stop(grace_seconds=5)
        daemon.locks.close()
        lease.release()
        other_instance.close()
        store.close()
    assert runs[stale].outcome == "failed"
    assert runs[stale].error == STALE_REASON
    assert runs[stale].finished_at is not None
    assert runs[live].outcome == "running"


# -- locks -------------------------------------------------------------------------------------

_HOLDER = """
import sys
from monitor.store.locks import source_locks
lease = source_locks(sys.argv[1]).try_acquire(sys.argv[2])
print("HELD" if lease else "REFUSED", flush=True)
sys.stdin.read()
"""


def test_lock_key_is_stable_and_64_bit() -> None:
    # The key must be the same in every process and every Python version: pinned here.
    assert lock_key("cms") == lock_key("cms") != lock_key("cms2")
    assert -(2**63) <= lock_key("cms") < 2**63
    assert lock_key("cms") == -3400912533815227419


def test_lock_key_names_a_schema_other_than_public() -> None:
    # `public` keeps the key an earlier release used; another schema's store has keys apart.
    assert lock_key("cms", "public") == lock_key("cms") == -3400912533815227419
    assert lock_key("cms", "tenant_a") != lock_key("cms") != lock_key("cms", "tenant_b")


@pytest.mark.postgres
def test_stores_in_two_schemas_of_one_database_hold_their_sources_apart(
    postgres_url: str,
) -> None:
    import psycopg

    other = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as conn:
        conn.execute(f"CREATE SCHEMA {other}")
    try:
        here, there = (
            PostgresLocks(postgres_url),
            PostgresLocks(postgres_url.rsplit("%3D", 1)[0] + "%3D" + other),
        )
        held = here.try_acquire("cms")
        assert held is not None
        assert here.try_acquire("cms") is None  # the same store: taken
        apart = there.try_acquire("cms")  # another store in the same database: its own lock
        assert apart is not None
        apart.release()
        held.release()
        here.close()
        there.close()
    finally:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
        ) as conn:
            conn.execute(f"DROP SCHEMA {other} CASCADE")


def test_source_lock_is_exclusive_across_processes_and_dies_with_its_holder(
    database_url: str,
) -> None:
    Store.open(database_url).close()  # the database file exists, as it does under a daemon
    locks = source_locks(database_url)
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, database_url, "cms"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "HELD"
            assert locks.try_acquire("cms") is None  # another process holds it
            other = locks.try_acquire("payer")  # one lock per source, not one for all
            assert other is not None
            other.release()
        finally:
            holder.kill()  # SIGKILL: no chance to unlock
    try:
        lease = _wait_for("the dead holder's lock to be freed", lambda: locks.try_acquire("cms"))
        with lease:
            second = source_locks(database_url)  # another connection / open file, same process
            try:
                assert second.try_acquire("cms") is None
            finally:
                second.close()
        again = locks.try_acquire("cms")  # released on leaving the with block
        assert again is not None
        again.release()
    finally:
        locks.close()
    if database_url.startswith("sqlite"):
        assert isinstance(locks, FileLocks)
        assert locks.path_of("cms").parent == Path(database_url.split(":///", 1)[1]).parent
    else:
        assert isinstance(locks, PostgresLocks)


def test_a_firing_is_skipped_while_the_source_runs_elsewhere(
    tmp_path: Path, server: CmsApiFixture, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    config = _config(url, _cms("cms", server, "0 0 1 1 *"))
    store = Store.open(url)
    daemon = Daemon(config, store, options=NO_JITTER)
    caplog.set_level(logging.INFO, logger="policy_monitor.daemon")
    elsewhere = source_locks(url).try_acquire("cms")
    assert elsewhere is not None
    try:
        assert daemon.run_source_now("cms") is None
        assert _runs(store) == []
        assert any("skipped" in r.getMessage() for r in caplog.records)
        elsewhere.release()
        summary = daemon.run_source_now("cms")
        assert summary is not None and summary.outcome == "success"
    finally:
        elsewhere.release()
        store.close()
    assert server.request_count > 0


# -- status ------------------------------------------------------------------------------------


def test_status_shows_schedule_next_and_last_run(
    tmp_path: Path, server: CmsApiFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(f"""
[database]
url = "sqlite:///{tmp_path / "monitor.store.db"}"

[[sources]]
name = "cms"
kind = "cms_coverage"
base_url = "{server.base_url}"
schedule = "every 6h"

[[sources]]
name = "thursdays"
kind = "cms_coverage"
base_url = "{server.base_url}"
schedule = "30 7 * * 4"

[[sources]]
name = "down"
kind = "cms_coverage"
base_url = "http://127.0.0.1:9"
max_retries = 0
""")
    assert main(["--config", str(path), "check", "--source", "cms"]) == 0
    assert main(["--config", str(path), "check", "--source", "down"]) == 1
    capsys.readouterr()
    assert main(["--config", str(path), "status"]) == 0
    out = capsys.readouterr().out

    store = Store.open(f"sqlite:///{tmp_path / 'monitor.store.db'}")
    try:
        started = {r.id: r.started_at.replace(tzinfo=UTC) for r in _runs(store)}
    finally:
        store.close()
    next_cms = started[1] + dt.timedelta(hours=6)
    blocks = out.split("\n")
    assert (
        blocks[0]
        == f"cms (cms_coverage) schedule 'every 6h', next run {next_cms:%Y-%m-%d %H:%M:%S} UTC"
    )
    assert blocks[1].startswith(
        f"    last run {started[1]:%Y-%m-%d %H:%M:%S} UTC: success (baseline)"
    )
    assert "17 listed" in blocks[1] and "17 new versions" in blocks[1]
    assert blocks[2].startswith("thursdays (cms_coverage) schedule '30 7 * * 4', next run ")
    thursday = dt.datetime.strptime(blocks[2].rsplit("next run ", 1)[1], "%Y-%m-%d %H:%M:%S UTC")
    assert thursday.weekday() == 3 and (thursday.hour, thursday.minute) == (7, 30)
    assert blocks[3] == "    last run: never"
    assert blocks[4].startswith("down (cms_coverage) schedule '30 7 * * *', next run ")
    assert ": failed (baseline)" in blocks[5]
    assert blocks[6].startswith("    error: listing failed")


def test_status_report_with_a_fixed_clock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    config = parse_config(
        {
            "database": {"url": url},
            "sources": [
                {"name": "cms", "kind": "cms_coverage", "schedule": "every 1h"},
                {"name": "off", "kind": "cms_coverage", "enabled": False},
            ],
        }
    )
    store = Store.open(url)
    try:
        report = status_report(config, store, now=NOW)
    finally:
        store.close()
    assert report.splitlines() == [
        "cms (cms_coverage) schedule 'every 1h', next run due now",
        "    last run: never",
        "off (cms_coverage) schedule '30 7 * * *', next run disabled",
        "    last run: never",
    ]


# -- `policy-monitor run` as a real process ----------------------------------------------------


def _start_daemon(tmp_path: Path, server: CmsApiFixture, *args: str) -> subprocess.Popen[str]:
    config = tmp_path / "monitor.toml"
    config.write_text(f"""
[database]
url = "sqlite:///{tmp_path / "monitor.store.db"}"

[api]
port = 0

[[sources]]
name = "cms"
kind = "cms_coverage"
base_url = "{server.base_url}"
schedule = "every 1s"
backoff_seconds = 0.01
""")
    command = [sys.executable, "-W", "error::DeprecationWarning", "-m", "monitor.cli"]
    with (tmp_path / "daemon.log").open("w") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [*command, "--config", str(config), "run", "--jitter-seconds", "0", *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )


def _running_run_after(store: Store, server: CmsApiFixture, fault: Fault) -> int:
    """Wait for a finished run, make listings slow, return the run caught in a slow listing."""
    _wait_for("a finished run", lambda: any(r.outcome == "success" for r in _runs(store)))
    server.inject("/v1/reports/", fault, times=100)
    mark = len(server.requests)  # every listing request from here on is slow
    _wait_for(
        "a slow listing request",
        lambda: any(t.startswith("/v1/reports/") for t in server.requests[mark:]),
    )
    (running,) = [r for r in _runs(store) if r.outcome == "running"]
    return running.id


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.slow
def test_run_serves_the_api_and_healthz_follows_the_scheduler(
    tmp_path: Path, server: CmsApiFixture
) -> None:
    daemon = _start_daemon(tmp_path, server)
    log_path = tmp_path / "daemon.log"
    try:
        _wait_for("the API", lambda: "HTTP API on http://" in log_path.read_text())
        url = re.search(r"HTTP API on (http://\S+)", log_path.read_text()).group(1)  # type: ignore[union-attr]
        answer = httpx.get(f"{url}/healthz", timeout=5)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "ok"
        assert httpx.get(f"{url}/changes", timeout=5).status_code == 401  # a key is needed
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    finally:
        _stop(daemon)
    log = log_path.read_text()
    assert "notification sender started" in log
    assert "Traceback" not in log


def test_health_never_sees_a_sender_thread_before_it_runs(
    tmp_path: Path, server: CmsApiFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CI once read /healthz while the sender thread existed but had not started: 503,
    # "the notification sender stopped". Health is asked here at that very moment.
    config = parse_config(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'm.db'}"},
            "api": {"enabled": False},
            "sources": [_cms("cms", server, "every 1h")],
        }
    )
    store = Store.open(config.database.url)
    daemon = Daemon(config, store, options=NO_JITTER)
    services = _Services(config, store, daemon)
    seen: list[tuple[bool, str]] = []
    real_thread = threading.Thread

    class Probe(real_thread):  # type: ignore[misc,valid-type]
        def start(self) -> None:
            if self.name == "notifications":
                seen.append(services.health())
            super().start()

    try:
        daemon.start()
        monkeypatch.setattr(threading, "Thread", Probe)
        services.start()
        monkeypatch.setattr(threading, "Thread", real_thread)
        assert seen == [(True, "ok")]  # the sender was created, not yet published
        assert services.health() == (True, "ok")  # and once running, it is seen alive
    finally:
        services.stop(10)
        daemon.stop(10)
        daemon.begin_stop()
        store.close()


def test_health_is_false_once_the_daemon_stops(tmp_path: Path, server: CmsApiFixture) -> None:
    config = _config(f"sqlite:///{tmp_path / 'm.db'}", _cms("cms", server, "every 1h"))
    store = Store.open(config.database.url)
    daemon = Daemon(config, store, options=NO_JITTER)
    try:
        assert daemon.health() == (False, "the scheduler is not running")
        daemon.start()
        assert daemon.health() == (True, "ok")
        daemon.stop(10)
        assert daemon.health()[0] is False
    finally:
        daemon.begin_stop()
        store.close()


@pytest.mark.slow
def test_sigterm_lets_the_running_source_finish_then_exits_0(
    tmp_path: Path, server: CmsApiFixture
) -> None:
    daemon = _start_daemon(tmp_path, server, "--grace-seconds", "30")
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.store.db'}")
    try:
        run_id = _running_run_after(store, server, Fault.delayed(1.0))
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
        runs = {r.id: r for r in _runs(store)}
    finally:
        _stop(daemon)
        store.close()
    log = (tmp_path / "daemon.log").read_text()
    assert runs[run_id].outcome == "success", log  # finished, not cut off
    assert not [r for r in runs.values() if r.outcome == "running"]
    assert "SIGTERM received: stopping, waiting up to 30s for running sources (cms)" in log
    assert "daemon stopped" in log
    assert "Traceback" not in log


@pytest.mark.slow
def test_second_signal_exits_at_once_and_the_next_start_closes_the_run(
    tmp_path: Path, server: CmsApiFixture
) -> None:
    daemon = _start_daemon(tmp_path, server, "--grace-seconds", "60")
    url = f"sqlite:///{tmp_path / 'monitor.store.db'}"
    store = Store.open(url)
    try:
        run_id = _running_run_after(store, server, Fault.delayed(60.0))
        daemon.send_signal(signal.SIGTERM)
        _wait_for(
            "the stop to begin", lambda: "SIGTERM received" in (tmp_path / "daemon.log").read_text()
        )
        daemon.send_signal(signal.SIGINT)
        assert daemon.wait(timeout=10) == 128 + signal.SIGINT
        assert {r.id: r for r in _runs(store)}[run_id].outcome == "running"  # abandoned

        # The next daemon (here: in process) closes it as failed before scheduling anything.
        config = _config(url, {"name": "cms", "kind": "cms_coverage", "schedule": "0 0 1 1 *"})
        restarted = Daemon(config, store, options=NO_JITTER)
        restarted.start()
        restarted.stop(grace_seconds=5)
        run = {r.id: r for r in _runs(store)}[run_id]
    finally:
        _stop(daemon)
        store.close()
    assert run.outcome == "failed" and run.error == STALE_REASON


@pytest.mark.slow
def test_grace_period_over_exits_non_zero(tmp_path: Path, server: CmsApiFixture) -> None:
    daemon = _start_daemon(tmp_path, server, "--grace-seconds", "0.5")
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.store.db'}")
    try:
        run_id = _running_run_after(store, server, Fault.delayed(60.0))
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=20) == EXIT_GRACE_EXPIRED
        run = {r.id: r for r in _runs(store)}[run_id]
    finally:
        _stop(daemon)
        store.close()
    assert run.outcome == "running"  # closed as failed by the next start (test above)
    assert "grace period of 0.5s over" in (tmp_path / "daemon.log").read_text()


def test_run_refuses_negative_grace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "m.db"}"\n')
    assert main(["--config", str(config), "run", "--grace-seconds", "-1"]) == 2
    assert "must not be negative" in capsys.readouterr().err
    assert os.path.exists(tmp_path / "m.db") is False  # refused before opening anything
