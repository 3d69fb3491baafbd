"""The writes of publishing, each inside the caller's transaction: documents, payloads, versions,
criteria, changes (with the outbox rows announcing them), the listing memory, withdrawals and
the change feed's lock. What to write is decided by `monitor.pipeline.publish`.

Core statements, not the unit of work: a baseline publishes thousands of versions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Insert,
    Select,
    Table,
    bindparam,
    insert,
    select,
    text,
    update,
)

from diffing.model import Change, Criteria, RawDocument
from diffing.serialize import criteria_from_json, criteria_to_json
from monitor.store.checklists import ChecklistWrites
from monitor.store.core import Store, compress, decompress, utcnow
from monitor.store.inserts import (
    execute_on_driver,
    insert_ids_in_order,
    insert_ignoring_duplicates,
)
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
from monitor.store.models.quarantine import OPEN_STATUSES, PENDING, QuarantinedVersion
from monitor.store.outbox import enqueue_changes
from monitor.store.rules import RuleValues, SharedRows, insert_rule_values, rule_count
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


@dataclass(frozen=True, slots=True)
class Lookup:
    """What `stored_as` found: the document's id (None: not stored) and the version its bytes
    already are (None: none)."""

    document_id: int | None
    version_id: int | None


def stored_as(txn: Transaction, source_id: int, raw: RawDocument, sha256: str) -> Lookup:
    """The stored version these bytes already are, with the document's id.

    A source's version id (CMS) names a version for good: bytes stored for that (document,
    version) are known whatever was published after them. A document without version ids (a
    payer page) is known only when its *latest* version has these bytes: returning to older
    bytes is a revert, which is a change like any other.

    One query of statements built once: a payer run asks for each document it fetches, and
    built per call, the ORM select cost more than the query (the document's id, which the
    quarantine lookup needs, was a second query)."""
    statement = _SAME_BYTES if raw.source_version else _LATEST_VERSION
    row = (
        _flushed(txn)
        .execute(
            statement,
            {
                "source_id": source_id,
                "key": raw.key,
                "source_version": raw.source_version or "",
                "sha256": sha256,
            },
        )
        .first()
    )
    if row is None:
        return Lookup(document_id=None, version_id=None)
    document_id, version_id, stored_sha256 = row
    known = version_id if version_id is not None and stored_sha256 == sha256 else None
    return Lookup(document_id=document_id, version_id=known)


def _lookup(*, same_bytes: bool) -> Select[tuple[int, int | None, str | None]]:
    """The document of (source, key) with the stored version of its source version that has
    these bytes (`same_bytes`: any of them, as a CMS version id names a version for good), or
    its latest one (a payer page: only the latest counts); the version NULL when none."""
    documents = cast(Table, Document.__table__)
    versions = cast(Table, DocumentVersion.__table__)
    joined = (versions.c.document_id == documents.c.id) & (
        versions.c.source_version == bindparam("source_version")
    )
    if same_bytes:
        joined = joined & (versions.c.content_sha256 == bindparam("sha256"))
    query = (
        select(documents.c.id, versions.c.id, versions.c.content_sha256)
        .select_from(documents.outerjoin(versions, joined))
        .where(
            documents.c.source_id == bindparam("source_id"),
            documents.c.key == bindparam("key"),
        )
    )
    # Matching versions or one row of NULLs, never both: NULLs sort alike on both backends.
    return query.limit(1) if same_bytes else query.order_by(versions.c.id.desc()).limit(1)


_SAME_BYTES = _lookup(same_bytes=True)
_LATEST_VERSION = _lookup(same_bytes=False)


def load_criteria(txn: Transaction, version_id: int) -> Criteria:
    return criteria_from_json(decompress(txn.get_one(CriteriaRow, version_id).data))


def load_payload(txn: Transaction, version_id: int) -> tuple[bytes, str]:
    """The bytes a stored version was published from, and their content type."""
    version = txn.get_one(DocumentVersion, version_id)
    payload = txn.get_one(Payload, version.content_sha256)
    return decompress(payload.data), version.content_type


def load_payload_text(txn: Transaction, version_id: int, parser: str) -> str | None:
    """The text a stored version's bytes were parsed to by parser version `parser`; None when
    none was kept (or an older parser made it)."""
    row = txn.execute(
        select(Payload.text, Payload.text_parser)
        .join(DocumentVersion, DocumentVersion.content_sha256 == Payload.sha256)
        .where(DocumentVersion.id == version_id)
    ).one_or_none()
    if row is None or row.text is None or row.text_parser != parser:
        return None
    return decompress(row.text).decode()


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


# -- a batch of versions ---------------------------------------------------------------------


@dataclass(slots=True)
class BatchState:
    """What a publishing batch knows of its documents, loaded with a few queries for the whole
    batch and kept current as the batch writes (a document added, a version published), so
    no version costs a query to look up what the batch knows already."""

    documents: dict[str, StoredDocument]  # by key
    versions: dict[int, list[StoredVersion]]  # by document id
    # (document id, source version, sha256) -> (quarantine id, status, reason)
    held: dict[tuple[int, str, str], tuple[int, str, str]]
    pending_holds: set[int]  # documents with a pending quarantine row
    failed_in_baseline: set[str]  # keys a baseline run recorded an error for
    criteria: dict[int, Criteria] = dataclasses.field(default_factory=dict)  # published here


def load_batch_state(
    txn: Transaction, source_id: int, keys: Collection[str], *, baseline: bool
) -> BatchState:
    """`BatchState` of the documents `keys` of `source_id` (four queries, whatever the size)."""
    connection = _flushed(txn)
    wanted = sorted(set(keys))
    documents: dict[str, StoredDocument] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        for found in connection.execute(
            _BATCH_DOCUMENTS, {"source_id": source_id, "keys": wanted[start : start + _IN_CHUNK]}
        ):
            documents[found.key] = StoredDocument(id=found.id, title=found.title, url=found.url)
    ids = sorted(d.id for d in documents.values())
    versions: dict[int, list[StoredVersion]] = {}
    held: dict[tuple[int, str, str], tuple[int, str, str]] = {}
    pending: set[int] = set()
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = {"ids": ids[start : start + _IN_CHUNK]}
        for version in connection.execute(_BATCH_VERSIONS, chunk):
            versions.setdefault(version[0], []).append(StoredVersion(*version[1:]))
        for row in connection.execute(_BATCH_HELD, chunk):
            held.setdefault((row[0], row[1], row[2]), (row[3], row[4], row[5]))
            if row[4] == PENDING:
                pending.add(row[0])
    failed: set[str] = set()
    new_keys = [key for key in wanted if key not in documents]
    if not baseline and new_keys:
        for start in range(0, len(new_keys), _IN_CHUNK):
            failed.update(
                connection.execute(
                    _BATCH_FAILED,
                    {"source_id": source_id, "keys": new_keys[start : start + _IN_CHUNK]},
                ).scalars()
            )
    return BatchState(
        documents=documents,
        versions=versions,
        held=held,
        pending_holds=pending,
        failed_in_baseline={key for key in failed if key is not None},
    )


def _batch_queries() -> tuple[Select[Any], Select[Any], Select[Any], Select[Any]]:
    """`load_batch_state`'s queries, built once (IN lists bound at execution): built per
    batch with the ORM, constructing them cost as much as running them."""
    documents = cast(Table, Document.__table__)
    versions = cast(Table, DocumentVersion.__table__)
    held = cast(Table, QuarantinedVersion.__table__)
    errors, runs = cast(Table, RunError.__table__), cast(Table, SourceRun.__table__)
    return (
        select(documents.c.id, documents.c.key, documents.c.title, documents.c.url).where(
            documents.c.source_id == bindparam("source_id"),
            documents.c.key.in_(bindparam("keys", expanding=True)),
        ),
        select(
            versions.c.document_id,
            versions.c.id,
            versions.c.source_version,
            versions.c.version_number,
            versions.c.content_sha256,
        )
        .where(versions.c.document_id.in_(bindparam("ids", expanding=True)))
        .order_by(versions.c.id),
        select(
            held.c.document_id,
            held.c.source_version,
            held.c.content_sha256,
            held.c.id,
            held.c.status,
            held.c.reason,
        )
        .where(
            held.c.document_id.in_(bindparam("ids", expanding=True)),
            held.c.status.in_(list(OPEN_STATUSES)),
        )
        .order_by(held.c.id),
        select(errors.c.document_key)
        .select_from(errors.join(runs, errors.c.run_id == runs.c.id))
        .where(
            runs.c.source_id == bindparam("source_id"),
            runs.c.baseline.is_(True),
            errors.c.document_key.in_(bindparam("keys", expanding=True)),
        )
        .distinct(),
    )


_BATCH_DOCUMENTS, _BATCH_VERSIONS, _BATCH_HELD, _BATCH_FAILED = _batch_queries()

_IN_CHUNK = 500  # ids or keys per IN list (SQLite allows 32,766 parameters; PostgreSQL more)


def known_in(versions: Sequence[StoredVersion], source_version: str, sha256: str) -> int | None:
    """`stored_as` over versions already loaded."""
    same = [v for v in versions if v.source_version == source_version]
    if not source_version:
        same = [max(same, key=lambda v: v.id)] if same else []
    return next((v.id for v in same if v.content_sha256 == sha256), None)


# Rule rows written with one statement, at most about: a batch's beyond it are written as they
# come (`DeferredWrites.add_rules`).
RULES_AT_ONCE = 8192


@dataclass(slots=True)
class DeferredWrites:
    """The rows of a batch that nothing in the batch reads back, written at its end with one
    statement each: criteria, checklists, rule rows, changes (with their outbox rows), listing
    memory."""

    criteria: list[dict[str, object]] = dataclasses.field(default_factory=list)
    rules: list[RuleValues | SharedRows] = dataclasses.field(default_factory=list)
    rule_rows: int = 0  # how many rows `rules` hold
    changes: list[dict[str, object]] = dataclasses.field(default_factory=list)
    listings: list[dict[str, object]] = dataclasses.field(default_factory=list)
    # Written at the end only when no version of the batch reads another's back (see
    # monitor.pipeline.publish): a document published twice in one batch compares its
    # checklists with those of its version before.
    checklists: ChecklistWrites = dataclasses.field(default_factory=ChecklistWrites)

    def add_rules(self, txn: Transaction, rules: Sequence[RuleValues | SharedRows]) -> None:
        """Rule rows to write: at the end of the batch, or now once `RULES_AT_ONCE` wait (in
        the order given either way, so their ids are the same). A full CMS batch gathered
        tens of thousands, and their tuples were memory held to the batch's end."""
        self.rules.extend(rules)
        self.rule_rows += rule_count(rules)
        if self.rule_rows >= RULES_AT_ONCE:
            insert_rule_values(txn, self.rules)
            self.rules, self.rule_rows = [], 0

    def write(self, txn: Transaction) -> None:
        if self.criteria:
            txn.connection().execute(insert(cast(Table, CriteriaRow.__table__)), self.criteria)
        self.checklists.write(_flushed(txn))
        insert_rule_values(txn, self.rules)
        insert_change_rows(txn, self.changes)
        write_listings(txn, self.listings)
        self.criteria, self.rules, self.changes, self.listings = [], [], [], []
        self.rule_rows = 0


# -- writing a version -----------------------------------------------------------------------


def add_document(
    txn: Transaction, source_id: int, raw: RawDocument, *, title: str, first_seen_at: dt.datetime
) -> int:
    row = {
        "source_id": source_id,
        "key": raw.key,
        "doc_type": raw.doc_type,
        "title": title,
        "url": raw.url,
        "first_seen_at": first_seen_at,
        "missing_runs": 0,
    }
    ((document_id,),) = execute_on_driver(_flushed(txn), _ADD_DOCUMENT, row)
    return cast(int, document_id)


def update_document(txn: Transaction, document_id: int, *, title: str, url: str) -> None:
    txn.execute(update(Document).where(Document.id == document_id).values(title=title, url=url))


def store_payload(
    txn: Transaction,
    raw: RawDocument,
    sha256: str,
    *,
    parsed_text: str | None = None,
    parser: str | None = None,
) -> None:
    """The fetched bytes, content-addressed (stored once however many rows refer to them),
    with the text they were parsed to when it is known (`parser`: the parser's version)."""
    texts = {sha256: (parsed_text, parser)} if parsed_text is not None else None
    store_payloads(txn, [(raw.content, sha256)], texts=texts)


def store_payloads(
    txn: Transaction,
    payloads: Sequence[tuple[bytes, str]],
    *,
    texts: Mapping[str, tuple[str, str | None]] | None = None,
) -> None:
    """Several payloads (content, sha256) with one statement; each stored once. `texts`: by
    sha256, the text a payload was parsed to and the parser version that made it."""
    known = texts or {}
    rows = {
        sha256: {
            "sha256": sha256,
            "size": len(content),
            "compression": "zlib",
            "data": compress(content),
            "text": compress(known[sha256][0].encode()) if sha256 in known else None,
            "text_parser": known[sha256][1] if sha256 in known else None,
        }
        for content, sha256 in payloads
    }
    insert_ignoring_duplicates(txn, Payload, list(rows.values()), keys=["sha256"])


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
    deferred: DeferredWrites | None = None,
) -> int:
    """The version row and its criteria (the payload is stored by `store_payload`); with
    `deferred`, the criteria row is written at the end of the batch."""
    row = {
        "document_id": document_id,
        "source_version": raw.source_version or "",
        "version_number": version_number,
        "content_sha256": sha256,
        "content_type": raw.content_type,
        "title": title,
        "status": criteria.status,
        "effective_date": criteria.effective_date,
        "retirement_date": criteria.retirement_date,
        "url": raw.url,
        "fetched_at": raw.fetched_at,
        "published_at": published_at,
        "run_id": run_id,
    }
    ((version_id,),) = execute_on_driver(_flushed(txn), _ADD_VERSION, row)
    criteria_json = criteria_to_json(criteria)
    criteria_row = {
        "version_id": version_id,
        "extractor": extractor,
        "sha256": hashlib.sha256(criteria_json).hexdigest(),
        "data": compress(criteria_json),
    }
    if deferred is not None:
        deferred.criteria.append(criteria_row)
    else:
        execute_on_driver(_flushed(txn), _ADD_CRITERIA, criteria_row)
    return cast(int, version_id)


def _flushed(txn: Transaction) -> Connection:
    """The session's connection once its pending objects are written, as the session's own
    execute of an ORM statement (the ``insert(Model)`` these replace) would have done."""
    if txn.autoflush:
        txn.flush()
    return txn.connection()


def _prepared_insert(model: type, columns: Sequence[str], *, returning: bool) -> Insert:
    """An INSERT built once, values bound at execution, run on the driver's cursor
    (`execute_on_driver`): the ORM-enabled ``insert(Model).values(...)`` built per call cost a
    compile-cache key (and the ORM's insert bookkeeping) per published version, a quarter of a
    CMS baseline's GIL time. Every column with a default is named: the driver fills in none."""
    table = cast(Table, model.__table__)  # type: ignore[attr-defined]
    statement = insert(table).values({name: bindparam(name) for name in columns})
    return statement.returning(table.c.id) if returning else statement


_ADD_DOCUMENT = _prepared_insert(
    Document,
    ("source_id", "key", "doc_type", "title", "url", "first_seen_at", "missing_runs"),
    returning=True,
)
_ADD_VERSION = _prepared_insert(
    DocumentVersion,
    (
        "document_id",
        "source_version",
        "version_number",
        "content_sha256",
        "content_type",
        "title",
        "status",
        "effective_date",
        "retirement_date",
        "url",
        "fetched_at",
        "published_at",
        "run_id",
    ),
    returning=True,
)
_ADD_CRITERIA = _prepared_insert(
    CriteriaRow, ("version_id", "extractor", "sha256", "data"), returning=False
)


def add_changes(txn: Transaction, changes: Sequence[Change], origin: ChangeOrigin) -> list[int]:
    """Insert change rows and, in the same transaction, the outbox rows announcing them."""
    return insert_change_rows(txn, change_rows(changes, origin))


def change_rows(changes: Sequence[Change], origin: ChangeOrigin) -> list[dict[str, object]]:
    """The rows of `changes`, for `insert_change_rows` (a batch gathers those of its versions)."""
    # By hand: `dataclasses.asdict` deep-copies every field, once per published version.
    base = {name: getattr(origin, name) for name in _ORIGIN_FIELDS}
    return [
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


_ORIGIN_FIELDS = tuple(field.name for field in dataclasses.fields(ChangeOrigin))


def insert_change_rows(txn: Transaction, rows: Sequence[Mapping[str, object]]) -> list[int]:
    """Insert change rows (one multi-row statement) and the outbox rows announcing them."""
    if not rows:
        return []
    # Normally held already (publish paths take it first); re-taking a held lock is a no-op,
    # and a path that forgot it is still kept in order here.
    lock_change_feed(txn)
    # In the order given: change ids follow the order the versions were published in.
    # Core, not the ORM's bulk insert: its per-row bookkeeping cost more than the rows.
    table = cast(Table, ChangeRow.__table__)
    change_ids = insert_ids_in_order(txn.connection(), table, rows)
    enqueue_changes(txn, change_ids)
    return change_ids


# -- what the listing said -------------------------------------------------------------------


def remember_listing(
    txn: Transaction, source_id: int, listed: ListedDocument, raw: RawDocument
) -> None:
    """What the listing said, and the validators for the next conditional GET."""
    write_listings(txn, [listing_row(source_id, listed, raw)])


def listing_row(source_id: int, listed: ListedDocument, raw: RawDocument) -> dict[str, object]:
    return {
        "source_id": source_id,
        "key": listed.key,
        "source_version": listed.source_version,
        "fingerprint": listed.fingerprint,
        "last_seen_at": utcnow(),
        "etag": raw.etag,
        "last_modified": raw.meta("last_modified"),
    }


def write_listings(txn: Transaction, rows: Sequence[Mapping[str, object]]) -> None:
    """Insert or update listing rows; of two rows for the same (source, key, version) the
    later one stands (one statement may not touch a row twice on PostgreSQL)."""
    latest = {(r["source_id"], r["key"], r["source_version"]): r for r in rows}
    insert_ignoring_duplicates(
        txn,
        ListingEntry,
        list(latest.values()),
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
