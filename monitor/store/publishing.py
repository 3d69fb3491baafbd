"""The writes of publishing, each inside the caller's transaction: documents, payloads, versions,
criteria, changes (with the outbox rows announcing them), the listing memory, withdrawals and
the change feed's lock. What to write is decided by `monitor.pipeline.publish`.

Core statements, not the unit of work: a baseline publishes thousands of versions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select, text, update

from diffing.model import Change, Criteria, RawDocument
from diffing.serialize import criteria_from_json, criteria_to_json
from monitor.store.core import Store, compress, decompress, utcnow
from monitor.store.inserts import insert_ignoring_duplicates
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
from monitor.store.types import Transaction
from sources.base import ListedDocument, Validators


@dataclass(frozen=True, slots=True)
class StoredVersion:
    id: int
    source_version: str
    version_number: int | None
    content_sha256: str


@dataclass(frozen=True, slots=True)
class StoredDocument:
    id: int
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class ListedState:
    """A stored document as the withdrawal check sees it."""

    id: int
    key: str
    missing_runs: int
    withdrawn_at: dt.datetime | None


@dataclass(frozen=True, kw_only=True)
class ChangeOrigin:
    """Where a batch of changes comes from: the same for every change of one version."""

    source_id: int
    document_id: int
    version_id: int
    previous_version_id: int | None
    run_id: int
    baseline: bool
    detected_at: dt.datetime


# -- the change feed's lock ------------------------------------------------------------------

# A fixed signed 64-bit integer (blake2b of a name, like the per-source keys of
# monitor.store.locks, in another namespace).
CHANGE_FEED_LOCK = int.from_bytes(
    hashlib.blake2b(b"policy-monitor:change-feed", digest_size=8).digest(), "big", signed=True
)


def lock_change_feed(txn: Transaction) -> None:
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
    if txn.get_bind().dialect.name == "postgresql":
        txn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHANGE_FEED_LOCK})


# -- reading what is stored ----------------------------------------------------------------


def find_document(txn: Transaction, source_id: int, key: str) -> StoredDocument | None:
    row = txn.execute(
        select(Document.id, Document.title, Document.url).where(
            Document.source_id == source_id, Document.key == key
        )
    ).first()
    return StoredDocument(id=row.id, title=row.title, url=row.url) if row is not None else None


def stored_versions(txn: Transaction, document_id: int) -> list[StoredVersion]:
    rows = txn.execute(
        select(
            DocumentVersion.id,
            DocumentVersion.source_version,
            DocumentVersion.version_number,
            DocumentVersion.content_sha256,
        ).where(DocumentVersion.document_id == document_id)
    )
    return [StoredVersion(*row) for row in rows]


def known_version(txn: Transaction, source_id: int, raw: RawDocument, sha256: str) -> int | None:
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
        return txn.scalar(query.where(DocumentVersion.content_sha256 == sha256).limit(1))
    latest = txn.execute(query.order_by(DocumentVersion.id.desc()).limit(1)).first()
    return latest.id if latest is not None and latest.content_sha256 == sha256 else None


def load_criteria(txn: Transaction, version_id: int) -> Criteria:
    return criteria_from_json(decompress(txn.get_one(CriteriaRow, version_id).data))


def load_payload(txn: Transaction, version_id: int) -> tuple[bytes, str]:
    """The bytes a stored version was published from, and their content type."""
    version = txn.get_one(DocumentVersion, version_id)
    payload = txn.get_one(Payload, version.content_sha256)
    return decompress(payload.data), version.content_type


def failed_in_baseline(txn: Transaction, source_id: int, key: str) -> bool:
    """Did a baseline run of this source record an error for document `key`?"""
    return (
        txn.scalar(
            select(RunError.id)
            .join(SourceRun, RunError.run_id == SourceRun.id)
            .where(
                SourceRun.source_id == source_id,
                SourceRun.baseline.is_(True),
                RunError.document_key == key,
            )
            .limit(1)
        )
        is not None
    )


# -- writing a version -----------------------------------------------------------------------


def add_document(
    txn: Transaction, source_id: int, raw: RawDocument, *, title: str, first_seen_at: dt.datetime
) -> int:
    return txn.execute(
        insert(Document)
        .values(
            source_id=source_id,
            key=raw.key,
            doc_type=raw.doc_type,
            title=title,
            url=raw.url,
            first_seen_at=first_seen_at,
        )
        .returning(Document.id)
    ).scalar_one()


def update_document(txn: Transaction, document_id: int, *, title: str, url: str) -> None:
    txn.execute(update(Document).where(Document.id == document_id).values(title=title, url=url))


def store_payload(txn: Transaction, raw: RawDocument, sha256: str) -> None:
    """The fetched bytes, content-addressed (stored once however many rows refer to them)."""
    insert_ignoring_duplicates(
        txn,
        Payload,
        [
            {
                "sha256": sha256,
                "size": len(raw.content),
                "compression": "zlib",
                "data": compress(raw.content),
            }
        ],
        keys=["sha256"],
    )


def add_version(
    txn: Transaction,
    raw: RawDocument,
    criteria: Criteria,
    *,
    document_id: int,
    sha256: str,
    version_number: int,
    title: str,
    extractor: str,
    run_id: int,
    published_at: dt.datetime,
) -> int:
    """The version row and its criteria (the payload is stored by `store_payload`)."""
    version_id = txn.execute(
        insert(DocumentVersion)
        .values(
            document_id=document_id,
            source_version=raw.source_version or "",
            version_number=version_number,
            content_sha256=sha256,
            content_type=raw.content_type,
            title=title,
            status=criteria.status,
            effective_date=criteria.effective_date,
            retirement_date=criteria.retirement_date,
            url=raw.url,
            fetched_at=raw.fetched_at,
            published_at=published_at,
            run_id=run_id,
        )
        .returning(DocumentVersion.id)
    ).scalar_one()
    criteria_json = criteria_to_json(criteria)
    txn.execute(
        insert(CriteriaRow).values(
            version_id=version_id,
            extractor=extractor,
            sha256=hashlib.sha256(criteria_json).hexdigest(),
            data=compress(criteria_json),
        )
    )
    return version_id


def add_changes(txn: Transaction, changes: Sequence[Change], origin: ChangeOrigin) -> list[int]:
    """Insert change rows and, in the same transaction, the outbox rows announcing them."""
    if not changes:
        return []
    # Normally held already (publish paths take it first); re-taking a held lock is a no-op,
    # and a path that forgot it is still kept in order here.
    lock_change_feed(txn)
    base = dataclasses.asdict(origin)
    rows = [
        {
            **base,
            "kind": change.kind.value,
            "field": change.field,
            "before": change.before,
            "after": change.after,
            "severity": change.severity.value,
            "evidence": change.evidence,
            "effective_date": change.effective_date,
            "claimed_severity": change.claimed_severity.value if change.claimed_severity else None,
            "contradiction": change.contradiction,
        }
        for change in changes
    ]
    change_ids = list(txn.scalars(insert(ChangeRow).returning(ChangeRow.id), rows))
    enqueue_changes(txn, change_ids)
    return change_ids


# -- what the listing said -------------------------------------------------------------------


def remember_listing(
    txn: Transaction, source_id: int, listed: ListedDocument, raw: RawDocument
) -> None:
    """What the listing said, and the validators for the next conditional GET."""
    insert_ignoring_duplicates(
        txn,
        ListingEntry,
        [
            {
                "source_id": source_id,
                "key": listed.key,
                "source_version": listed.source_version,
                "fingerprint": listed.fingerprint,
                "last_seen_at": utcnow(),
                "etag": raw.etag,
                "last_modified": raw.meta("last_modified"),
            }
        ],
        keys=["source_id", "key", "source_version"],
        update=["fingerprint", "last_seen_at", "etag", "last_modified"],
    )


def remember_validators(
    store: Store, source_id: int, validators: Mapping[tuple[str, str], Validators]
) -> None:
    """The validators of a listing's own files (an export zip's sha256 and ETag)."""
    with store.session() as txn:
        for (key, version), seen in validators.items():
            txn.merge(
                ListingEntry(
                    source_id=source_id,
                    key=key,
                    source_version=version,
                    fingerprint=seen.fingerprint,
                    last_seen_at=utcnow(),
                    etag=seen.etag,
                    last_modified=seen.last_modified,
                )
            )


# -- withdrawals -----------------------------------------------------------------------------


def listed_states(txn: Transaction, source_id: int) -> list[ListedState]:
    rows = txn.execute(
        select(Document.id, Document.key, Document.missing_runs, Document.withdrawn_at).where(
            Document.source_id == source_id
        )
    )
    return [ListedState(*row) for row in rows]


def mark_listed_again(txn: Transaction, document_ids: Sequence[int]) -> None:
    if document_ids:
        txn.execute(
            update(Document)
            .where(Document.id.in_(list(document_ids)))
            .values(missing_runs=0, withdrawn_at=None)
        )


def mark_missing(
    txn: Transaction, document_id: int, *, missing_runs: int, withdrawn_at: dt.datetime | None
) -> None:
    """Count one more listing without the document; `withdrawn_at` when that withdraws it."""
    values: dict[str, object] = {"missing_runs": missing_runs}
    if withdrawn_at is not None:
        values["withdrawn_at"] = withdrawn_at
    txn.execute(update(Document).where(Document.id == document_id).values(**values))
