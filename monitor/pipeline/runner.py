"""One run of one source: list, fetch what is new, publish each version, record the run.

A run always ends in an outcome (success, partial, failed) recorded against the source; a
failure of one document is recorded and retried on the next run, and never stops the others.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import aclosing
from dataclasses import dataclass, replace

from diffing.model import RawDocument
from diffing.parse import detect_format
from monitor.config import QuarantineConfig, SourceConfig
from monitor.errors import MonitorError
from monitor.pipeline.batching import BATCH_SIZE, ISOLATED_BATCH_SIZE, Batcher, ticking
from monitor.pipeline.collecting import with_fewer_collections
from monitor.pipeline.publish import (
    Outcome,
    PublishContext,
    PublishResult,
    already_published,
    publish_withdrawals,
)
from monitor.pipeline.verification import keep_reference, previous_reference, remember_text
from monitor.pipeline.worker import (
    Extracted,
    PageEdges,
    extract_or_error,
    limit_worker_memory,
)
from monitor.pipeline.workers import end_pool, start_workers_early, worker_context
from monitor.progress import Progress
from monitor.store.core import RunCounts, Store
from monitor.store.publishing import remember_validators
from sources.base import Announcing, FetchFailure, ListedDocument, Source, SourceKind

EXTRACT_WORKERS = 2  # this is a 2-core machine class; parsing is CPU-bound
# Fetched content sent to the workers and not yet published, past the first two per worker.
IN_FLIGHT_BYTES = 32 * 1024 * 1024
DEFAULT_EXTRACT_TIMEOUT = 300.0  # seconds for one document's parse and extraction
# Documents extracted while the listing still downloads (`_Extraction.arrived`), at most: about
# what two workers do in the listing of a thousand pages; and their bytes, at most.
EARLY_DOCUMENTS = 256
EARLY_BYTES = 16 * 1024 * 1024
# Documents sent to the workers and not yet published, at most (extracted ones included).
MAX_PENDING = EARLY_DOCUMENTS + 64

log = logging.getLogger("policy_monitor.runner")

LOST_LOCK = (
    "lost the source lock (its database connection dropped); stopped between documents so "
    "that no two instances publish the same source at once - the next run carries on"
)


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    source: str
    run_id: int
    outcome: str  # success, partial, failed
    baseline: bool
    counts: RunCounts
    seconds: float
    error: str | None = None
    unverified: int = 0  # of the changes, claims the texts contradict (never alerted)

    def line(self) -> str:
        c = self.counts
        text = (
            f"{self.source}: {self.outcome}{' (baseline)' if self.baseline else ''} - "
            f"{c.listed} listed, {c.fetched} fetched, {c.new_versions} new versions, "
            f"{c.changes} changes{self._unverified()}, {c.errors} errors, {c.requests} requests, "
            f"{self.seconds:.1f}s"
        )
        return f"{text} - {self.error}" if self.error else text

    def _unverified(self) -> str:
        return f" ({self.unverified} unverified)" if self.unverified else ""


SourceFactory = Callable[[SourceConfig], Source]


def default_factory(config: SourceConfig) -> Source:
    return config.source_kind.create(name=config.name, options=config.options)


@with_fewer_collections  # monitor.pipeline.collecting: a run's objects mostly live on
async def run_source(
    config: SourceConfig,
    store: Store,
    *,
    factory: SourceFactory = default_factory,
    today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
    progress: Progress | None = None,
    still_holding: Callable[[], bool] | None = None,
    quarantine: QuarantineConfig | None = None,
) -> RunSummary:
    """Run `config` once against `store` and return what happened (never raises MonitorError).
    `progress`, when given, hears how many documents are to be fetched and each one done.
    `still_holding`, when given, is asked before each document is published: once it says the
    source lock was lost (another instance may be running the source now), the run stops
    between documents and is recorded as failed. `quarantine` is the guard against versions
    that look broken (`[quarantine]`; its defaults when not given)."""
    started = time.monotonic()
    source_row = store.ensure_source(config.name, config.kind)
    baseline = source_row.baseline_completed_at is None
    run_id = store.start_run(source_row.id, baseline=baseline)
    counts = RunCounts()
    source = factory(config)
    timeout = float(getattr(config.options, "parse_timeout_seconds", DEFAULT_EXTRACT_TIMEOUT))
    # Before the listing: what it downloads may be extracted while it goes on (`arrived`).
    extraction = _Extraction(config.source_kind, timeout=timeout, baseline=baseline)
    try:
        try:
            known = store.listing_state(source_row.id)
            if config.source_kind.isolated_extract:
                start_workers_early()
                if isinstance(source, Announcing):
                    source.announce_to(extraction.arrived)
            listing = await source.list_documents(known)
            listed = list(listing.documents)
        except MonitorError as exc:
            counts = replace(counts, errors=1, requests=source.request_count)
            return _finish(
                store, config, run_id, baseline, "failed", counts, started, f"listing failed: {exc}"
            )
        finally:
            if isinstance(source, Announcing):
                source.announce_to(None)
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
            diff=config.source_kind.diff,
            quarantine=quarantine or QuarantineConfig(),
        )
        tally = _Tally(
            store=store, run_id=run_id, source=config.name, counts=counts, progress=progress
        )
        if progress is not None:
            progress.start(len(wanted))
        lost_lock: str | None = None
        isolated = config.source_kind.isolated_extract
        async with (
            # Inline extraction (CMS, MCD): batches are published in a thread while the run
            # fetches. Worker extraction (payer) publishes in this thread: the texts its
            # workers send back wait in this thread's cache (monitor.pipeline.verification).
            Batcher(
                store,
                ctx,
                size=ISOLATED_BATCH_SIZE if isolated else BATCH_SIZE,
                background=not isolated,
            ) as batch,
            aclosing(ticking(source.fetch(wanted), batch.max_wait)) as fetched,
        ):
            extraction.batch = batch
            async for result in fetched:
                if result is None or batch.overdue():  # publish what waited long enough
                    for done in await batch.flush(wait=False):
                        tally.published(*done)
                    if result is None:
                        continue
                if still_holding is not None and not still_holding():
                    lost_lock = LOST_LOCK
                    break
                if isinstance(result, FetchFailure):
                    tally.failed(result.key, result.url, result.message)
                    continue
                tally.counts = replace(tally.counts, fetched=tally.counts.fetched + 1)
                listed_doc = by_version[(result.key, result.source_version or "")]
                for done in await extraction.submit(store, ctx, result, listed_doc):
                    tally.published(*done)
            for done in await extraction.drain(store, ctx):
                tally.published(*done)
            # What waits was fetched while the lock was held (each document was asked about):
            # published, as the documents in flight in the workers are, and then the run stops.
            for done in await batch.flush():
                tally.published(*done)
        extraction.close()
        counts = tally.counts
        if lost_lock:
            store.record_run_error(run_id, key=None, url=None, message=lost_lock)
            counts = replace(counts, errors=counts.errors + 1, requests=source.request_count)
            return _finish(store, config, run_id, baseline, "failed", counts, started, lost_lock)
        # A held version is recorded as an error but is no failure of the run.
        document_failures = counts.errors - tally.quarantined
        problems = list(listing.problems)
        if listing.complete and not baseline:
            check = publish_withdrawals(store, ctx, {d.key for d in listed}, gone=listing.gone)
            reported = len(check.withdrawn) + len(check.reinstated)
            counts = replace(counts, changes=counts.changes + reported)
            if check.skipped:
                problems.append(check.skipped)
        for problem in problems:
            counts = replace(counts, errors=counts.errors + 1)
            store.record_run_error(run_id, key=None, url=None, message=problem)
            log.warning("%s: %s", config.name, problem)
        if listing.validators and counts.errors == 0:
            # Only a run that published everything keeps the validators of the listing's own
            # files (an export zip's sha256 and ETag): after a failure they are read again.
            remember_validators(store, source_row.id, listing.validators)
        counts = replace(counts, requests=source.request_count)
        outcome, error = _outcome(
            listed, wanted, problems, document_failures, tally.first_failure, tally.quarantined
        )
        return _finish(
            store,
            config,
            run_id,
            baseline,
            outcome,
            counts,
            started,
            error,
            unverified=tally.unverified,
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
        extraction.close()
        await source.aclose()


def _outcome(
    listed: list[ListedDocument],
    wanted: list[ListedDocument],
    problems: list[str],
    document_failures: int,
    first_failure: str | None,
    held: int = 0,
) -> tuple[str, str | None]:
    """success, partial or failed, and the run's error line naming the reasons.

    A run in which nothing could be listed because every index page failed, or every document
    it wanted failed, is `failed`: a payer site that is down is no success.
    """
    if not listed and problems:
        return "failed", f"nothing listed: {'; '.join(problems[:3])}"
    if wanted and document_failures == len(wanted):
        return "failed", f"all {len(wanted)} document(s) failed: {first_failure or '?'}"
    if not problems and not document_failures and not held:
        return "success", None
    reasons = [*problems[:2]]
    if held:  # not a failure of the run, but a reviewer has work: never a plain success
        reasons.insert(0, f"{held} version(s) held for review")
    if document_failures:
        reasons.insert(0, f"{document_failures} document(s) failed, first: {first_failure or '?'}")
    return "partial", "; ".join(reasons)


@dataclass(kw_only=True)
class _Tally:
    """Counts a run's outcomes and records its per-document errors."""

    store: Store
    run_id: int
    source: str
    counts: RunCounts
    progress: Progress | None = None
    quarantined: int = 0
    unverified: int = 0  # changes published as `unverified` (the texts contradict them)
    first_failure: str | None = None  # "key: reason" of the first document that failed

    def _advance(self) -> None:
        if self.progress is not None:
            self.progress.advance()

    def failed(self, key: str, url: str | None, message: str) -> None:
        self._advance()
        self.counts = replace(self.counts, errors=self.counts.errors + 1)
        self.store.record_run_error(self.run_id, key=key, url=url, message=message)
        if self.first_failure is None and not message.startswith("quarantined: "):
            self.first_failure = f"{key}: {message}"
        log.warning("%s: %s: %s", self.source, key, message)

    def published(self, raw: RawDocument, result: PublishResult | None, error: str | None) -> None:
        if result is None or result.outcome is Outcome.ERROR:
            self.failed(raw.key, raw.url, error or (result.error if result else None) or "?")
        elif result.outcome is Outcome.QUARANTINED:
            # An error of the run, so `sources` and `status` show it until someone decides.
            self.quarantined += 1
            self.failed(raw.key, raw.url, f"quarantined: {result.error}")
        elif result.outcome is Outcome.UNCHANGED:
            self._advance()
            self.counts = replace(self.counts, unchanged=self.counts.unchanged + 1)
        else:
            self._advance()
            self.unverified += result.unverified
            self.counts = replace(
                self.counts,
                new_versions=self.counts.new_versions + 1,
                changes=self.counts.changes + result.changes,
            )


Done = tuple[RawDocument, PublishResult | None, str | None]


def _retrieve(future: asyncio.Future[Extracted | str]) -> None:
    """Mark a worker future's failure as seen: the run reports it its own way."""
    if future.done() and not future.cancelled():
        future.exception()


class _Extraction:
    """Where criteria are extracted: inline (cheap, CMS) or in worker processes (PDF parsing:
    uses both cores and keeps a crashing or hanging parser out of this process).

    A document whose extraction outlives `timeout` seconds is recorded as failed; the workers
    are replaced (a stuck pdfminer cannot be interrupted otherwise) and the documents that were
    waiting are submitted again, so nothing else of the run is lost.

    A source that downloads its documents while it lists them (`sources.base.Announcing`)
    hands them to `arrived` as they come: their extraction starts at once, on the cores the
    listing leaves idle, and `submit` later takes the result for the same bytes instead of
    extracting them again. Everything else is as for any document (the store asked first, the
    timeout counted from when the run waits, a broken worker's documents tried again)."""

    def __init__(
        self, kind: SourceKind, *, timeout: float = DEFAULT_EXTRACT_TIMEOUT, baseline: bool = False
    ) -> None:
        self.kind = kind
        self.batch: Batcher | None = None  # where extracted documents wait to be published
        self.timeout = timeout
        self.baseline = baseline
        self.pool: ProcessPoolExecutor | None = None
        self.pending: list[tuple[RawDocument, ListedDocument, asyncio.Future[Extracted | str]]] = []
        self.limit = 0
        self.floor = 0
        # The workers start with the first document that needs them, so a run with nothing new
        # (the usual re-check) starts no process. (CMS bundles were measured in workers too:
        # sending the criteria of a full baseline back cost this process more than extracting
        # them, so they stay inline.)
        self.use_workers = kind.isolated_extract
        self.references: dict[str, PageEdges] = {}  # by document key: its previous page edges
        # Extractions started as the listing downloaded the documents, by key (`arrived`).
        self.early: dict[str, tuple[RawDocument, asyncio.Future[Extracted | str]]] = {}
        self.early_bytes = 0
        self.early_used = 0  # of them, taken by `submit`
        # The source's documents in the store when the run first asked, and the keys this run
        # has submitted since: a document in neither is new, and `already_published` (a store
        # session each) could only answer None for it (see `_maybe_stored`).
        self.stored_keys: frozenset[str] | None = None
        self.submitted: set[str] = set()

    def _new_pool(self) -> ProcessPoolExecutor:
        workers = max(1, min(EXTRACT_WORKERS, os.cpu_count() or 1))
        # Enough in flight to keep the workers busy while this thread publishes a batch (it
        # does so in the event loop: ~20 ms a payer document, 16 to a batch); with two per
        # worker, they sat idle for most of each batch (measured: a third of a 1,000-page
        # first fetch). Big documents are held back by `IN_FLIGHT_BYTES` instead.
        self.floor = 2 * workers
        self.limit = self.floor + ISOLATED_BATCH_SIZE
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=worker_context(),
            initializer=limit_worker_memory,
        )

    def close(self) -> None:
        """End the workers; what is still waiting for them is given up (the run closes its
        extraction when done with it, and again whatever happened)."""
        if self.pool is None:
            return
        for _raw, _listed, future in self.pending:
            future.cancel()
        self._forget_early()
        # The run wants nothing more of its workers: end them rather than wait for their
        # interpreters to wind down (measured: 2.9 s for two loaded workers, 0.04 s so).
        end_pool(self.pool)
        self.pool = None

    def _submit(
        self, raw: RawDocument, reference: PageEdges | None = None
    ) -> asyncio.Future[Extracted | str]:
        if self.pool is None:
            self.pool = self._new_pool()
        loop = asyncio.get_running_loop()
        if reference is None:
            reference = self.references.get(raw.key, ())
        future = loop.run_in_executor(
            self.pool, extract_or_error, self.kind.extract, raw, reference
        )
        future.add_done_callback(_retrieve)  # failures are reported by the run, not by asyncio
        return future

    def _start(
        self, raw: RawDocument, reference: PageEdges | None = None
    ) -> asyncio.Future[Extracted | str]:
        try:
            return self._submit(raw, reference)
        except BrokenProcessPool:  # a worker died while this was being queued
            self._replace_workers()
            return self._submit(raw, reference)

    def arrived(self, raw: RawDocument) -> None:
        """The listing downloaded `raw`, which it will list as new or changed: extract it now,
        within `EARLY_DOCUMENTS` and `EARLY_BYTES`, when the reference it is to be parsed
        with is known without the store (none: a baseline, or a document without pages)."""
        if not self.use_workers or raw.key in self.early:
            return
        if len(self.early) >= EARLY_DOCUMENTS or (
            self.early_bytes + len(raw.content) > EARLY_BYTES
        ):
            return
        if not self.baseline and _printed(raw):
            return  # parsed with its previous version's page edges: the store's, later
        try:
            future = self._start(raw, ())
        except Exception:  # a hint that failed must not fail the listing: extracted later
            log.debug("%s: not extracted early", raw.key, exc_info=True)
            return
        self.early[raw.key] = (raw, future)
        self.early_bytes += len(raw.content)

    def _early(
        self, raw: RawDocument, reference: PageEdges
    ) -> asyncio.Future[Extracted | str] | None:
        """The extraction `arrived` started for exactly this document and reference, if any."""
        found = self.early.pop(raw.key, None)
        if found is None:
            return None
        early, future = found
        self.early_bytes -= len(early.content)
        broken = future.done() and (future.cancelled() or future.exception() is not None)
        if reference or broken or replace(early, fetched_at=raw.fetched_at) != raw:
            future.cancel()
            return None
        self.early_used += 1
        return future

    def _drop_early(self, key: str) -> None:
        found = self.early.pop(key, None)
        if found is not None:
            self.early_bytes -= len(found[0].content)
            found[1].cancel()

    def _forget_early(self) -> None:
        for _raw, future in self.early.values():
            future.cancel()
        self.early.clear()
        self.early_bytes = 0

    async def submit(
        self, store: Store, ctx: PublishContext, raw: RawDocument, listed: ListedDocument
    ) -> list[Done]:
        if not self.use_workers:
            return await self._batch.add(raw, listed)
        known = (
            already_published(store, ctx, raw, listed)
            if self._maybe_stored(store, ctx, raw)
            else None
        )
        if known is not None:
            self._drop_early(raw.key)  # its early extraction, if any, is not needed
            return [(raw, known, None)]
        reference = self.references[raw.key] = previous_reference(
            store,
            ctx.source_id,
            raw.key,
            baseline=ctx.baseline,
            printed=_printed(raw),
        )
        future = self._early(raw, reference) or self._start(raw)  # may replace self.pending
        self.pending.append((raw, listed, future))
        done: list[Done] = []
        # In order, while the workers have `limit` documents to do (those they extracted
        # already, e.g. while the listing ran, do not count: the workers need the next ones
        # meanwhile); waiting for one that is not ready only when they have plenty.
        while (
            self._running() >= self.limit
            or len(self.pending) >= MAX_PENDING
            or (
                len(self.pending) >= self.floor
                and sum(len(raw.content) for raw, _, _ in self.pending) > IN_FLIGHT_BYTES
            )
        ):
            done.extend(await self._next(store, ctx))
        return done

    def _maybe_stored(self, store: Store, ctx: PublishContext, raw: RawDocument) -> bool:
        """Whether `raw`'s document may be stored already, so that its bytes may be too.

        A first fetch of a thousand pages asked the store a thousand times and found nothing
        each time (a store session per page, 5-8 % of this process's CPU). One query of the
        source's keys answers for every document the store did not hold when the run began;
        one this run submitted before may have been published meanwhile, and is asked. The
        source's lock keeps other runs from adding documents to it; anything else that might
        (none does) would cost only an extraction: publishing looks again under its lock."""
        if self.stored_keys is None:
            self.stored_keys = store.document_keys(ctx.source_id)
        first = raw.key not in self.submitted
        self.submitted.add(raw.key)
        return raw.key in self.stored_keys or not first

    def _running(self) -> int:
        return sum(not future.done() for _, _, future in self.pending)

    @property
    def _batch(self) -> Batcher:
        assert self.batch is not None, "the run sets the batch before it submits"
        return self.batch

    async def drain(self, store: Store, ctx: PublishContext) -> list[Done]:
        done: list[Done] = []
        for _ in range(len(self.pending)):
            done.extend(await self._next(store, ctx))
        self._forget_early()  # listed by the listing, never fetched (a broken lock)
        if self.early_used:
            log.debug("%d document(s) extracted while the source listed", self.early_used)
        return done

    async def _next(self, store: Store, ctx: PublishContext) -> list[Done]:
        raw, listed, future = self.pending.pop(0)
        future.add_done_callback(_retrieve)
        try:
            outcome = await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            self._replace_workers()
            return [(raw, None, self._timed_out())]
        except BrokenProcessPool:
            # Every document in flight sees the pool break; run this one again alone, in a
            # pool of its own, to learn whether it is the one that kills its worker.
            self._replace_workers()
            alone = await self._alone(raw)
            if isinstance(alone, TimeoutError):
                return [(raw, None, self._timed_out())]
            if isinstance(alone, Exception):
                return [(raw, None, "extraction worker died on this document (retried next run)")]
            outcome = alone
        if isinstance(outcome, str):  # the extraction's error message
            return await self._batch.add(raw, listed, outcome)
        criteria, text = outcome
        if text is not None:
            remember_text(raw.content, text)
            keep_reference(store, raw.content, text)
        return await self._batch.add(raw, listed, criteria)

    def _timed_out(self) -> str:
        return f"parsing took longer than {self.timeout:g} s; gave up (retried next run)"

    async def _alone(self, raw: RawDocument) -> Extracted | str | Exception:
        pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=worker_context(),
            initializer=limit_worker_memory,
        )
        loop = asyncio.get_running_loop()
        reference = self.references.get(raw.key, ())
        future = loop.run_in_executor(pool, extract_or_error, self.kind.extract, raw, reference)
        future.add_done_callback(_retrieve)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except (BrokenProcessPool, TimeoutError) as exc:
            return exc
        finally:
            end_pool(pool)

    def _replace_workers(self) -> None:
        old = self.pool
        assert old is not None
        # ProcessPoolExecutor cannot cancel a running call; end its processes instead, and let
        # the old pool finish with its pipes before the new one is made (see `end_pool`).
        end_pool(old)
        self.pool = self._new_pool()
        self._forget_early()  # on the old workers: extracted again when their turn comes
        waiting, self.pending = self.pending, []
        for raw, listed, future in waiting:
            _retrieve(future)
            if future.done() and not future.cancelled() and future.exception() is None:
                self.pending.append((raw, listed, future))  # extracted: the result stands
                continue
            future.cancel()
            self.pending.append((raw, listed, self._submit(raw)))


def _printed(raw: RawDocument) -> bool:
    """Whether `raw` has pages (PDF, text) whose running lines its previous version shows."""
    return detect_format(raw.content, raw.content_type) in {"pdf", "text"}


def _finish(
    store: Store,
    config: SourceConfig,
    run_id: int,
    baseline: bool,
    outcome: str,
    counts: RunCounts,
    started: float,
    error: str | None,
    *,
    unverified: int = 0,
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
        unverified=unverified,
    )
    log.info("run finished", extra={"run": summary.line()})
    return summary
