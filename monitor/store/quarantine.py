"""Quarantined versions in the store: holding one inside the publishing transaction, finding
the open row for some bytes, closing rows a later version supersedes, listing them, and
recording a reviewer's decision. Whether to hold, and what approval publishes, is decided by
`monitor.pipeline` (the guard and the review).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import Select, or_, select, update

from diffing.model import Criteria, RawDocument
from diffing.serialize import criteria_from_json, criteria_to_json
from monitor.errors import MonitorError
from monitor.store.core import Store, compress, decompress, utcnow
from monitor.store.limits import MAX_LIST_ROWS, bounded
from monitor.store.models.core import Document, Payload, SourceRow
from monitor.store.models.quarantine import (
    APPROVED,
    OPEN_STATUSES,
    PENDING,
    REJECTED,
    STATUSES,
    SUPERSEDED,
    QuarantinedVersion,
)
from monitor.store.types import Transaction
from sources.base import ListedDocument

__all__ = [
    "APPROVED",
    "PENDING",
    "REJECTED",
    "STATUSES",
    "SUPERSEDED",
    "Held",
    "HeldVersion",
    "QuarantineDecided",
    "QuarantineError",
    "QuarantineNotFound",
    "QuarantineRecord",
    "claim",
    "find_open",
    "find_open_for",
    "get_quarantined",
    "held_criteria",
    "hold",
    "list_quarantined",
    "load_held",
    "mark_alerted",
    "record_published",
    "supersede",
    "unalerted",
]


class QuarantineError(MonitorError):
    """A quarantine decision could not be made."""


class QuarantineNotFound(QuarantineError):
    def __init__(self, hold_id: int) -> None:
        self.hold_id = hold_id
        super().__init__(f"no quarantined version #{hold_id}")


class QuarantineDecided(QuarantineError):
    def __init__(self, hold_id: int, status: str) -> None:
        self.hold_id = hold_id
        self.status = status
        super().__init__(f"quarantined version #{hold_id} is {status} already; only pending ones")


# -- inside the publishing transaction ----------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Held:
    """An open quarantine row (pending or rejected) for some bytes of a document."""

    id: int
    status: str
    reason: str


def find_open(txn: Transaction, document_id: int, source_version: str, sha256: str) -> Held | None:
    row = txn.execute(
        select(QuarantinedVersion.id, QuarantinedVersion.status, QuarantinedVersion.reason).where(
            QuarantinedVersion.document_id == document_id,
            QuarantinedVersion.source_version == source_version,
            QuarantinedVersion.content_sha256 == sha256,
            QuarantinedVersion.status.in_(OPEN_STATUSES),
        )
    ).first()
    return Held(id=row.id, status=row.status, reason=row.reason) if row is not None else None


def find_open_for(txn: Transaction, source_id: int, raw: RawDocument, sha256: str) -> Held | None:
    """`find_open` by the document's source and key (before its id is known)."""
    document_id = txn.scalar(
        select(Document.id).where(Document.source_id == source_id, Document.key == raw.key)
    )
    if document_id is None:
        return None
    return find_open(txn, document_id, raw.source_version or "", sha256)


def hold(
    txn: Transaction,
    raw: RawDocument,
    listed: ListedDocument,
    criteria: Criteria,
    *,
    sha256: str,
    source_id: int,
    run_id: int,
    baseline: bool,
    extractor: str,
    document_id: int,
    previous_version_id: int,
    reason: str,
    old_codes: int,
    dropped_codes: int,
    old_items: int,
    dropped_items: int,
) -> int:
    """Write the quarantine row (the payload is stored by the caller); returns its id."""
    row = QuarantinedVersion(
        source_id=source_id,
        document_id=document_id,
        run_id=run_id,
        baseline=baseline,
        source_version=raw.source_version or "",
        version_number=listed.version_number,
        content_sha256=sha256,
        content_type=raw.content_type,
        url=raw.url,
        title=criteria.title or raw.title,
        doc_type=raw.doc_type,
        fetched_at=raw.fetched_at,
        etag=raw.etag,
        source_meta=json.dumps([list(pair) for pair in raw.source_meta]),
        fingerprint=listed.fingerprint,
        extractor=extractor,
        criteria=compress(criteria_to_json(criteria)),
        previous_version_id=previous_version_id,
        reason=reason,
        old_codes=old_codes,
        dropped_codes=dropped_codes,
        old_items=old_items,
        dropped_items=dropped_items,
        detected_at=utcnow(),
        status=PENDING,
    )
    txn.add(row)
    txn.flush()
    return row.id


def supersede(txn: Transaction, document_id: int, version_number: int | None) -> None:
    """A version of the document was published: pending rows it replaces are closed. With
    version numbers (CMS) those at or below it; without (payer pages) every pending one."""
    condition = [
        QuarantinedVersion.document_id == document_id,
        QuarantinedVersion.status == PENDING,
    ]
    if version_number is not None:
        condition.append(
            or_(
                QuarantinedVersion.version_number.is_(None),
                QuarantinedVersion.version_number <= version_number,
            )
        )
    txn.execute(
        update(QuarantinedVersion)
        .where(*condition)
        .values(
            status=SUPERSEDED,
            decided_at=utcnow(),
            note="a later version of the document was published",
        )
    )


# -- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class QuarantineRecord:
    """A quarantined version as the CLI, the API and the operators' email show it."""

    id: int
    source: str
    document: str
    title: str
    url: str
    source_version: str
    version_number: int | None
    content_sha256: str
    reason: str
    old_codes: int
    dropped_codes: int
    old_items: int
    dropped_items: int
    detected_at: dt.datetime
    status: str
    reviewer: str | None
    note: str | None
    decided_at: dt.datetime | None
    version_id: int | None
    previous_version_id: int | None
    run_id: int


def _query() -> Select[tuple[QuarantinedVersion, str, str]]:
    return (
        select(QuarantinedVersion, SourceRow.name, Document.key)
        .join(SourceRow, QuarantinedVersion.source_id == SourceRow.id)
        .join(Document, QuarantinedVersion.document_id == Document.id)
        .order_by(QuarantinedVersion.id)
    )


def _record(row: QuarantinedVersion, source: str, key: str) -> QuarantineRecord:
    return QuarantineRecord(
        id=row.id,
        source=source,
        document=key,
        title=row.title,
        url=row.url,
        source_version=row.source_version,
        version_number=row.version_number,
        content_sha256=row.content_sha256,
        reason=row.reason,
        old_codes=row.old_codes,
        dropped_codes=row.dropped_codes,
        old_items=row.old_items,
        dropped_items=row.dropped_items,
        detected_at=row.detected_at,
        status=row.status,
        reviewer=row.reviewer,
        note=row.note,
        decided_at=row.decided_at,
        version_id=row.version_id,
        previous_version_id=row.previous_version_id,
        run_id=row.run_id,
    )


def list_quarantined(
    store: Store, *, status: str | None = None, after: int = 0, limit: int = MAX_LIST_ROWS
) -> list[QuarantineRecord]:
    """Quarantined versions in id order, optionally of one status: the first `limit` (at most
    `MAX_LIST_ROWS`) with an id above `after`."""
    if status is not None and status not in STATUSES:
        raise QuarantineError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    query = _query().where(QuarantinedVersion.id > after).limit(bounded(limit))
    if status is not None:
        query = query.where(QuarantinedVersion.status == status)
    with store.session() as txn:
        return [_record(row, source, key) for row, source, key in txn.execute(query)]


def get_quarantined(store: Store, hold_id: int) -> QuarantineRecord:
    with store.session() as txn:
        found = txn.execute(_query().where(QuarantinedVersion.id == hold_id)).first()
    if found is None:
        raise QuarantineNotFound(hold_id)
    return _record(*found)


def held_criteria(store: Store, hold_id: int) -> Criteria:
    """What was extracted from the held version (for `show`)."""
    with store.session() as txn:
        row = txn.get(QuarantinedVersion, hold_id)
        if row is None:
            raise QuarantineNotFound(hold_id)
        return criteria_from_json(decompress(row.criteria))


# -- deciding ---------------------------------------------------------------------------------


def claim(txn: Transaction, hold_id: int, status: str, *, reviewer: str, note: str) -> None:
    """Move a pending row to `status` (compare-and-set: one decision wins)."""
    decided = txn.execute(
        update(QuarantinedVersion)
        .where(QuarantinedVersion.id == hold_id, QuarantinedVersion.status == PENDING)
        .values(status=status, reviewer=reviewer, note=note or None, decided_at=utcnow())
    )
    if decided.rowcount != 1:  # type: ignore[attr-defined]
        current = txn.scalar(
            select(QuarantinedVersion.status).where(QuarantinedVersion.id == hold_id)
        )
        if current is None:
            raise QuarantineNotFound(hold_id)
        raise QuarantineDecided(hold_id, current)


@dataclass(frozen=True, kw_only=True)
class HeldVersion:
    """A held version as it was fetched, listed and extracted: enough to publish it later
    without fetching it again."""

    raw: RawDocument
    listed: ListedDocument
    criteria: Criteria
    source_id: int
    source_kind: str
    run_id: int
    baseline: bool
    extractor: str


def load_held(txn: Transaction, hold_id: int) -> HeldVersion:
    row = txn.get_one(QuarantinedVersion, hold_id)
    source = txn.get_one(SourceRow, row.source_id)
    key = txn.get_one(Document, row.document_id).key
    payload = txn.get_one(Payload, row.content_sha256)
    raw = RawDocument(
        source=source.name,
        key=key,
        url=row.url,
        content=decompress(payload.data),
        content_type=row.content_type,
        fetched_at=row.fetched_at,
        source_version=row.source_version or None,
        etag=row.etag,
        title=row.title,
        doc_type=row.doc_type,
        source_meta=tuple((name, value) for name, value in json.loads(row.source_meta)),
    )
    listed = ListedDocument(
        key=key,
        source_version=row.source_version,
        version_number=row.version_number,
        fingerprint=row.fingerprint,
        doc_type=row.doc_type,
        title=row.title,
        url=row.url,
    )
    return HeldVersion(
        raw=raw,
        listed=listed,
        criteria=criteria_from_json(decompress(row.criteria)),
        source_id=row.source_id,
        source_kind=source.kind,
        run_id=row.run_id,
        baseline=row.baseline,
        extractor=row.extractor,
    )


def record_published(txn: Transaction, hold_id: int, version_id: int | None) -> None:
    """The version an approved row became."""
    txn.execute(
        update(QuarantinedVersion)
        .where(QuarantinedVersion.id == hold_id)
        .values(version_id=version_id)
    )


# -- the operators' alert -------------------------------------------------------------------


def unalerted(store: Store) -> list[QuarantineRecord]:
    """Pending rows whose operators' email has not been written yet."""
    query = _query().where(
        QuarantinedVersion.status == PENDING, QuarantinedVersion.alerted_at.is_(None)
    )
    with store.session() as txn:
        return [_record(row, source, key) for row, source, key in txn.execute(query)]


def mark_alerted(store: Store, hold_id: int, *, now: dt.datetime) -> None:
    with store.session() as txn:
        txn.execute(
            update(QuarantinedVersion)
            .where(QuarantinedVersion.id == hold_id, QuarantinedVersion.alerted_at.is_(None))
            .values(alerted_at=now)
        )
