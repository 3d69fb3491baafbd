"""Publish one fetched document version: version, criteria and changes in ONE transaction.

Idempotent: bytes already stored for that (document, source version) publish nothing. The
store never updates a published version; a new payload always becomes a new version row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from diffing.diff import diff_criteria
from diffing.model import Change, ChangeKind, Criteria, PolicyDiff, RawDocument, Severity
from diffing.rules import flatten
from diffing.serialize import criteria_from_json, criteria_to_json
from monitor.config import QuarantineConfig
from monitor.errors import MonitorError, PublishError
from monitor.pipeline.quarantine import (
    REJECTED,
    Held,
    assess,
    find_open,
    find_open_for,
    hold,
    supersede,
)
from monitor.store.checklists import publish_checklists
from monitor.store.core import Store, compress, decompress, utcnow
from monitor.store.models.core import (
    ChangeRow,
    CriteriaRow,
    Document,
    DocumentVersion,
    ListingEntry,
    Payload,
    RunError,
    SourceRun,
)
from monitor.store.outbox import enqueue_changes
from monitor.store.rules import insert_rule_rows
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


@dataclass(frozen=True, slots=True)
class _StoredVersion:
    id: int
    source_version: str
    version_number: int | None
    content_sha256: str


def _stored_versions(session: Session, document_id: int) -> list[_StoredVersion]:
    rows = session.execute(
        select(
            DocumentVersion.id,
            DocumentVersion.source_version,
            DocumentVersion.version_number,
            DocumentVersion.content_sha256,
        ).where(DocumentVersion.document_id == document_id)
    )
    return [_StoredVersion(*row) for row in rows]


def _previous_version(
    versions: list[_StoredVersion], version_number: int | None
) -> _StoredVersion | None:
    """The version a new one is compared with: the latest stored at or below its number."""
    if version_number is not None:
        candidates = [
            v
            for v in versions
            if v.version_number is not None and v.version_number <= version_number
        ]
        return max(candidates, key=lambda v: (v.version_number or 0, v.id), default=None)
    return max(versions, key=lambda v: v.id, default=None)


def _insert_ignoring_duplicates(
    session: Session,
    model: type,
    values: dict[str, object],
    keys: list[str],
    update: list[str] | None = None,
) -> None:
    """INSERT … ON CONFLICT DO NOTHING (or DO UPDATE of `update`) on SQLite and PostgreSQL."""
    statement = _upsert_statement(
        session.get_bind().dialect.name, model, tuple(values), tuple(keys), tuple(update or ())
    )
    session.execute(statement, values)


@functools.lru_cache(maxsize=64)
def _upsert_statement(
    dialect: str,
    model: type,
    columns: tuple[str, ...],
    keys: tuple[str, ...],
    update: tuple[str, ...],
) -> Any:
    """Built once per shape, values bound at execution: SQLAlchemy does not cache the
    compiled form of an ON CONFLICT insert built with literal values, and compiling it twice
    per published version was a tenth of a full CMS baseline (bench/cms_full_scale.py)."""
    insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
    table = model.__table__  # type: ignore[attr-defined]
    statement = insert_(table).values({name: bindparam(name) for name in columns})
    if update:
        return statement.on_conflict_do_update(
            index_elements=list(keys), set_={name: statement.excluded[name] for name in update}
        )
    return statement.on_conflict_do_nothing(index_elements=list(keys))


def _remember_listing(
    session: Session, source_id: int, listed: ListedDocument, raw: RawDocument
) -> None:
    """What the listing said, and the validators for the next conditional GET."""
    _insert_ignoring_duplicates(
        session,
        ListingEntry,
        {
            "source_id": source_id,
            "key": listed.key,
            "source_version": listed.source_version,
            "fingerprint": listed.fingerprint,
            "last_seen_at": utcnow(),
            "etag": raw.etag,
            "last_modified": raw.meta("last_modified"),
        },
        keys=["source_id", "key", "source_version"],
        update=["fingerprint", "last_seen_at", "etag", "last_modified"],
    )


def already_published(
    store: Store, ctx: PublishContext, raw: RawDocument, listed: ListedDocument
) -> PublishResult | None:
    """UNCHANGED when these bytes are stored for this (document, version) already."""
    sha256 = hashlib.sha256(raw.content).hexdigest()
    with store.session() as session:
        known = _known_version(session, ctx.source_id, raw, sha256)
        if known is None:
            held = find_open_for(session, ctx.source_id, raw, sha256)
            return _held_result(session, ctx, raw, listed, held) if held else None
        _remember_listing(session, ctx.source_id, listed, raw)
        return PublishResult(outcome=Outcome.UNCHANGED, version_id=known)


def _held_result(
    session: Session, ctx: PublishContext, raw: RawDocument, listed: ListedDocument, held: Held
) -> PublishResult:
    """These bytes are quarantined already: pending, still held (no second row); rejected,
    the reviewer's answer stands and they count as unchanged."""
    if held.status == REJECTED:
        _remember_listing(session, ctx.source_id, listed, raw)
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
) -> PublishResult:
    """Store `raw` as a new version with its criteria and changes, or report it unchanged.

    Bytes already stored for this (document, source version) are recognised by sha256 before
    anything is parsed, so an unchanged document costs one query.
    """
    sha256 = hashlib.sha256(raw.content).hexdigest()
    try:
        with store.session() as session:
            known = _known_version(session, ctx.source_id, raw, sha256)
            if known is not None:
                _remember_listing(session, ctx.source_id, listed, raw)
                return PublishResult(outcome=Outcome.UNCHANGED, version_id=known)
            held = find_open_for(session, ctx.source_id, raw, sha256)
            if held is not None:
                return _held_result(session, ctx, raw, listed, held)
        if criteria is None:
            try:
                criteria = ctx.extract(raw)
            except MonitorError as exc:
                return PublishResult(outcome=Outcome.ERROR, error=str(exc))
        with store.session() as session:
            return _publish_in(session, ctx, raw, listed, sha256, criteria)
    except MonitorError as exc:
        raise PublishError(raw.key, raw.source_version or "?", str(exc)) from exc


def _known_version(session: Session, source_id: int, raw: RawDocument, sha256: str) -> int | None:
    """The stored version these bytes already are, or None.

    A source's version id (CMS) names a version for good: bytes stored for that (document,
    version) are known whatever was published after them. A document without version ids (a
    payer page) is known only when its *latest* version has these bytes: returning to older
    bytes is a revert, which is a change like any other.
    """
    query = (
        select(DocumentVersion.id, DocumentVersion.content_sha256)
        .join(Document, DocumentVersion.document_id == Document.id)
        .where(
            Document.source_id == source_id,
            Document.key == raw.key,
            DocumentVersion.source_version == (raw.source_version or ""),
        )
    )
    if raw.source_version:
        return session.scalar(query.where(DocumentVersion.content_sha256 == sha256).limit(1))
    latest = session.execute(query.order_by(DocumentVersion.id.desc()).limit(1)).first()
    return latest.id if latest is not None and latest.content_sha256 == sha256 else None


def _known_in(versions: list[_StoredVersion], source_version: str, sha256: str) -> int | None:
    """`_known_version` over versions already loaded."""
    same = [v for v in versions if v.source_version == source_version]
    if not source_version:
        same = [max(same, key=lambda v: v.id)] if same else []
    return next((v.id for v in same if v.content_sha256 == sha256), None)


def _publish_in(
    session: Session,
    ctx: PublishContext,
    raw: RawDocument,
    listed: ListedDocument,
    sha256: str,
    criteria: Criteria,
) -> PublishResult:
    lock_change_feed(session)  # first, before any other lock: see lock_change_feed
    now = utcnow()
    title = criteria.title or raw.title
    document = session.execute(
        select(Document.id, Document.title, Document.url).where(
            Document.source_id == ctx.source_id, Document.key == raw.key
        )
    ).first()
    versions: list[_StoredVersion] = []
    if document is None:
        document_id = session.execute(
            insert(Document)
            .values(
                source_id=ctx.source_id,
                key=raw.key,
                doc_type=raw.doc_type,
                title=title,
                url=raw.url,
                first_seen_at=now,
            )
            .returning(Document.id)
        ).scalar_one()
    else:
        document_id = document.id
        versions = _stored_versions(session, document_id)
    source_version = raw.source_version or ""
    known = _known_in(versions, source_version, sha256)  # published meanwhile elsewhere
    if known is not None:
        _remember_listing(session, ctx.source_id, listed, raw)
        return PublishResult(outcome=Outcome.UNCHANGED, version_id=known)
    held = find_open(session, document_id, source_version, sha256) if versions else None
    if held is not None:
        return _held_result(session, ctx, raw, listed, held)

    previous = _previous_version(versions, listed.version_number)
    if document is None and not ctx.baseline and _failed_in_baseline(session, ctx, raw.key):
        # Listed by the baseline but not fetched then (an outage, a fault): its first version
        # is the baseline's late arrival, not news, and is not alerted as a new document.
        ctx = dataclasses.replace(ctx, baseline=True)
    # Sources without version ids (payer sites) number their versions 1, 2, 3 … here.
    version_number = listed.version_number
    if version_number is None:
        version_number = 1 + max((v.version_number or 0 for v in versions), default=0)
    old_criteria = None
    if previous is not None:
        stored_criteria = session.get_one(CriteriaRow, previous.id)
        old_criteria = criteria_from_json(decompress(stored_criteria.data))
    guard = ctx.quarantine if ctx.quarantine is not None and ctx.quarantine.enabled else None
    if previous is not None and old_criteria is not None and guard is not None:
        assessment = assess(old_criteria, criteria, guard)
        if assessment is not None:
            _store_payload(session, raw, sha256)
            hold_id = hold(
                session,
                ctx,
                raw,
                listed,
                sha256,
                criteria,
                document_id=document_id,
                previous_version_id=previous.id,
                assessment=assessment,
            )
            return PublishResult(
                outcome=Outcome.QUARANTINED,
                error=f"held for review (quarantine #{hold_id}): {assessment.reason}",
            )
    diff = (ctx.diff or diff_criteria)(old_criteria, criteria, today=ctx.today)
    changes = diff.changes
    if previous is not None and not changes:
        changes = (NOISE_ONLY,)  # new bytes, same criteria and text: kept, never alerted

    # Core statements, not the unit of work: a baseline publishes thousands of versions.
    _store_payload(session, raw, sha256)
    version_id = session.execute(
        insert(DocumentVersion)
        .values(
            document_id=document_id,
            source_version=source_version,
            version_number=version_number,
            content_sha256=sha256,
            content_type=raw.content_type,
            title=title,
            status=criteria.status,
            effective_date=criteria.effective_date,
            retirement_date=criteria.retirement_date,
            url=raw.url,
            fetched_at=raw.fetched_at,
            published_at=now,
            run_id=ctx.run_id,
        )
        .returning(DocumentVersion.id)
    ).scalar_one()
    criteria_json = criteria_to_json(criteria)
    session.execute(
        insert(CriteriaRow).values(
            version_id=version_id,
            extractor=ctx.extractor_name,
            sha256=hashlib.sha256(criteria_json).hexdigest(),
            data=compress(criteria_json),
        )
    )
    # Rule rows and PA checklists of this version, in the same transaction (issue 5).
    insert_rule_rows(
        session,
        flatten(criteria),
        version_id=version_id,
        document_id=document_id,
        source_id=ctx.source_id,
        version_number=version_number,
        published_at=now,
    )
    checklist_changes = publish_checklists(
        session,
        criteria,
        source_id=ctx.source_id,
        document_id=document_id,
        version_id=version_id,
        previous_version_id=previous.id if previous else None,
        published_at=now,
    )
    changes = (*changes, *checklist_changes)
    _insert_changes(
        session,
        [
            _change_values(
                change, ctx, document_id, version_id, previous.id if previous else None, now
            )
            for change in changes
        ],
    )
    if document is not None and (document.title, document.url) != (title, raw.url):
        session.execute(
            update(Document).where(Document.id == document_id).values(title=title, url=raw.url)
        )
    if previous is not None:
        supersede(session, document_id, listed.version_number)  # held versions it replaces
    _remember_listing(session, ctx.source_id, listed, raw)
    return PublishResult(
        outcome=Outcome.NEW if previous is None else Outcome.CHANGED,
        version_id=version_id,
        changes=len(changes),
    )


def _store_payload(session: Session, raw: RawDocument, sha256: str) -> None:
    """The fetched bytes, content-addressed (stored once however many rows refer to them)."""
    _insert_ignoring_duplicates(
        session,
        Payload,
        {
            "sha256": sha256,
            "size": len(raw.content),
            "compression": "zlib",
            "data": compress(raw.content),
        },
        keys=["sha256"],
    )


# The change feed's advisory lock key: a fixed signed 64-bit integer (blake2b of a name, like
# the per-source keys of monitor.store.locks, in another namespace).
CHANGE_FEED_LOCK = int.from_bytes(
    hashlib.blake2b(b"policy-monitor:change-feed", digest_size=8).digest(), "big", signed=True
)


def lock_change_feed(session: Session) -> None:
    """Serialize the transactions that insert changes, so change ids become visible in order.

    The API's change feed hands pollers a cursor: the last change id they saw. That is only
    safe if no id below the cursor can appear later. On PostgreSQL a sequence hands out ids at
    INSERT time, but transactions commit in any order: A takes id 10, B takes 11 and commits,
    a poller reads 11 and moves its cursor past 10, then A commits and 10 is never seen. A
    transaction-scoped advisory lock (``pg_advisory_xact_lock``, released by COMMIT or
    ROLLBACK, so a killed process cannot leave it held) taken before any change id is drawn
    means the next transaction draws its ids only after the previous one has committed. A
    rolled-back transaction leaves a gap no poller ever saw, which is harmless.

    Take it as the first statement of the transaction: a transaction holding row locks while
    it waits here could deadlock with the holder. SQLite needs nothing: it has one writer at a
    time and rowids are drawn inside the write transaction.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHANGE_FEED_LOCK})


def _failed_in_baseline(session: Session, ctx: PublishContext, key: str) -> bool:
    """Did a baseline run of this source record an error for document `key`?"""
    return (
        session.scalar(
            select(RunError.id)
            .join(SourceRun, RunError.run_id == SourceRun.id)
            .where(
                SourceRun.source_id == ctx.source_id,
                SourceRun.baseline.is_(True),
                RunError.document_key == key,
            )
            .limit(1)
        )
        is not None
    )


def _insert_changes(session: Session, rows: list[dict[str, object]]) -> list[int]:
    """Insert change rows and, in the same transaction, the outbox rows announcing them."""
    if not rows:
        return []
    # Normally held already (publish paths take it first); re-taking a held lock is a no-op,
    # and a path that forgot it is still kept in order here.
    lock_change_feed(session)
    change_ids = list(session.scalars(insert(ChangeRow).returning(ChangeRow.id), rows))
    enqueue_changes(session, change_ids)
    return change_ids


def _change_values(
    change: Change,
    ctx: PublishContext,
    document_id: int,
    version_id: int,
    previous_id: int | None,
    now: dt.datetime,
) -> dict[str, object]:
    severity = change.severity
    if ctx.baseline and change.kind in (ChangeKind.DOCUMENT_ADDED, ChangeKind.BULLETIN_PUBLISHED):
        severity = Severity.LOW  # the baseline lists what exists; nothing is news yet
    return dict(
        source_id=ctx.source_id,
        document_id=document_id,
        version_id=version_id,
        previous_version_id=previous_id,
        run_id=ctx.run_id,
        kind=change.kind.value,
        field=change.field,
        before=change.before,
        after=change.after,
        severity=severity.value,
        evidence=change.evidence,
        effective_date=change.effective_date,
        detected_at=now,
        baseline=ctx.baseline,
    )


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
    after_runs: int = 2,
    max_missing_share: float = 0.2,
) -> WithdrawalCheck:
    """Count complete listings a stored document was missing from; report it withdrawn at
    `after_runs` (so one flaky index page does not withdraw anything). A listing that lost more
    than `max_missing_share` of the documents at once is not believed: nothing is counted."""
    now = utcnow()
    with store.session() as session:
        lock_change_feed(session)
        documents = session.execute(
            select(Document.id, Document.key, Document.missing_runs, Document.withdrawn_at).where(
                Document.source_id == ctx.source_id
            )
        ).all()
        active = [d for d in documents if d.withdrawn_at is None]
        absent = [d for d in active if d.key not in listed_keys]
        if len(active) >= 5 and len(absent) > max_missing_share * len(active):
            return WithdrawalCheck(
                missing=len(absent),
                skipped=f"{len(absent)} of {len(active)} documents missing from the listing at "
                f"once; not believed, nothing counted as withdrawn",
            )
        returned = [
            d.id for d in documents if d.key in listed_keys and (d.missing_runs or d.withdrawn_at)
        ]
        if returned:
            session.execute(
                update(Document)
                .where(Document.id.in_(returned))
                .values(missing_runs=0, withdrawn_at=None)
            )
        withdrawn: list[str] = []
        for document in absent:
            missing_runs = document.missing_runs + 1
            values: dict[str, object] = {"missing_runs": missing_runs}
            if missing_runs >= after_runs:
                values["withdrawn_at"] = now
                withdrawn.append(document.key)
                latest = _previous_version(_stored_versions(session, document.id), None)
                if latest is not None:
                    change = Change(
                        kind=ChangeKind.DOCUMENT_WITHDRAWN,
                        severity=Severity.MEDIUM,
                        before=latest.source_version or None,
                        evidence=f"no longer listed by the source ({missing_runs} runs in a row)",
                    )
                    _insert_changes(
                        session,
                        [_change_values(change, ctx, document.id, latest.id, latest.id, now)],
                    )
            session.execute(update(Document).where(Document.id == document.id).values(**values))
        return WithdrawalCheck(withdrawn=tuple(withdrawn), missing=len(absent))
