"""`policy-monitor run`: run every enabled source on its schedule until SIGTERM/SIGINT, and the
plain-text report of `policy-monitor status`.

Threads, not asyncio: a BackgroundScheduler hands each firing to a worker thread, which runs
`run_source` in an event loop of its own. `run_source` makes blocking database calls and extracts
CMS criteria inline, so sources sharing one event loop (AsyncIOScheduler) would stall each other;
a thread per running source keeps them apart and leaves the main thread free to handle signals.

Life cycle: at start, runs left "running" by a dead process are closed as failed. The first signal
stops new runs; running ones finish (each document's publish is its own transaction, so stopping
between documents is always consistent) within a grace period, then the process exits 0. If the
grace period runs out, or a second signal arrives, the process exits at once, non-zero; the runs
it abandons stay "running" until the next start (of this or another instance) closes them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from monitor.config import Config, SourceConfig
from monitor.pipeline.runner import RunSummary, SourceFactory, default_factory, run_source
from monitor.pipeline.scheduling import SchedulingOptions, add_jobs, build_jobs, next_fire_times
from monitor.store.core import Store, utcnow
from monitor.store.locks import SourceLocks, source_locks
from monitor.store.types import as_utc

log = logging.getLogger("policy_monitor.daemon")

EXIT_GRACE_EXPIRED = 1  # runs were still going when the grace period ended
STALE_REASON = "interrupted before it finished (its process stopped or died)"


class Daemon:
    """The scheduler and the runs it starts; `start`, then `stop` (or `begin_stop`/`wait_idle`)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        options: SchedulingOptions | None = None,
        locks: SourceLocks | None = None,
        factory: SourceFactory = default_factory,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.config = config
        self.store = store
        self.options = options or SchedulingOptions()
        self.locks = locks or source_locks(config.database.url)
        self.factory = factory
        self.now = now
        self._sources = {s.name: s for s in config.sources if s.enabled}
        self._scheduler: BackgroundScheduler | None = None
        self._state = threading.Condition()
        self._stopping = False
        self._running: set[str] = set()

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        closed = close_stale_runs(self.store, self.locks)
        if closed:
            log.warning("closed %d run(s) left running by a stopped process as failed", closed)
        workers = max(1, min(self.options.max_concurrent_runs, len(self._sources)))
        scheduler = BackgroundScheduler(
            timezone=dt.UTC, executors={"default": ThreadPoolExecutor(max_workers=workers)}
        )
        last_started = {
            status.name: status.last_run.started_at
            for status in self.store.source_statuses(
                [(s.name, s.kind) for s in self._sources.values()]
            )
            if status.last_run is not None
        }
        jobs = build_jobs(
            self._sources.values(), options=self.options, now=self.now(), last_started=last_started
        )
        add_jobs(scheduler, jobs, self.run_source_now)
        scheduler.start()
        self._scheduler = scheduler
        for job in scheduler.get_jobs():
            when = job.next_run_time
            log.info("%s: next run %s", job.id, f"{when:%Y-%m-%d %H:%M:%S} UTC" if when else "-")
        log.info("daemon started: %d source(s) scheduled", len(jobs))

    def begin_stop(self) -> None:
        """Take no new runs; runs already going carry on."""
        with self._state:
            if self._stopping:
                return
            self._stopping = True
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no run is going (True) or `timeout` seconds have passed (False)."""
        with self._state:
            return self._state.wait_for(lambda: not self._running, timeout)

    def stop(self, grace_seconds: float) -> bool:
        """`begin_stop` and `wait_idle`: True when every run finished within the grace period."""
        self.begin_stop()
        return self.wait_idle(grace_seconds)

    def health(self) -> tuple[bool, str]:
        """For /healthz: is the scheduler alive (and so will sources keep running)?"""
        scheduler = self._scheduler
        if self._stopping:
            return False, "stopping"
        if scheduler is None or not scheduler.running:
            return False, "the scheduler is not running"
        thread = getattr(scheduler, "_thread", None)
        if thread is not None and not thread.is_alive():
            return False, "the scheduler thread died"
        return True, "ok"

    @property
    def running_sources(self) -> list[str]:
        with self._state:
            return sorted(self._running)

    # -- one firing --------------------------------------------------------------------------

    def run_source_now(self, name: str) -> RunSummary | None:
        """What a firing of `name`'s job does: run it unless stopping or running elsewhere.

        Never raises: a failing job is logged and the next firing tries again.
        """
        with self._state:
            if self._stopping:
                log.info("%s: not started, the daemon is stopping", name)
                return None
            self._running.add(name)
        try:
            return self._run_locked(self._sources[name])
        except Exception:
            log.exception("%s: the run could not be carried out", name)
            return None
        finally:
            with self._state:
                self._running.discard(name)
                self._state.notify_all()

    def _run_locked(self, source: SourceConfig) -> RunSummary | None:
        lease = self.locks.try_acquire(source.name)
        if lease is None:
            log.info("%s: skipped, a run of this source is going on elsewhere", source.name)
            return None
        with lease:
            # Holding the lock, no live run of this source exists anywhere: any "running" row
            # was left by a dead process (possibly another instance's).
            self.store.close_stale_runs_of(source.name, STALE_REASON)
            summary = asyncio.run(
                run_source(
                    source,
                    self.store,
                    factory=self.factory,
                    still_holding=lease.still_held,
                    quarantine=self.config.quarantine,
                )
            )
        counts = summary.counts
        log.info(
            "run %d: %s",
            summary.run_id,
            summary.line(),
            extra={  # one structured line per run, for log collectors
                "event": "source_run",
                "source": summary.source,
                "run_id": summary.run_id,
                "outcome": summary.outcome,
                "baseline": summary.baseline,
                "listed": counts.listed,
                "fetched": counts.fetched,
                "new_versions": counts.new_versions,
                "unchanged": counts.unchanged,
                "changes": counts.changes,
                "errors": counts.errors,
                "requests": counts.requests,
                "duration_seconds": round(summary.seconds, 3),
                "error": summary.error,
            },
        )
        return summary


def close_stale_runs(store: Store, locks: SourceLocks) -> int:
    """Close the "running" runs of every source nobody is running now; returns how many.

    Sources whose lock another instance holds are left alone: their runs are live.
    """
    closed = 0
    for name in store.sources_with_running_runs():
        with locks.holding(name) as held:
            if held:
                closed += store.close_stale_runs_of(name, STALE_REASON)
    return closed


class _Signals:
    """Counts SIGTERM/SIGINT; the handler only records, the main loop acts."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous: dict[int, object] = {}

    def _record(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._record)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


def serve(
    config: Config,
    *,
    grace_seconds: float = 60.0,
    options: SchedulingOptions | None = None,
    poll_seconds: float = 0.2,
) -> int:
    """Run the daemon in this (main) thread until a signal; returns the exit status."""
    # Migrations run before signals are ours; notice flags judged by each source's notice_days.
    store = Store.open(config.database.url, notice_days=config.notice_days())
    daemon = Daemon(config, store, options=options)
    signals = _Signals()
    services = _Services(config, store, daemon)
    try:
        signals.install()
        daemon.start()
        services.start()
        while not signals.received:
            if not services.alive():
                log.error("a service thread died (%s): stopping", services.dead())
                signals.received.append(signal.SIGTERM)
                break
            time.sleep(poll_seconds)
        log.info(
            "%s received: stopping, waiting up to %gs for running sources (%s)",
            signal.Signals(signals.received[0]).name,
            grace_seconds,
            ", ".join(daemon.running_sources) or "none",
        )
        daemon.begin_stop()
        deadline = time.monotonic() + grace_seconds
        while not daemon.wait_idle(poll_seconds):
            if len(signals.received) > 1:
                signum = signals.received[1]
                log.warning(
                    "second signal (%s): exiting now, abandoning %s",
                    signal.Signals(signum).name,
                    ", ".join(daemon.running_sources),
                )
                _exit_now(128 + signum)
            if time.monotonic() >= deadline:
                log.warning(
                    "grace period of %gs over: exiting, abandoning %s",
                    grace_seconds,
                    ", ".join(daemon.running_sources),
                )
                _exit_now(EXIT_GRACE_EXPIRED)
        services.stop()
        log.info("daemon stopped")
        return 0
    finally:
        services.stop()
        daemon.begin_stop()
        daemon.locks.close()
        store.close()
        signals.restore()


class _Services:
    """What runs beside the scheduler in `policy-monitor run`: the HTTP API (uvicorn in a
    thread) and the notification sender (a thread delivering the outbox, planning digests and
    alerts). Stopped after the last run finished, so the sender flushes what it published."""

    def __init__(self, config: Config, store: Store, daemon: Daemon) -> None:
        self.config = config
        self.store = store
        self.daemon = daemon
        self._api: Any = None
        self._sender: threading.Thread | None = None
        self._stop_sender = threading.Event()
        self._stopped = False

    def start(self) -> None:
        # The sender starts first and is published only once running: `health` (served by
        # the API) reads a thread that is not alive as a sender that stopped, so a thread
        # created but not yet started must never be visible to it.
        if self.config.notifications.enabled:
            from notifications.sender import run_sender_loop

            sender = threading.Thread(
                target=run_sender_loop,
                args=(self.store, self.config, self._stop_sender),
                name="notifications",
                daemon=True,
            )
            sender.start()
            self._sender = sender
            log.info("notification sender started")
        if self.config.api.enabled:
            from monitor.api.app import create_app  # FastAPI loads only when served
            from monitor.api.server import ApiServer

            self._api = ApiServer(
                create_app(self.store, self.config, health=self.health),
                host=self.config.api.host,
                port=self.config.api.port,
            )
            log.info("HTTP API on %s", self._api.start())

    def health(self) -> tuple[bool, str]:
        ok, reason = self.daemon.health()
        if ok and self._sender is not None and not self._sender.is_alive():
            return False, "the notification sender stopped"
        return ok, reason

    def alive(self) -> bool:
        return not self.dead()

    def dead(self) -> str:
        if self._sender is not None and not self._sender.is_alive() and not self._stopped:
            return "notifications"
        return ""

    def stop(self, timeout: float = 30.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stop_sender.set()
        if self._sender is not None:
            self._sender.join(timeout)  # the round in progress finishes; nothing is cut off
        if self._api is not None:
            self._api.stop(timeout)


def _exit_now(status: int) -> None:
    """Leave without waiting for the worker threads, which Python would otherwise join."""
    logging.shutdown()
    os._exit(status)


def status_report(config: Config, store: Store, *, now: dt.datetime | None = None) -> str:
    """Per source: kind, schedule, next run (from the schedule, UTC), last run and its outcome."""
    now = now or utcnow()
    statuses = store.source_statuses([(s.name, s.kind) for s in config.sources])
    last_started = {s.name: s.last_run.started_at for s in statuses if s.last_run is not None}
    upcoming = next_fire_times(config.sources, now=now, last_started=last_started)
    lines = []
    for source, status in zip(config.sources, statuses, strict=True):
        if not source.enabled:
            when = "disabled"
        elif (next_run := upcoming.get(source.name)) is None:
            when = "never"
        elif next_run <= now:
            when = "due now"
        else:
            when = f"{next_run:%Y-%m-%d %H:%M:%S} UTC"
        lines.append(
            f"{source.name} ({source.kind}) schedule {source.schedule.expression!r}, "
            f"next run {when}"
        )
        run = status.last_run
        if run is None:
            lines.append("    last run: never")
            continue
        lines.append(
            f"    last run {as_utc(run.started_at):%Y-%m-%d %H:%M:%S} UTC: {run.outcome}"
            f"{' (baseline)' if run.baseline else ''} - {run.listed} listed, "
            f"{run.fetched} fetched, {run.new_versions} new versions, {run.changes} changes, "
            f"{run.errors} errors"
        )
        if run.error:
            lines.append(f"    error: {run.error}")
    return "\n".join(lines)
