"""The quarantine: a new version that drops most of what its predecessor said is held for a
reviewer instead of being published, and published (or not) when the reviewer decides.

Why: a payer site that answers with an error page, or a CMS Article whose code table comes
back nearly empty, still parses; published, it would "detect" that hundreds of codes were
dropped and alert everybody. `assess` is the guard (pure); `pipeline.publish` calls it for every
version that has a predecessor and, when it objects, writes a `QuarantinedVersion` row (with
the payload and the extracted criteria, so approval needs no refetch) instead of a version.

While a row is pending the document stays at its last published version (rules, checklists,
feed unchanged), and the same bytes fetched again find the row rather than writing another.
`approve` publishes the held version through the normal publish path, only without the guard;
`reject` closes it, and the same bytes are then ignored (counted unchanged). A version of the
document published normally later closes the older pending rows as `superseded`: approving
them then would publish stale content over newer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import Session

from diffing.model import Criteria, RawDocument
from diffing.serialize import criteria_from_json, criteria_to_json
from monitor.config import QuarantineConfig
from monitor.errors import MonitorError
from monitor.store.core import Store, compress, decompress, utcnow
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
from sources import SOURCE_KINDS
from sources.base import ListedDocument

if TYPE_CHECKING:
    from monitor.pipeline.publish import PublishContext

__all__ = [
    "APPROVED",
    "PENDING",
    "REJECTED",
    "STATUSES",
    "SUPERSEDED",
    "Assessment",
    "Held",
    "QuarantineDecided",
    "QuarantineError",
    "QuarantineNotFound",
    "QuarantineRecord",
    "approve",
    "assess",
    "find_open",
    "get_quarantined",
    "hold",
    "list_quarantined",
    "mark_alerted",
    "reject",
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


# -- the guard (pure) -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Assessment:
    """Why a version is held: how much of its predecessor it drops."""

    old_codes: int
    dropped_codes: int
    old_items: int
    dropped_items: int
    reason: str


def _code_keys(criteria: Criteria) -> set[tuple[str, str]]:
    # (system, code), not the table: a code moved from covered to non-covered is a change the
    # diff reports, not a loss of content.
    return {(code.system.value, code.code.upper()) for code in criteria.codes}


def _item_keys(criteria: Criteria) -> set[tuple[object, ...]]:
    """The payer criteria items, each by its type and the `key` the diff matches items by."""
    groups = (
        criteria.drugs,
        criteria.step_therapy,
        criteria.prior_auth,
        criteria.thresholds,
        criteria.approval_periods,
        criteria.age_limits,
    )
    return {(type(item).__name__, *item.key) for group in groups for item in group}


def _share(dropped: int, of: int) -> str:
    return f"{dropped} of {of} {{}} ({round(100 * dropped / of)} %)"


def assess(old: Criteria, new: Criteria, config: QuarantineConfig) -> Assessment | None:
    """None when `new` may be published after `old`; else why it should be held."""
    old_codes, new_codes = _code_keys(old), _code_keys(new)
    old_items, new_items = _item_keys(old), _item_keys(new)
    dropped_codes = len(old_codes - new_codes)
    dropped_items = len(old_items - new_items)
    reasons = []
    if len(old_codes) >= config.min_items and dropped_codes > config.max_dropped_share * len(
        old_codes
    ):
        reasons.append("drops " + _share(dropped_codes, len(old_codes)).format("codes"))
    if len(old_items) >= config.min_items and dropped_items > config.max_dropped_share * len(
        old_items
    ):
        reasons.append("drops " + _share(dropped_items, len(old_items)).format("criteria items"))
    if not reasons:
        return None
    if new.status != old.status:
        # A retirement that empties the tables is real more often than not: say so up front.
        reasons.append(f"status {old.status} -> {new.status}")
    return Assessment(
        old_codes=len(old_codes),
        dropped_codes=dropped_codes,
        old_items=len(old_items),
        dropped_items=dropped_items,
        reason="; ".join(reasons),
    )


# -- inside the publishing transaction ----------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Held:
    """An open quarantine row (pending or rejected) for some bytes of a document."""

    id: int
    status: str
    reason: str


def find_open(session: Session, document_id: int, source_version: str, sha256: str) -> Held | None:
    row = session.execute(
        select(QuarantinedVersion.id, QuarantinedVersion.status, QuarantinedVersion.reason).where(
            QuarantinedVersion.document_id == document_id,
            QuarantinedVersion.source_version == source_version,
            QuarantinedVersion.content_sha256 == sha256,
            QuarantinedVersion.status.in_(OPEN_STATUSES),
        )
    ).first()
    return Held(id=row.id, status=row.status, reason=row.reason) if row is not None else None


def find_open_for(session: Session, source_id: int, raw: RawDocument, sha256: str) -> Held | None:
    """`find_open` by the document's source and key (before its id is known)."""
    document_id = session.scalar(
        select(Document.id).where(Document.source_id == source_id, Document.key == raw.key)
    )
    if document_id is None:
        return None
    return find_open(session, document_id, raw.source_version or "", sha256)


def hold(
    session: Session,
    ctx: PublishContext,
    raw: RawDocument,
    listed: ListedDocument,
    sha256: str,
    criteria: Criteria,
    *,
    document_id: int,
    previous_version_id: int,
    assessment: Assessment,
) -> int:
    """Write the quarantine row (the payload is stored by the caller); returns its id."""
    row = QuarantinedVersion(
        source_id=ctx.source_id,
        document_id=document_id,
        run_id=ctx.run_id,
        baseline=ctx.baseline,
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
        extractor=ctx.extractor_name,
        criteria=compress(criteria_to_json(criteria)),
        previous_version_id=previous_version_id,
        reason=assessment.reason,
        old_codes=assessment.old_codes,
        dropped_codes=assessment.dropped_codes,
        old_items=assessment.old_items,
        dropped_items=assessment.dropped_items,
        detected_at=utcnow(),
        status=PENDING,
    )
    session.add(row)
    session.flush()
    return row.id


def supersede(session: Session, document_id: int, version_number: int | None) -> None:
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
    session.execute(
        update(QuarantinedVersion)
        .where(*condition)
        .values(
            status=SUPERSEDED,
            decided_at=utcnow(),
            note="a later version of the document was published",
        )
    )


# -- reading and deciding -------------------------------------------------------------------


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


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def _query() -> Select[tuple[QuarantinedVersion, str, str]]:
    return (
        select(QuarantinedVersion, SourceRow.name, Document.key)
        .join(SourceRow, QuarantinedVersion.source_id == SourceRow.id)
        .join(Document, QuarantinedVersion.document_id == Document.id)
        .order_by(QuarantinedVersion.id)
    )


def _record(row: QuarantinedVersion, source: str, key: str) -> QuarantineRecord:
    detected_at = _aware(row.detected_at)
    assert detected_at is not None
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
        detected_at=detected_at,
        status=row.status,
        reviewer=row.reviewer,
        note=row.note,
        decided_at=_aware(row.decided_at),
        version_id=row.version_id,
        previous_version_id=row.previous_version_id,
        run_id=row.run_id,
    )


def list_quarantined(
    store: Store, *, status: str | None = None, limit: int = 1000
) -> list[QuarantineRecord]:
    """Quarantined versions in id order, optionally of one status."""
    if status is not None and status not in STATUSES:
        raise QuarantineError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    query = _query().limit(limit)
    if status is not None:
        query = query.where(QuarantinedVersion.status == status)
    with store.session() as session:
        return [_record(row, source, key) for row, source, key in session.execute(query)]


def get_quarantined(store: Store, hold_id: int) -> QuarantineRecord:
    with store.session() as session:
        found = session.execute(_query().where(QuarantinedVersion.id == hold_id)).first()
    if found is None:
        raise QuarantineNotFound(hold_id)
    return _record(*found)


def held_criteria(store: Store, hold_id: int) -> Criteria:
    """What was extracted from the held version (for `show`)."""
    with store.session() as session:
        row = session.get(QuarantinedVersion, hold_id)
        if row is None:
            raise QuarantineNotFound(hold_id)
        return criteria_from_json(decompress(row.criteria))


def _check_reviewer(reviewer: str, note: str) -> tuple[str, str]:
    reviewer = reviewer.strip()
    if not reviewer or len(reviewer) > 200 or "\x00" in reviewer:
        raise QuarantineError("reviewer must be 1-200 characters (no NUL)")
    if len(note) > 10_000 or "\x00" in note:
        raise QuarantineError("note must be at most 10,000 characters (no NUL)")
    return reviewer, note


def _claim(session: Session, hold_id: int, status: str, reviewer: str, note: str) -> None:
    """Move a pending row to `status` (compare-and-set: one decision wins)."""
    decided = session.execute(
        update(QuarantinedVersion)
        .where(QuarantinedVersion.id == hold_id, QuarantinedVersion.status == PENDING)
        .values(status=status, reviewer=reviewer, note=note or None, decided_at=utcnow())
    )
    if decided.rowcount != 1:  # type: ignore[attr-defined]
        current = session.scalar(
            select(QuarantinedVersion.status).where(QuarantinedVersion.id == hold_id)
        )
        if current is None:
            raise QuarantineNotFound(hold_id)
        raise QuarantineDecided(hold_id, current)


def reject(store: Store, hold_id: int, *, reviewer: str, note: str = "") -> QuarantineRecord:
    """Keep the version out: the document stays at its last published version, and these
    bytes are not held or published again."""
    reviewer, note = _check_reviewer(reviewer, note)
    with store.session() as session:
        _claim(session, hold_id, REJECTED, reviewer, note)
    return get_quarantined(store, hold_id)


def approve(
    store: Store,
    hold_id: int,
    *,
    reviewer: str,
    note: str = "",
    today: dt.date | None = None,
) -> QuarantineRecord:
    """Publish the held version through the normal publish path (version, criteria, rules,
    checklists, changes and outbox rows in one transaction, with the decision), bypassing
    only the guard."""
    # Imported here: monitor.pipeline.publish calls this module's guard, so it imports this module.
    from monitor.pipeline.publish import PublishContext, _publish_in, lock_change_feed

    reviewer, note = _check_reviewer(reviewer, note)
    with store.session() as session:
        lock_change_feed(session)  # first, before the row lock of the decision
        _claim(session, hold_id, APPROVED, reviewer, note)
        row = session.get_one(QuarantinedVersion, hold_id)
        source = session.get_one(SourceRow, row.source_id)
        key = session.get_one(Document, row.document_id).key
        payload = session.get_one(Payload, row.content_sha256)
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
        kind = SOURCE_KINDS.get(source.kind)
        ctx = PublishContext(
            source_id=row.source_id,
            run_id=row.run_id,
            baseline=row.baseline,
            today=today or utcnow().date(),
            extract=_never,
            extractor_name=row.extractor,
            diff=kind.diff if kind is not None else None,
            quarantine=None,  # the reviewer decided: no guard
        )
        criteria = criteria_from_json(decompress(row.criteria))
        sha256 = hashlib.sha256(raw.content).hexdigest()
        result = _publish_in(session, ctx, raw, listed, sha256, criteria)
        row.version_id = result.version_id
    return get_quarantined(store, hold_id)


def _never(raw: RawDocument) -> Criteria:
    raise QuarantineError(f"{raw.key}: a held version is published from its stored criteria")


# -- the operators' alert -------------------------------------------------------------------


def unalerted(store: Store) -> list[QuarantineRecord]:
    """Pending rows whose operators' email has not been written yet."""
    query = _query().where(
        QuarantinedVersion.status == PENDING, QuarantinedVersion.alerted_at.is_(None)
    )
    with store.session() as session:
        return [_record(row, source, key) for row, source, key in session.execute(query)]


def mark_alerted(store: Store, hold_id: int, *, now: dt.datetime) -> None:
    with store.session() as session:
        session.execute(
            update(QuarantinedVersion)
            .where(QuarantinedVersion.id == hold_id, QuarantinedVersion.alerted_at.is_(None))
            .values(alerted_at=now)
        )
