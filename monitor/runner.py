"""One run of one source: list, fetch what is new, publish each version, record the run.

A run always ends in an outcome (success, partial, failed) recorded against the source; a
failure of one document is recorded and retried on the next run, and never stops the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from monitor.config import SourceConfig
from monitor.errors import MonitorError
from monitor.publish import Outcome, PublishContext, PublishResult, publish, publish_withdrawals
from monitor.store import RunCounts, Store
from sources.base import FetchFailure, ListedDocument, Source

log = logging.getLogger("policy_monitor.runner")


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    source: str
    run_id: int
    outcome: str  # success, partial, failed
    baseline: bool
    counts: RunCounts
    seconds: float
    error: str | None = None

    def line(self) -> str:
        c = self.counts
        text = (
            f"{self.source}: {self.outcome}{' (baseline)' if self.baseline else ''} - "
            f"{c.listed} listed, {c.fetched} fetched, {c.new_versions} new versions, "
            f"{c.changes} changes, {c.errors} errors, {c.requests} requests, "
            f"{self.seconds:.1f}s"
        )
        return f"{text} - {self.error}" if self.error else text


SourceFactory = Callable[[SourceConfig], Source]


def default_factory(config: SourceConfig) -> Source:
    return config.source_kind.create(name=config.name, options=config.options)


async def run_source(
    config: SourceConfig,
    store: Store,
    *,
    factory: SourceFactory = default_factory,
    today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
) -> RunSummary:
    """Run `config` once against `store` and return what happened (never raises MonitorError)."""
    started = time.monotonic()
    source_row = store.ensure_source(config.name, config.kind)
    baseline = source_row.baseline_completed_at is None
    run_id = store.start_run(source_row.id, baseline=baseline)
    counts = RunCounts()
    source = factory(config)
    try:
        try:
            known = store.listing_state(source_row.id)
            listing = await source.list_documents(known)
            listed = list(listing.documents)
        except MonitorError as exc:
            counts = replace(counts, errors=1, requests=source.request_count)
            return _finish(
                store, config, run_id, baseline, "failed", counts, started, f"listing failed: {exc}"
            )
        wanted = [
            d
            for d in listed
            if (seen := known.get((d.key, d.source_version))) is None
            or seen.fingerprint != d.fingerprint
        ]
        by_version = {(d.key, d.source_version): d for d in wanted}
        counts = replace(counts, listed=len(listed))
        ctx = PublishContext(
            source_id=source_row.id,
            run_id=run_id,
            baseline=baseline,
            today=today(),
            extract=config.source_kind.extract,
            extractor_name=config.source_kind.extractor_name,
        )
        async for result in source.fetch(wanted):
            if isinstance(result, FetchFailure):
                counts = replace(counts, errors=counts.errors + 1)
                store.record_run_error(
                    run_id, key=result.key, url=result.url, message=result.message
                )
                log.warning("%s: %s", config.name, result.message)
                continue
            counts = replace(counts, fetched=counts.fetched + 1)
            listed_doc: ListedDocument = by_version[(result.key, result.source_version or "")]
            published: PublishResult | None = None
            error: str | None = None
            try:
                published = publish(store, ctx, result, listed_doc)
                error = published.error
            except MonitorError as exc:
                error = str(exc)
            if published is None or published.outcome is Outcome.ERROR:
                counts = replace(counts, errors=counts.errors + 1)
                store.record_run_error(
                    run_id, key=result.key, url=result.url, message=error or "unknown error"
                )
                log.warning("%s: %s %s: %s", config.name, result.key, result.source_version, error)
            elif published.outcome is Outcome.UNCHANGED:
                counts = replace(counts, unchanged=counts.unchanged + 1)
            else:
                counts = replace(
                    counts,
                    new_versions=counts.new_versions + 1,
                    changes=counts.changes + published.changes,
                )
        problems = list(listing.problems)
        if listing.complete and not baseline:
            check = publish_withdrawals(store, ctx, {d.key for d in listed})
            counts = replace(counts, changes=counts.changes + len(check.withdrawn))
            if check.skipped:
                problems.append(check.skipped)
        for problem in problems:
            counts = replace(counts, errors=counts.errors + 1)
            store.record_run_error(run_id, key=None, url=None, message=problem)
            log.warning("%s: %s", config.name, problem)
        counts = replace(counts, requests=source.request_count)
        outcome = "success" if counts.errors == 0 else "partial"
        if counts.errors and counts.errors == len(wanted) and wanted:
            outcome = "failed"
        return _finish(
            store,
            config,
            run_id,
            baseline,
            outcome,
            counts,
            started,
            f"{counts.errors} document(s) failed; see run errors" if counts.errors else None,
        )
    except Exception as exc:
        # A bug or an unexpected library error: record it so the run is not left "running".
        log.exception("%s: run %d crashed", config.name, run_id)
        counts = replace(counts, errors=counts.errors + 1, requests=source.request_count)
        return _finish(
            store,
            config,
            run_id,
            baseline,
            "failed",
            counts,
            started,
            f"unexpected {type(exc).__name__}: {exc}",
        )
    finally:
        await source.aclose()


def _finish(
    store: Store,
    config: SourceConfig,
    run_id: int,
    baseline: bool,
    outcome: str,
    counts: RunCounts,
    started: float,
    error: str | None,
) -> RunSummary:
    store.finish_run(
        run_id,
        outcome=outcome,
        counts=counts,
        error=error,
        complete_baseline=baseline and outcome != "failed",
    )
    summary = RunSummary(
        source=config.name,
        run_id=run_id,
        outcome=outcome,
        baseline=baseline,
        counts=counts,
        seconds=time.monotonic() - started,
        error=error,
    )
    log.info("run finished", extra={"run": summary.line()})
    return summary
