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

from sqlalchemy import select
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
from monitor.store import Store, compress, decompress, utcnow
from sources.base import ListedDocument


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
    extract: Callable[[bytes], Criteria]
    extractor_name: str


def _previous_version(
    session: Session, document_id: int, version_number: int | None
) -> DocumentVersion | None:
    """The version a new one is compared with: the latest stored at or below its number."""
    query = select(DocumentVersion).where(DocumentVersion.document_id == document_id)
    if version_number is not None:
        query = query.where(DocumentVersion.version_number <= version_number).order_by(
            DocumentVersion.version_number.desc(), DocumentVersion.id.desc()
        )
    else:
        query = query.order_by(DocumentVersion.id.desc())
    return session.scalars(query.limit(1)).first()


def _remember_listing(session: Session, source_id: int, listed: ListedDocument) -> None:
    session.merge(
        ListingEntry(
            source_id=source_id,
            key=listed.key,
            source_version=listed.source_version,
            fingerprint=listed.fingerprint,
            last_seen_at=utcnow(),
        )
    )


def publish(
    store: Store, ctx: PublishContext, raw: RawDocument, listed: ListedDocument
) -> PublishResult:
    """Store `raw` as a new version with its criteria and changes, or report it unchanged."""
    sha256 = hashlib.sha256(raw.content).hexdigest()
    try:
        criteria = ctx.extract(raw.content)
    except MonitorError as exc:
        return PublishResult(outcome=Outcome.ERROR, error=str(exc))
    try:
        with store.session() as session:
            return _publish_in(session, ctx, raw, listed, sha256, criteria)
    except MonitorError as exc:
        raise PublishError(raw.key, raw.source_version or "?", str(exc)) from exc


def _publish_in(
    session: Session,
    ctx: PublishContext,
    raw: RawDocument,
    listed: ListedDocument,
    sha256: str,
    criteria: Criteria,
) -> PublishResult:
    now = utcnow()
    document = session.scalar(
        select(Document).where(Document.source_id == ctx.source_id, Document.key == raw.key)
    )
    if document is None:
        document = Document(
            source_id=ctx.source_id,
            key=raw.key,
            doc_type=raw.doc_type,
            title=criteria.title or raw.title,
            url=raw.url,
            first_seen_at=now,
        )
        session.add(document)
        session.flush()
    source_version = raw.source_version or ""
    existing = session.scalar(
        select(DocumentVersion.id).where(
            DocumentVersion.document_id == document.id,
            DocumentVersion.source_version == source_version,
            DocumentVersion.content_sha256 == sha256,
        )
    )
    if existing is not None:
        _remember_listing(session, ctx.source_id, listed)
        return PublishResult(outcome=Outcome.UNCHANGED, version_id=existing)

    previous = _previous_version(session, document.id, listed.version_number)
    old_criteria = None
    if previous is not None:
        stored = session.get_one(CriteriaRow, previous.id)
        old_criteria = criteria_from_json(decompress(stored.data))
    diff = diff_criteria(old_criteria, criteria, today=ctx.today)

    if session.get(Payload, sha256) is None:
        session.add(
            Payload(
                sha256=sha256, size=len(raw.content), compression="zlib", data=compress(raw.content)
            )
        )
        session.flush()  # no ORM relationship orders this insert before the version's
    version = DocumentVersion(
        document_id=document.id,
        source_version=source_version,
        version_number=listed.version_number,
        content_sha256=sha256,
        content_type=raw.content_type,
        title=criteria.title or raw.title,
        status=criteria.status,
        effective_date=criteria.effective_date,
        retirement_date=criteria.retirement_date,
        url=raw.url,
        fetched_at=raw.fetched_at,
        published_at=now,
        run_id=ctx.run_id,
    )
    session.add(version)
    session.flush()
    criteria_json = criteria_to_json(criteria)
    session.add(
        CriteriaRow(
            version_id=version.id,
            extractor=ctx.extractor_name,
            sha256=hashlib.sha256(criteria_json).hexdigest(),
            data=compress(criteria_json),
        )
    )
    for change in diff.changes:
        session.add(
            _change_row(
                change, ctx, document.id, version.id, previous.id if previous else None, now
            )
        )
    document.title = version.title
    document.url = raw.url
    _remember_listing(session, ctx.source_id, listed)
    return PublishResult(
        outcome=Outcome.NEW if previous is None else Outcome.CHANGED,
        version_id=version.id,
        changes=len(diff.changes),
    )


def _change_row(
    change: Change,
    ctx: PublishContext,
    document_id: int,
    version_id: int,
    previous_id: int | None,
    now: dt.datetime,
) -> ChangeRow:
    severity = change.severity
    if ctx.baseline and change.kind is ChangeKind.DOCUMENT_ADDED:
        severity = Severity.LOW  # the baseline lists what exists; nothing is news yet
    return ChangeRow(
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
