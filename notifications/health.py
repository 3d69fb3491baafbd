"""Source-health alerts to the operators' profile: once when a source breaks, once when it
recovers. The state lives in the database (`source_health`), so a restart or a second
instance does not tell the same news twice.

Broken means: the last N finished runs all failed (N = `failing_runs_threshold`); or the last
run listed no documents where the run before listed at least `MIN_LISTED`; or the versions
the last run published came out with empty criteria where their predecessors had some (the
extraction "suddenly yields nothing": a changed page layout, a PDF that became an image).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from monitor.config import Config
from monitor.store.outbox import NotifyStore, RunInfo
from notifications.planner import email_message
from notifications.quarantine import announce_quarantines
from notifications.render import render_health
from notifications.select import operators_profile

log = logging.getLogger("policy_monitor.notifications")

MIN_LISTED = 5


@dataclass(frozen=True, kw_only=True)
class Verdict:
    state: str  # ok, broken
    reason: str
    run_id: int


def judge(
    runs: list[RunInfo], *, failing_runs: int, emptied: tuple[int, int] = (0, 0)
) -> Verdict | None:
    """The health the latest runs (newest first) show; None with no finished run yet.
    `emptied` is (versions looked at, versions that came out empty) of the latest run."""
    if not runs:
        return None
    last = runs[0]
    if len(runs) >= failing_runs and all(r.outcome == "failed" for r in runs[:failing_runs]):
        return Verdict(
            state="broken",
            reason=f"the last {failing_runs} runs failed; last error: {last.error or 'unknown'}",
            run_id=last.id,
        )
    if last.outcome != "failed":
        earlier = next((r for r in runs[1:] if r.outcome != "failed"), None)
        if last.listed == 0 and earlier is not None and earlier.listed >= MIN_LISTED:
            return Verdict(
                state="broken",
                reason=f"run {last.id} listed 0 documents; the run before listed {earlier.listed}",
                run_id=last.id,
            )
        looked, empty = emptied
        if looked and empty == looked:
            return Verdict(
                state="broken",
                reason=f"run {last.id}: extraction found nothing in {empty} new version(s) "
                f"whose previous versions had criteria",
                run_id=last.id,
            )
        return Verdict(state="ok", reason=f"run {last.id} finished: {last.outcome}", run_id=last.id)
    return None  # a failure, but not N in a row yet: no news either way


def check_sources(notify: NotifyStore, config: Config, now: dt.datetime) -> int:
    """Record each source's health; write a message on every change. Returns messages written."""
    operators = operators_profile(config)
    threshold = config.notifications.failing_runs_threshold
    written = 0
    for source in config.sources:
        runs = notify.finished_runs(source.name, limit=max(threshold, 2) + 5)
        stored = notify.health(source.name)
        if not runs or (stored is not None and stored.last_run_id >= runs[0].id):
            continue  # nothing new since the last look
        emptied = notify.emptied_versions(runs[0].id) if runs[0].new_versions else (0, 0)
        verdict = judge(runs, failing_runs=threshold, emptied=emptied)
        if verdict is None:
            continue
        before = stored.state if stored is not None else "ok"
        message = None
        if verdict.state != before and operators is not None:
            key = f"health:{source.name}:{verdict.state}:{verdict.run_id}"
            failures = (
                [
                    f"{e.document_key or 'listing'}: {e.message}"
                    for e in notify.store.run_errors(verdict.run_id)
                ]
                if verdict.state == "broken"
                else []
            )
            rendered = render_health(
                source=source.name,
                state=verdict.state,
                reason=verdict.reason,
                now=now,
                failures=failures,
            )
            message = email_message("health", operators, key, rendered, config)
        changed = notify.set_health(
            source.name,
            expected=stored,
            state=verdict.state,
            reason=verdict.reason,
            run_id=verdict.run_id,
            now=now,
            message=message,
        )
        if changed and message is not None:
            log.warning("source %s is %s: %s", source.name, verdict.state, verdict.reason)
            written += 1
    # Versions held for review are operators' news too (once each).
    return written + announce_quarantines(notify, config, now)
