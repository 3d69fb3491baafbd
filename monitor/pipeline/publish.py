"""Publish one fetched document version: version, criteria and changes in ONE transaction.

Idempotent: bytes already stored for that (document, source version) publish nothing. The
store never updates a published version; a new payload always becomes a new version row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from diffing.diff import diff_criteria
from diffing.mentions import BULLETIN_DOC_TYPE
from diffing.model import Change, ChangeKind, Criteria, PolicyDiff, RawDocument, Severity
from diffing.parse import PARSER_VERSION
from monitor.config import QuarantineConfig
from monitor.errors import MonitorError, PublishError
from monitor.pipeline.guard import assess
from monitor.pipeline.verification import (
    collapse_reason,
    known_text,
    unverified_count,
    verified,
)
from monitor.pipeline.worker import is_payer
from monitor.store.bulletins import index_bulletin
from monitor.store.checklists import publish_checklists
from monitor.store.core import Store, utcnow
from monitor.store.publishing import (
    BatchState,
    ChangeOrigin,
    DeferredWrites,
    StoredDocument,
    StoredVersion,
    add_changes,
    add_document,
    add_version,
    change_rows,
    failed_in_baseline,
    find_document,
    known_in,
    listed_states,
    listing_row,
    load_batch_state,
    load_criteria,
    load_payload,
    load_payload_text,
    lock_change_feed,
    mark_listed_again,
    mark_missing,
    remember_listing,
    store_payload,
    stored_as,
    stored_versions,
    update_document,
)
from monitor.store.quarantine import (
    PENDING,
    REJECTED,
    Held,
    find_open,
    hold,
    supersede,
)
from monitor.store.rules import criteria_rule_parts, insert_rule_values
from monitor.store.types import Transaction
from sources.base import ListedDocument

NOISE_ONLY = Change(
    kind=ChangeKind.NOISE_ONLY,
    severity=Severity.NOISE,
    evidence="new bytes, but the criteria and the text are the same (stamps, layout, ids)",
)


class Outcome(StrEnum):
    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    ERROR = "error"
    QUARANTINED = (
        "quarantined"  # held for a reviewer (monitor.pipeline.quarantine); `error` says why
    )


@dataclass(frozen=True, kw_only=True)
class PublishResult:
    outcome: Outcome
    version_id: int | None = None
    changes: int = 0
    unverified: int = 0  # of `changes`, claims the texts contradict (stored, never alerted)
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class PublishContext:
    source_id: int
    run_id: int
    baseline: bool
    today: dt.date
    extract: Callable[[RawDocument], Criteria]
    extractor_name: str
    diff: Callable[..., PolicyDiff] | None = None  # the source kind's own; else diff_criteria
    # The guard against versions that look broken; None publishes whatever comes (approval).
    quarantine: QuarantineConfig | None = None


def _previous_version(
    versions: list[StoredVersion], version_number: int | None
) -> StoredVersion | None:
    """The version a new one is compared with: the latest stored at or below its number."""
    if version_number is not None:
        candidates = [
            v
            for v in versions
            if v.version_number is not None and v.version_number <= version_number
        ]
        return max(candidates, key=lambda v: (v.version_number or 0, v.id), default=None)
    return max(versions, key=lambda v: v.id, default=None)


def already_published(
    store: Store, ctx: PublishContext, raw: RawDocument, listed: ListedDocument
) -> PublishResult | None:
    """UNCHANGED when these bytes are stored for this (document, version) already."""
    sha256 = hashlib.sha256(raw.content).hexdigest()
    with store.session() as txn:
        return _stored_result(txn, ctx, raw, listed, sha256)


def _stored_result(
    txn: Transaction, ctx: PublishContext, raw: RawDocument, listed: ListedDocument, sha256: str
) -> PublishResult | None:
    """UNCHANGED (the listing remembered) when these bytes are stored already, the held
    result when they are quarantined, else None."""
    found = stored_as(txn, ctx.source_id, raw, sha256)
    if found.version_id is not None:
        remember_listing(txn, ctx.source_id, listed, raw)
        return PublishResult(outcome=Outcome.UNCHANGED, version_id=found.version_id)
    if found.document_id is None:  # a new document: nothing of it can be held
        return None
    held = find_open(txn, found.document_id, raw.source_version or "", sha256)
    return _held_result(txn, ctx, raw, listed, held) if held is not None else None


def _held_result(
    txn: Transaction,
    ctx: PublishContext,
    raw: RawDocument,
    listed: ListedDocument,
    held: Held,
    batch: Batch | None = None,
) -> PublishResult:
    """These bytes are quarantined already: pending, still held (no second row); rejected,
    the reviewer's answer stands and they count as unchanged."""
    if held.status == REJECTED:
        _remember(txn, ctx, listed, raw, batch)
        return PublishResult(outcome=Outcome.UNCHANGED)
    return PublishResult(
        outcome=Outcome.QUARANTINED,
        error=f"still held for review (quarantine #{held.id}): {held.reason}",
    )


def publish(
    store: Store,
    ctx: PublishContext,
    raw: RawDocument,
    listed: ListedDocument,
    *,
    criteria: Criteria | None = None,
    checked: bool = False,
) -> PublishResult:
    """Store `raw` as a new version with its criteria and changes, or report it unchanged.

    Bytes already stored for this (document, source version) are recognised by sha256 before
    anything is parsed, so an unchanged document costs one query. `checked`: the caller looked
    them up already (`already_published`, before extracting in a worker), so that query is not
    repeated; the publishing transaction still looks under its lock.
    """
    sha256 = hashlib.sha256(raw.content).hexdigest()
    try:
        if not checked:
            with store.session() as txn:
                stored = _stored_result(txn, ctx, raw, listed, sha256)
            if stored is not None:
                return stored
        if criteria is None:
            try:
                criteria = ctx.extract(raw)
            except MonitorError as exc:
                return PublishResult(outcome=Outcome.ERROR, error=str(exc))
        with store.session() as txn:
            result = publish_in_transaction(txn, ctx, raw, listed, criteria)
            _trace("uncommitted", raw, result)
        _trace("committed", raw, result)
        return result
    except MonitorError as exc:
        raise PublishError(raw.key, raw.source_version or "?", str(exc)) from exc


def _trace(event: str, raw: RawDocument, result: PublishResult) -> None:
    """Test hook, off unless POLICY_MONITOR_TRACE_FILE is set: notes each publishing step so
    tests/test_kill_resume.py can tell where a kill -9 landed; with
    POLICY_MONITOR_TRACE_HOLD_SECONDS the transaction stays open, rows written, that long
    (a batch holds once, after its last version: the whole batch is uncommitted then)."""
    _trace_step(event, raw, result)
    if event == "uncommitted":
        _trace_hold()


def _trace_hold() -> None:
    if os.environ.get("POLICY_MONITOR_TRACE_FILE"):
        time.sleep(float(os.environ.get("POLICY_MONITOR_TRACE_HOLD_SECONDS") or 0))


# One publishing result: the document, what publishing it did, or why it failed (the same
# shape as the runner's).
Published = tuple[RawDocument, PublishResult | None, str | None]


@dataclass(frozen=True, slots=True)
class Pending:
    """A fetched document waiting for its batch: its criteria when a worker extracted them
    already (None: extracted here), or the message of the extraction that failed."""

    raw: RawDocument
    listed: ListedDocument
    criteria: Criteria | str | None = None


def publish_batch(store: Store, ctx: PublishContext, items: Sequence[Pending]) -> list[Published]:
    """Publish `items` in order, all in ONE transaction: the results, in the same order.

    Each version is decided exactly as `publish` decides it alone (the batch's state follows
    what the batch wrote, so a second version of one document compares with the first), but
    lookups are one query per batch and the rows nothing reads back (rule rows, changes,
    listing memory) are written with one statement each at its end. A kill at any point
    rolls back the whole batch; the listing memory is part of it, so the next run fetches
    and publishes every version of it again, once. If the batch fails (a database error,
    anything but a failed extraction), it is rolled back and its documents are published one
    by one with `publish`, so one bad document costs the others nothing.
    """
    results: list[Published | None] = [None] * len(items)
    todo: list[tuple[int, Pending, str]] = []
    for i, item in enumerate(items):
        if isinstance(item.criteria, str):  # the extraction failed in a worker process
            results[i] = (
                item.raw,
                PublishResult(outcome=Outcome.ERROR, error=item.criteria),
                item.criteria,
            )
        else:
            todo.append((i, item, hashlib.sha256(item.raw.content).hexdigest()))
    if todo:
        try:
            for i, done in _publish_together(store, ctx, todo):
                results[i] = done
        except MonitorError:
            # Rolled back, nothing of it stored: one transaction per document, as `publish`.
            for i, item, _sha256 in todo:
                results[i] = _publish_alone(store, ctx, item)
    return [done for done in results if done is not None]


def _publish_alone(store: Store, ctx: PublishContext, item: Pending) -> Published:
    criteria = item.criteria if isinstance(item.criteria, Criteria) else None
    try:
        result = publish(store, ctx, item.raw, item.listed, criteria=criteria)
    except MonitorError as exc:
        return item.raw, None, str(exc)
    return item.raw, result, result.error


def _publish_together(
    store: Store, ctx: PublishContext, todo: Sequence[tuple[int, Pending, str]]
) -> list[tuple[int, Published]]:
    keys = {item.raw.key for _i, item, _sha in todo}
    done: list[tuple[int, Published]] = []
    # 1. What is stored already (or held for review): those bytes are not extracted again.
    with store.session() as txn:
        state = load_batch_state(txn, ctx.source_id, keys, baseline=ctx.baseline)
    new: list[tuple[int, Pending, Criteria | None]] = []
    settled: list[tuple[int, Pending]] = []  # stored or rejected already: listing memory only
    for i, item, sha256 in todo:
        raw, source_version = item.raw, item.raw.source_version or ""
        document = state.documents.get(raw.key)
        versions = state.versions.get(document.id, []) if document is not None else []
        known = known_in(versions, source_version, sha256)
        if known is not None:
            settled.append((i, item))
            done.append(
                (i, (raw, PublishResult(outcome=Outcome.UNCHANGED, version_id=known), None))
            )
            continue
        held = _held_in(state, document.id, source_version, sha256) if document else None
        if held is not None:
            if held.status == REJECTED:
                settled.append((i, item))
                done.append((i, (raw, PublishResult(outcome=Outcome.UNCHANGED), None)))
            else:
                result = PublishResult(
                    outcome=Outcome.QUARANTINED,
                    error=f"still held for review (quarantine #{held.id}): {held.reason}",
                )
                done.append((i, (raw, result, result.error)))
            continue
        criteria = item.criteria
        if criteria is None:
            try:
                criteria = ctx.extract(raw)
            except MonitorError as exc:
                error = PublishResult(outcome=Outcome.ERROR, error=str(exc))
                done.append((i, (raw, error, error.error)))
                continue
        assert isinstance(criteria, Criteria)
        new.append((i, item, criteria))
    # 2. One transaction: lock, look again under the lock, publish in order, write the rest.
    published: list[tuple[int, RawDocument, PublishResult]] = []
    with store.session() as txn:
        lock_change_feed(txn)  # first, before any other lock: see lock_change_feed
        state = load_batch_state(txn, ctx.source_id, keys, baseline=ctx.baseline)
        counted = Counter(item.raw.key for _i, item, _criteria in new)
        batch = Batch(state=state, repeated=frozenset(k for k, n in counted.items() if n > 1))
        for _i, item in settled:
            batch.writes.listings.append(listing_row(ctx.source_id, item.listed, item.raw))
        for n, (i, item, criteria) in enumerate(new):
            new[n] = (i, item, None)  # each version's criteria are let go once it is written
            assert criteria is not None
            result = publish_in_transaction(txn, ctx, item.raw, item.listed, criteria, batch=batch)
            published.append((i, item.raw, result))
            _trace_step("uncommitted", item.raw, result)
        batch.writes.write(txn)
        if published:
            _trace_hold()
    for i, raw, result in published:
        _trace_step("committed", raw, result)
        done.append((i, (raw, result, result.error)))
    return done


def _trace_step(event: str, raw: RawDocument, result: PublishResult) -> None:
    """`_trace` without the hold (a batch holds once, after its last version)."""
    path = os.environ.get("POLICY_MONITOR_TRACE_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as trace:
            line = f"{os.getpid()} {event} {result.outcome} {raw.key} {raw.source_version or '-'}"
            trace.write(line + "\n")


def publish_in_transaction(
    txn: Transaction,
    ctx: PublishContext,
    raw: RawDocument,
    listed: ListedDocument,
    criteria: Criteria,
    *,
    batch: Batch | None = None,
) -> PublishResult:
    """`publish` of criteria already extracted, inside the caller's transaction (a
    reviewer's approval publishes with its decision). With `batch` (`publish_batch`), what
    is stored is looked up in the batch's state, the change feed is locked already, and the
    rows nothing reads back are written at the end of the batch."""
    if batch is None:
        lock_change_feed(txn)  # first, before any other lock: see lock_change_feed
    sha256 = hashlib.sha256(raw.content).hexdigest()
    now = utcnow()
    title = criteria.title or raw.title
    state = batch.state if batch is not None else None
    if state is not None:
        document = state.documents.get(raw.key)
    else:
        document = find_document(txn, ctx.source_id, raw.key)
    versions: list[StoredVersion] = []
    if document is None:
        document_id = add_document(txn, ctx.source_id, raw, title=title, first_seen_at=now)
        if state is not None:
            state.documents[raw.key] = StoredDocument(id=document_id, title=title, url=raw.url)
    else:
        document_id = document.id
        if state is not None:
            versions = list(state.versions.get(document_id, ()))
        else:
            versions = stored_versions(txn, document_id)
    source_version = raw.source_version or ""
    known = known_in(versions, source_version, sha256)  # published meanwhile elsewhere
    if known is not None:
        _remember(txn, ctx, listed, raw, batch)
        return PublishResult(outcome=Outcome.UNCHANGED, version_id=known)
    held = _find_held(txn, document_id, source_version, sha256, state) if versions else None
    if held is not None:
        return _held_result(txn, ctx, raw, listed, held, batch)

    previous = _previous_version(versions, listed.version_number)
    if (
        document is None
        and not ctx.baseline
        and (
            raw.key in state.failed_in_baseline
            if state is not None
            else failed_in_baseline(txn, ctx.source_id, raw.key)
        )
    ):
        # Listed by the baseline but not fetched then (an outage, a fault): its first version
        # is the baseline's late arrival, not news, and is not alerted as a new document.
        ctx = dataclasses.replace(ctx, baseline=True)
    # Sources without version ids (payer sites) number their versions 1, 2, 3 … here.
    version_number = listed.version_number
    if version_number is None:
        version_number = 1 + max((v.version_number or 0 for v in versions), default=0)
    old_criteria: Criteria | None = None
    if previous is not None:
        cached = state.criteria.get(previous.id) if state is not None else None
        old_criteria = cached if cached is not None else load_criteria(txn, previous.id)

    def old_payload() -> tuple[bytes, str]:
        assert previous is not None
        return load_payload(txn, previous.id)

    def old_text() -> str | None:
        assert previous is not None
        return load_payload_text(txn, previous.id, PARSER_VERSION)

    def keep_payload() -> None:
        # With the text the worker parsed the bytes to: the next version is verified against it.
        parsed = known_text(sha256) if is_payer(criteria) else None
        store_payload(txn, raw, sha256, parsed_text=parsed, parser=PARSER_VERSION)

    if previous is not None and old_criteria is not None and is_payer(criteria):
        collapsed = collapse_reason(old_criteria, criteria, raw, old_payload, old_text)
        if collapsed is not None:
            # Not a policy change and not for a reviewer: the parser failed on the new layout.
            # The run records it; the next run fetches and extracts it again.
            keep_payload()
            return PublishResult(outcome=Outcome.ERROR, error=collapsed)
    guard = ctx.quarantine if ctx.quarantine is not None and ctx.quarantine.enabled else None
    if previous is not None and old_criteria is not None and guard is not None:
        assessment = assess(old_criteria, criteria, guard)
        if assessment is not None:
            keep_payload()
            hold_id = hold(
                txn,
                raw,
                listed,
                criteria,
                sha256=sha256,
                source_id=ctx.source_id,
                run_id=ctx.run_id,
                baseline=ctx.baseline,
                extractor=ctx.extractor_name,
                document_id=document_id,
                previous_version_id=previous.id,
                reason=assessment.reason,
                old_codes=assessment.old_codes,
                dropped_codes=assessment.dropped_codes,
                old_items=assessment.old_items,
                dropped_items=assessment.dropped_items,
            )
            if state is not None:
                key = (document_id, source_version, sha256)
                state.held.setdefault(key, (hold_id, PENDING, assessment.reason))
                state.pending_holds.add(document_id)
            return PublishResult(
                outcome=Outcome.QUARANTINED,
                error=f"held for review (quarantine #{hold_id}): {assessment.reason}",
            )
    diff = (ctx.diff or diff_criteria)(old_criteria, criteria, today=ctx.today)
    if previous is not None and is_payer(criteria):
        diff = verified(diff, raw, old_payload, old_text)
    changes = diff.changes
    if previous is not None and not changes:
        changes = (NOISE_ONLY,)  # new bytes, same criteria and text: kept, never alerted

    keep_payload()
    version_id = add_version(
        txn,
        raw,
        criteria,
        document_id=document_id,
        sha256=sha256,
        version_number=version_number,
        title=title,
        extractor=ctx.extractor_name,
        run_id=ctx.run_id,
        published_at=now,
        deferred=batch.writes if batch is not None else None,
    )
    if state is not None:
        stored = StoredVersion(version_id, source_version, version_number, sha256)
        state.versions.setdefault(document_id, []).append(stored)
        if batch is not None and raw.key in batch.repeated:  # compared with later in the batch
            state.criteria[version_id] = criteria
    # What the version says, derived in the same transaction: rule rows, PA checklists and,
    # for a bulletin, what it mentions.
    rules = criteria_rule_parts(
        txn,
        criteria,
        version_id=version_id,
        document_id=document_id,
        source_id=ctx.source_id,
        version_number=version_number,
        published_at=now,
    )
    if batch is not None:
        batch.writes.add_rules(txn, rules)
    else:
        insert_rule_values(txn, rules)
    checklist_changes = publish_checklists(
        txn,
        criteria,
        source_id=ctx.source_id,
        document_id=document_id,
        version_id=version_id,
        previous_version_id=previous.id if previous else None,
        published_at=now,
        new_document=document is None,
        # At the batch's end unless a document comes twice (its second version reads them).
        deferred=batch.writes.checklists if batch is not None and not batch.repeated else None,
    )
    if raw.doc_type == BULLETIN_DOC_TYPE:
        index_bulletin(
            txn, criteria, version_id=version_id, source_id=ctx.source_id, document_id=document_id
        )
    changes = (*changes, *checklist_changes)
    origin = ChangeOrigin(
        source_id=ctx.source_id,
        document_id=document_id,
        version_id=version_id,
        previous_version_id=previous.id if previous else None,
        run_id=ctx.run_id,
        baseline=ctx.baseline,
        detected_at=now,
    )
    published = [_as_published(change, ctx) for change in changes]
    if batch is not None:
        batch.writes.changes.extend(change_rows(published, origin))
    else:
        add_changes(txn, published, origin)
    if document is not None and (document.title, document.url) != (title, raw.url):
        update_document(txn, document_id, title=title, url=raw.url)
        if state is not None:
            state.documents[raw.key] = StoredDocument(id=document_id, title=title, url=raw.url)
    if previous is not None and (state is None or document_id in state.pending_holds):
        supersede(txn, document_id, listed.version_number)  # held versions it replaces
    _remember(txn, ctx, listed, raw, batch)
    return PublishResult(
        outcome=Outcome.NEW if previous is None else Outcome.CHANGED,
        version_id=version_id,
        changes=len(changes),
        unverified=unverified_count(changes),
    )


@dataclass(slots=True)
class Batch:
    """A publishing batch's state and the rows it writes at its end (`publish_batch`)."""

    state: BatchState
    writes: DeferredWrites = dataclasses.field(default_factory=DeferredWrites)
    repeated: frozenset[str] = frozenset()  # keys with more than one version in the batch


def _remember(
    txn: Transaction,
    ctx: PublishContext,
    listed: ListedDocument,
    raw: RawDocument,
    batch: Batch | None,
) -> None:
    if batch is not None:
        batch.writes.listings.append(listing_row(ctx.source_id, listed, raw))
    else:
        remember_listing(txn, ctx.source_id, listed, raw)


def _find_held(
    txn: Transaction, document_id: int, source_version: str, sha256: str, state: BatchState | None
) -> Held | None:
    if state is None:
        return find_open(txn, document_id, source_version, sha256)
    return _held_in(state, document_id, source_version, sha256)


def _held_in(state: BatchState, document_id: int, source_version: str, sha256: str) -> Held | None:
    found = state.held.get((document_id, source_version, sha256))
    if found is None:
        return None
    hold_id, status, reason = found
    return Held(id=hold_id, status=status, reason=reason)


def _as_published(change: Change, ctx: PublishContext) -> Change:
    if ctx.baseline and change.kind in (ChangeKind.DOCUMENT_ADDED, ChangeKind.BULLETIN_PUBLISHED):
        # The baseline lists what exists; nothing is news yet.
        return dataclasses.replace(change, severity=Severity.LOW)
    return change


@dataclass(frozen=True, kw_only=True)
class WithdrawalCheck:
    withdrawn: tuple[str, ...] = ()
    reinstated: tuple[str, ...] = ()  # reported withdrawn before, listed again now
    missing: int = 0
    skipped: str | None = None  # why the check was not applied this run


def publish_withdrawals(
    store: Store,
    ctx: PublishContext,
    listed_keys: set[str],
    *,
    gone: Mapping[str, str] | None = None,
    after_runs: int = 2,
    max_missing_share: float = 0.2,
) -> WithdrawalCheck:
    """Count complete listings a stored document was missing from; report it withdrawn at
    `after_runs` (so one flaky index page does not withdraw anything), or at once when its own
    URL answered 404 or 410 this run (`gone`: key -> "HTTP 410"; issue 13 point 7). A listing
    that lost more than `max_missing_share` of the documents at once is not believed: nothing
    is counted. A document reported withdrawn that the listing names again is reported
    `document_reinstated`, once."""
    gone = gone or {}
    now = utcnow()
    with store.session() as txn:
        lock_change_feed(txn)
        documents = listed_states(txn, ctx.source_id)
        active = [d for d in documents if d.withdrawn_at is None]
        absent = [d for d in active if d.key not in listed_keys]
        if len(active) >= 5 and len(absent) > max_missing_share * len(active):
            return WithdrawalCheck(
                missing=len(absent),
                skipped=f"{len(absent)} of {len(active)} documents missing from the listing at "
                f"once; not believed, nothing counted as withdrawn",
            )
        back = [d for d in documents if d.key in listed_keys and (d.missing_runs or d.withdrawn_at)]
        mark_listed_again(txn, [d.id for d in back])
        reinstated: list[str] = []
        for document in back:
            if document.withdrawn_at is None:
                continue  # missing from a listing or so, never reported withdrawn
            # Reported withdrawn, so it is reported back: whoever stopped following it when it
            # went must learn that it is in force again (its content, if it changed, is
            # compared with its last version as for any document).
            latest = _previous_version(stored_versions(txn, document.id), None)
            if latest is None:
                continue
            reinstated.append(document.key)
            withdrawn_on = document.withdrawn_at.date().isoformat()
            change = Change(
                kind=ChangeKind.DOCUMENT_REINSTATED,
                severity=Severity.MEDIUM,
                after=latest.source_version or None,
                evidence=f"listed by the source again; reported withdrawn on {withdrawn_on}",
            )
            _add_presence_change(txn, ctx, change, document.id, latest.id, now)
        withdrawn: list[str] = []
        for document in absent:
            missing_runs = document.missing_runs + 1
            answered = gone.get(document.key)
            withdrawn_at = now if missing_runs >= after_runs or answered else None
            if withdrawn_at is not None:
                withdrawn.append(document.key)
                latest = _previous_version(stored_versions(txn, document.id), None)
                if latest is not None:
                    change = Change(
                        kind=ChangeKind.DOCUMENT_WITHDRAWN,
                        severity=Severity.MEDIUM,
                        before=latest.source_version or None,
                        evidence=(
                            f"no longer listed by the source, and its URL answers {answered}"
                            if answered
                            else f"no longer listed by the source ({missing_runs} runs in a row)"
                        ),
                    )
                    _add_presence_change(txn, ctx, change, document.id, latest.id, now)
            mark_missing(txn, document.id, missing_runs=missing_runs, withdrawn_at=withdrawn_at)
        return WithdrawalCheck(
            withdrawn=tuple(withdrawn), reinstated=tuple(reinstated), missing=len(absent)
        )


def _add_presence_change(
    txn: Transaction,
    ctx: PublishContext,
    change: Change,
    document_id: int,
    version_id: int,
    now: dt.datetime,
) -> None:
    """A document's withdrawal or reinstatement, recorded against its latest version."""
    origin = ChangeOrigin(
        source_id=ctx.source_id,
        document_id=document_id,
        version_id=version_id,
        previous_version_id=version_id,
        run_id=ctx.run_id,
        baseline=ctx.baseline,
        detected_at=now,
    )
    add_changes(txn, [_as_published(change, ctx)], origin)
