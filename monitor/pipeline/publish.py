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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from diffing.diff import diff_criteria
from diffing.mentions import BULLETIN_DOC_TYPE
from diffing.model import Change, ChangeKind, Criteria, PolicyDiff, RawDocument, Severity
from diffing.rules import flatten
from monitor.config import QuarantineConfig
from monitor.errors import MonitorError, PublishError
from monitor.pipeline.guard import assess
from monitor.pipeline.verification import collapse_reason, is_payer, unverified_count, verified
from monitor.store.bulletins import index_bulletin
from monitor.store.checklists import publish_checklists
from monitor.store.core import Store, utcnow
from monitor.store.publishing import (
    ChangeOrigin,
    StoredVersion,
    add_changes,
    add_document,
    add_version,
    failed_in_baseline,
    find_document,
    known_version,
    listed_states,
    load_criteria,
    load_payload,
    lock_change_feed,
    mark_listed_again,
    mark_missing,
    remember_listing,
    store_payload,
    stored_versions,
    update_document,
)
from monitor.store.quarantine import REJECTED, Held, find_open, find_open_for, hold, supersede
from monitor.store.rules import insert_rule_rows
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


def _known_in(versions: list[StoredVersion], source_version: str, sha256: str) -> int | None:
    """`known_version` over versions already loaded."""
    same = [v for v in versions if v.source_version == source_version]
    if not source_version:
        same = [max(same, key=lambda v: v.id)] if same else []
    return next((v.id for v in same if v.content_sha256 == sha256), None)


def already_published(
    store: Store, ctx: PublishContext, raw: RawDocument, listed: ListedDocument
) -> PublishResult | None:
    """UNCHANGED when these bytes are stored for this (document, version) already."""
    sha256 = hashlib.sha256(raw.content).hexdigest()
    with store.session() as txn:
        known = known_version(txn, ctx.source_id, raw, sha256)
        if known is None:
            held = find_open_for(txn, ctx.source_id, raw, sha256)
            return _held_result(txn, ctx, raw, listed, held) if held else None
        remember_listing(txn, ctx.source_id, listed, raw)
        return PublishResult(outcome=Outcome.UNCHANGED, version_id=known)


def _held_result(
    txn: Transaction, ctx: PublishContext, raw: RawDocument, listed: ListedDocument, held: Held
) -> PublishResult:
    """These bytes are quarantined already: pending, still held (no second row); rejected,
    the reviewer's answer stands and they count as unchanged."""
    if held.status == REJECTED:
        remember_listing(txn, ctx.source_id, listed, raw)
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
                known = known_version(txn, ctx.source_id, raw, sha256)
                if known is not None:
                    remember_listing(txn, ctx.source_id, listed, raw)
                    return PublishResult(outcome=Outcome.UNCHANGED, version_id=known)
                held = find_open_for(txn, ctx.source_id, raw, sha256)
                if held is not None:
                    return _held_result(txn, ctx, raw, listed, held)
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
    POLICY_MONITOR_TRACE_HOLD_SECONDS the transaction stays open, rows written, that long."""
    path = os.environ.get("POLICY_MONITOR_TRACE_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as trace:
            line = f"{os.getpid()} {event} {result.outcome} {raw.key} {raw.source_version or '-'}"
            trace.write(line + "\n")
        if event == "uncommitted":
            time.sleep(float(os.environ.get("POLICY_MONITOR_TRACE_HOLD_SECONDS") or 0))


def publish_in_transaction(
    txn: Transaction,
    ctx: PublishContext,
    raw: RawDocument,
    listed: ListedDocument,
    criteria: Criteria,
) -> PublishResult:
    """`publish` of criteria already extracted, inside the caller's transaction (a
    reviewer's approval publishes with its decision)."""
    lock_change_feed(txn)  # first, before any other lock: see lock_change_feed
    sha256 = hashlib.sha256(raw.content).hexdigest()
    now = utcnow()
    title = criteria.title or raw.title
    document = find_document(txn, ctx.source_id, raw.key)
    versions: list[StoredVersion] = []
    if document is None:
        document_id = add_document(txn, ctx.source_id, raw, title=title, first_seen_at=now)
    else:
        document_id = document.id
        versions = stored_versions(txn, document_id)
    source_version = raw.source_version or ""
    known = _known_in(versions, source_version, sha256)  # published meanwhile elsewhere
    if known is not None:
        remember_listing(txn, ctx.source_id, listed, raw)
        return PublishResult(outcome=Outcome.UNCHANGED, version_id=known)
    held = find_open(txn, document_id, source_version, sha256) if versions else None
    if held is not None:
        return _held_result(txn, ctx, raw, listed, held)

    previous = _previous_version(versions, listed.version_number)
    if document is None and not ctx.baseline and failed_in_baseline(txn, ctx.source_id, raw.key):
        # Listed by the baseline but not fetched then (an outage, a fault): its first version
        # is the baseline's late arrival, not news, and is not alerted as a new document.
        ctx = dataclasses.replace(ctx, baseline=True)
    # Sources without version ids (payer sites) number their versions 1, 2, 3 … here.
    version_number = listed.version_number
    if version_number is None:
        version_number = 1 + max((v.version_number or 0 for v in versions), default=0)
    old_criteria = load_criteria(txn, previous.id) if previous is not None else None

    def old_payload() -> tuple[bytes, str]:
        assert previous is not None
        return load_payload(txn, previous.id)

    if previous is not None and old_criteria is not None and is_payer(criteria):
        collapsed = collapse_reason(old_criteria, criteria, raw, old_payload)
        if collapsed is not None:
            # Not a policy change and not for a reviewer: the parser failed on the new layout.
            # The run records it; the next run fetches and extracts it again.
            store_payload(txn, raw, sha256)
            return PublishResult(outcome=Outcome.ERROR, error=collapsed)
    guard = ctx.quarantine if ctx.quarantine is not None and ctx.quarantine.enabled else None
    if previous is not None and old_criteria is not None and guard is not None:
        assessment = assess(old_criteria, criteria, guard)
        if assessment is not None:
            store_payload(txn, raw, sha256)
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
            return PublishResult(
                outcome=Outcome.QUARANTINED,
                error=f"held for review (quarantine #{hold_id}): {assessment.reason}",
            )
    diff = (ctx.diff or diff_criteria)(old_criteria, criteria, today=ctx.today)
    if previous is not None and is_payer(criteria):
        diff = verified(diff, raw, old_payload)
    changes = diff.changes
    if previous is not None and not changes:
        changes = (NOISE_ONLY,)  # new bytes, same criteria and text: kept, never alerted

    store_payload(txn, raw, sha256)
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
    )
    # What the version says, derived in the same transaction: rule rows, PA checklists and,
    # for a bulletin, what it mentions.
    insert_rule_rows(
        txn,
        flatten(criteria),
        version_id=version_id,
        document_id=document_id,
        source_id=ctx.source_id,
        version_number=version_number,
        published_at=now,
    )
    checklist_changes = publish_checklists(
        txn,
        criteria,
        source_id=ctx.source_id,
        document_id=document_id,
        version_id=version_id,
        previous_version_id=previous.id if previous else None,
        published_at=now,
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
    add_changes(txn, [_as_published(change, ctx) for change in changes], origin)
    if document is not None and (document.title, document.url) != (title, raw.url):
        update_document(txn, document_id, title=title, url=raw.url)
    if previous is not None:
        supersede(txn, document_id, listed.version_number)  # held versions it replaces
    remember_listing(txn, ctx.source_id, listed, raw)
    return PublishResult(
        outcome=Outcome.NEW if previous is None else Outcome.CHANGED,
        version_id=version_id,
        changes=len(changes),
        unverified=unverified_count(changes),
    )


def _as_published(change: Change, ctx: PublishContext) -> Change:
    if ctx.baseline and change.kind in (ChangeKind.DOCUMENT_ADDED, ChangeKind.BULLETIN_PUBLISHED):
        # The baseline lists what exists; nothing is news yet.
        return dataclasses.replace(change, severity=Severity.LOW)
    return change


@dataclass(frozen=True, kw_only=True)
class WithdrawalCheck:
    withdrawn: tuple[str, ...] = ()
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
    is counted."""
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
        mark_listed_again(
            txn,
            [
                d.id
                for d in documents
                if d.key in listed_keys and (d.missing_runs or d.withdrawn_at)
            ],
        )
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
                    origin = ChangeOrigin(
                        source_id=ctx.source_id,
                        document_id=document.id,
                        version_id=latest.id,
                        previous_version_id=latest.id,
                        run_id=ctx.run_id,
                        baseline=ctx.baseline,
                        detected_at=now,
                    )
                    add_changes(txn, [_as_published(change, ctx)], origin)
            mark_missing(txn, document.id, missing_runs=missing_runs, withdrawn_at=withdrawn_at)
        return WithdrawalCheck(withdrawn=tuple(withdrawn), missing=len(absent))
