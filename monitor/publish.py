"""Publish one fetched document version: version, criteria and changes in ONE transaction.

Idempotent: bytes already stored for that (document, source version) publish nothing. The
store never updates a published version; a new payload always becomes a new version row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from diffing.diff import diff_criteria
from diffing.model import Change, ChangeKind, Criteria, RawDocument, Severity
from diffing.serialize import criteria_from_json, criteria_to_json
from monitor.errors import MonitorError, PublishError
from monitor.models import (
    ChangeRow,
    CriteriaRow,
    Document,
    DocumentVersion,
    ListingEntry,
    Payload,
)
from monitor.outbox import enqueue_changes
from monitor.store import Store, compress, decompress, utcnow
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
    dialect = session.get_bind().dialect.name
    insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert_(model).values(**values)
    if update:
        statement = statement.on_conflict_do_update(
            index_elements=keys, set_={name: statement.excluded[name] for name in update}
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    session.execute(statement)


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
            return None
        _remember_listing(session, ctx.source_id, listed, raw)
        return PublishResult(outcome=Outcome.UNCHANGED, version_id=known)


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
    return session.scalar(
        select(DocumentVersion.id)
        .join(Document, DocumentVersion.document_id == Document.id)
        .where(
            Document.source_id == source_id,
            Document.key == raw.key,
            DocumentVersion.source_version == (raw.source_version or ""),
            DocumentVersion.content_sha256 == sha256,
        )
    )


def _publish_in(
    session: Session,
    ctx: PublishContext,
    raw: RawDocument,
    listed: ListedDocument,
    sha256: str,
    criteria: Criteria,
) -> PublishResult:
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
    for stored in versions:  # published meanwhile by another process
        if stored.source_version == source_version and stored.content_sha256 == sha256:
            _remember_listing(session, ctx.source_id, listed, raw)
            return PublishResult(outcome=Outcome.UNCHANGED, version_id=stored.id)

    previous = _previous_version(versions, listed.version_number)
    # Sources without version ids (payer sites) number their versions 1, 2, 3 … here.
    version_number = listed.version_number
    if version_number is None:
        version_number = 1 + max((v.version_number or 0 for v in versions), default=0)
    old_criteria = None
    if previous is not None:
        stored_criteria = session.get_one(CriteriaRow, previous.id)
        old_criteria = criteria_from_json(decompress(stored_criteria.data))
    diff = diff_criteria(old_criteria, criteria, today=ctx.today)
    changes = diff.changes
    if previous is not None and not changes:
        changes = (NOISE_ONLY,)  # new bytes, same criteria and text: kept, never alerted

    # Core statements, not the unit of work: a baseline publishes thousands of versions.
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
    _remember_listing(session, ctx.source_id, listed, raw)
    return PublishResult(
        outcome=Outcome.NEW if previous is None else Outcome.CHANGED,
        version_id=version_id,
        changes=len(changes),
    )


def _insert_changes(session: Session, rows: list[dict[str, object]]) -> list[int]:
    """Insert change rows and, in the same transaction, the outbox rows announcing them."""
    if not rows:
        return []
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
    if ctx.baseline and change.kind is ChangeKind.DOCUMENT_ADDED:
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
