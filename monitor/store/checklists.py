"""PA checklists: stored with each published payer version, read current / as of / by version,
and diffed (`monitor.report.render_checklist` writes them as Markdown and HTML).

A checklist's identity is (document, subject); each published version of the document adds
one immutable checklist version per subject it governs, and a `removed` version for a subject
it no longer has, so as-of answers follow the document's own versions exactly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, insert, select
from sqlalchemy.orm import Session

from diffing.checklist import (
    Checklist,
    ChecklistChange,
    build_checklists,
    checklist_feed_changes,
    checklist_from_dict,
    checklist_to_dict,
    diff_checklists,
)
from diffing.model import Change, Criteria
from monitor.errors import StoreError
from monitor.store.core import Store
from monitor.store.inserts import insert_ids_in_order
from monitor.store.limits import MAX_LIST_ROWS, bounded
from monitor.store.models.core import DocumentVersion, SourceRow
from monitor.store.models.rules import ChecklistModel, ChecklistVersionModel
from monitor.store.rules import DAWN, as_utc


class ChecklistNotFound(StoreError):
    """No checklist (or checklist version) with the id or number asked for."""


_encode = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode


def _json(checklist: Checklist) -> str:
    return _encode(checklist_to_dict(checklist))


_CHECKLISTS = cast(Table, ChecklistModel.__table__)
_CHECKLIST_VERSIONS = cast(Table, ChecklistVersionModel.__table__)

# Statements built once, values bound at execution: built per version with the ORM, their
# constructs and cache keys cost more than the rows they wrote (bench/vs_urlwatch.py round 1).
# The same SQL as the ORM's select (row order included: removed subjects follow it).
_PREVIOUS = (
    select(_CHECKLISTS.c.subject, _CHECKLIST_VERSIONS.c.removed, _CHECKLIST_VERSIONS.c.data)
    .select_from(
        _CHECKLIST_VERSIONS.join(
            _CHECKLISTS, _CHECKLIST_VERSIONS.c.checklist_id == _CHECKLISTS.c.id
        )
    )
    .where(_CHECKLIST_VERSIONS.c.version_id == bindparam("version_id"))
)
# Each checklist of a document with its highest version number (None: none yet).
_IDENTITIES = (
    select(_CHECKLISTS.c.subject, _CHECKLISTS.c.id, func.max(_CHECKLIST_VERSIONS.c.number))
    .select_from(
        _CHECKLISTS.outerjoin(
            _CHECKLIST_VERSIONS, _CHECKLIST_VERSIONS.c.checklist_id == _CHECKLISTS.c.id
        )
    )
    .where(_CHECKLISTS.c.document_id == bindparam("document_id"))
    .group_by(_CHECKLISTS.c.id, _CHECKLISTS.c.subject)
)
_ADD_CHECKLIST_VERSIONS = insert(_CHECKLIST_VERSIONS)


def publish_checklists(
    session: Session,
    criteria: Criteria,
    *,
    source_id: int,
    document_id: int,
    version_id: int,
    previous_version_id: int | None,
    published_at: dt.datetime,
    new_document: bool = False,
    deferred: ChecklistWrites | None = None,
) -> list[Change]:
    """Store this version's checklists (inside the publishing transaction) and return the
    feed changes against the previous version's checklists. `new_document`: the document was
    added in this transaction, so it has no checklists yet (not looked up).

    Two statements write a version's checklists whatever their number: the new identities
    (ids returned in order), then one version row per subject, as they were written one
    subject at a time before (the same ids, the same rows). With `deferred`, the rows wait
    there for the end of the publishing batch (`ChecklistWrites`)."""
    built = {c.subject: c for c in build_checklists(criteria)}
    if new_document and not built:
        return []  # nothing to store, and nothing before it to compare with
    previous: dict[str, Checklist] = {}
    if previous_version_id is not None:
        for subject, removed, data in _flushed(session).execute(
            _PREVIOUS, {"version_id": previous_version_id}
        ):
            if not removed:
                previous[subject] = checklist_from_dict(json.loads(data))
    if not built and not previous:
        return []  # nothing to store or compare (most CMS versions): no query more
    identities: dict[str, tuple[int, int]] = {}  # subject -> (checklist id, highest number)
    if not new_document:
        for subject, checklist_id, highest in _flushed(session).execute(
            _IDENTITIES, {"document_id": document_id}
        ):
            identities[subject] = (checklist_id, highest or 0)
    subjects = [
        subject
        for subject in [*built, *(s for s in previous if s not in built)]
        if subject in built or subject in identities
    ]
    writes = deferred if deferred is not None else ChecklistWrites()
    changes: list[Change] = []
    for subject in subjects:
        checklist = built.get(subject)
        data = _json(checklist) if checklist is not None else "{}"
        row: dict[str, object] = {
            "version_id": version_id,
            "effective_date": criteria.effective_date,
            "published_at": published_at,
            "removed": checklist is None,
            "items": len(checklist.items) if checklist is not None else 0,
            "sha256": hashlib.sha256(data.encode()).hexdigest(),
            "data": data,
        }
        known = identities.get(subject)
        if known is not None:
            row["checklist_id"], row["number"] = known[0], known[1] + 1
            writes.versions.append((row, None))
        else:
            assert checklist is not None  # a subject without an identity is a built one
            row["number"] = 1
            writes.versions.append((row, len(writes.created)))
            writes.created.append(
                {
                    "source_id": source_id,
                    "document_id": document_id,
                    "subject": subject,
                    "subject_kind": checklist.subject_kind,
                    "payer": checklist.payer,
                    "label": checklist.label,
                    "created_at": published_at,
                }
            )
        changes.extend(
            checklist_feed_changes(
                previous.get(subject), checklist, effective_date=criteria.effective_date
            )
        )
    if deferred is None:
        writes.write(_flushed(session))
    return changes


@dataclass(slots=True)
class ChecklistWrites:
    """Checklist rows waiting to be written: the identities to create and the version rows,
    each with its checklist's id or the index of the identity to create for it. Written in
    the order they came, so ids are what writing them one by one gave; a publishing batch
    gathers those of its versions when none of them reads another's back."""

    created: list[dict[str, object]] = dataclasses.field(default_factory=list)
    versions: list[tuple[dict[str, object], int | None]] = dataclasses.field(default_factory=list)

    def write(self, connection: Connection) -> None:
        ids: Sequence[int] = ()
        if self.created:
            ids = insert_ids_in_order(connection, _CHECKLISTS, self.created)
            assert len(ids) == len(self.created)
        rows = []
        for row, created in self.versions:
            if created is not None:
                row["checklist_id"] = ids[created]
            rows.append(row)
        if rows:
            connection.execute(_ADD_CHECKLIST_VERSIONS, rows)
        self.created, self.versions = [], []


def _flushed(session: Session) -> Connection:
    """The session's connection once its pending objects are written, as the session's own
    execute of an ORM statement would have done first."""
    if session.autoflush:
        session.flush()
    return session.connection()


# -- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ChecklistVersionRecord:
    checklist_id: int
    number: int
    version_id: int  # the document version it came from
    document_version: str
    effective_date: dt.date | None
    published_at: dt.datetime
    removed: bool
    items: int
    sha256: str


@dataclass(frozen=True, kw_only=True)
class ChecklistRecord:
    """One version of one checklist, with where it came from."""

    id: int
    source: str
    url: str
    version: ChecklistVersionRecord
    checklist: Checklist | None  # None when this version records the checklist's removal


@dataclass(frozen=True, kw_only=True)
class ChecklistDiffRecord:
    checklist_id: int
    from_number: int
    to_number: int
    changes: tuple[ChecklistChange, ...]


def _versions_query() -> Any:
    return (
        select(
            ChecklistVersionModel,
            DocumentVersion.source_version,
            DocumentVersion.version_number,
            DocumentVersion.url,
            SourceRow.name,
        )
        .join(DocumentVersion, ChecklistVersionModel.version_id == DocumentVersion.id)
        .join(ChecklistModel, ChecklistVersionModel.checklist_id == ChecklistModel.id)
        .join(SourceRow, ChecklistModel.source_id == SourceRow.id)
    )


def _version_record(row: ChecklistVersionModel, source_version: str, number: int | None) -> Any:
    return ChecklistVersionRecord(
        checklist_id=row.checklist_id,
        number=row.number,
        version_id=row.version_id,
        document_version=source_version or str(number or ""),
        effective_date=row.effective_date,
        published_at=as_utc(row.published_at),
        removed=row.removed,
        items=row.items,
        sha256=row.sha256,
    )


def _record(row: Any) -> ChecklistRecord:
    version, source_version, number, url, source = row
    return ChecklistRecord(
        id=version.checklist_id,
        source=source,
        url=url,
        version=_version_record(version, source_version, number),
        checklist=None if version.removed else checklist_from_dict(json.loads(version.data)),
    )


def _applying(rows: list[Any], as_of: dt.date | None) -> Any | None:
    """Of one checklist's versions, the one that applies on `as_of` (None: the newest known):
    latest effective date on or before it, then the higher document version, then the later."""
    candidates = [row for row in rows if as_of is None or (row[0].effective_date or DAWN) <= as_of]
    if as_of is None:
        return max(candidates, key=lambda row: row[0].number, default=None)
    return max(
        candidates,
        key=lambda row: (row[0].effective_date or DAWN, row[2] or 0, row[0].number),
        default=None,
    )


def find_checklists(
    store: Store,
    *,
    payer: str | None = None,
    drug: str | None = None,
    as_of: dt.date | None = None,
    known_at: dt.datetime | None = None,
    after: int = 0,
    limit: int = MAX_LIST_ROWS,
) -> list[ChecklistRecord]:
    """The checklists that apply on `as_of` (default: the newest version of each) as known at
    `known_at`; `drug` matches the generic name or the label ("dupilumab", "Dupixent").

    In checklist id order, the first `limit` (at most `MAX_LIST_ROWS`) with an id above
    `after`: read a batch of checklists at a time, so memory is bounded by the page."""
    wanted = bounded(limit)
    matching = select(ChecklistModel.id).order_by(ChecklistModel.id)
    if payer is not None:
        matching = matching.where(
            func.lower(ChecklistModel.payer).contains(payer.strip().lower(), autoescape=True)
        )
    if drug is not None:
        name = drug.strip().lower()
        matching = matching.where(
            (func.lower(ChecklistModel.subject) == name)
            | (func.lower(ChecklistModel.label) == name)
        )
    out: list[ChecklistRecord] = []
    cursor = after
    with store.session() as session:
        while len(out) < wanted:
            ids = list(session.scalars(matching.where(ChecklistModel.id > cursor).limit(wanted)))
            if not ids:
                break
            cursor = ids[-1]
            query = (
                _versions_query()
                .where(ChecklistVersionModel.checklist_id.in_(ids))
                .order_by(ChecklistVersionModel.checklist_id)
            )
            if known_at is not None:
                query = query.where(ChecklistVersionModel.published_at <= as_utc(known_at))
            by_checklist: dict[int, list[Any]] = {}
            for row in session.execute(query).all():
                by_checklist.setdefault(row[0].checklist_id, []).append(row)
            for versions in by_checklist.values():
                chosen = _applying(versions, as_of)
                if chosen is not None and not chosen[0].removed:
                    out.append(_record(chosen))
    return out[:wanted]


def get_checklist(
    store: Store,
    checklist_id: int,
    *,
    number: int | None = None,
    as_of: dt.date | None = None,
    known_at: dt.datetime | None = None,
) -> ChecklistRecord:
    """One checklist: version `number`, or the one applying on `as_of` / newest known."""
    query = _versions_query().where(ChecklistVersionModel.checklist_id == checklist_id)
    if number is not None:
        query = query.where(ChecklistVersionModel.number == number)
    if known_at is not None:
        query = query.where(ChecklistVersionModel.published_at <= as_utc(known_at))
    with store.session() as session:
        rows = session.execute(query).all()
    chosen = _applying(list(rows), as_of)
    if chosen is None:
        what = f"version {number} of checklist" if number is not None else "checklist"
        raise ChecklistNotFound(f"no {what} {checklist_id} (as asked)")
    return _record(chosen)


def checklist_versions(
    store: Store, checklist_id: int, *, after: int = 0, limit: int = MAX_LIST_ROWS
) -> list[ChecklistVersionRecord]:
    """A checklist's versions oldest first: the first `limit` (at most `MAX_LIST_ROWS`)
    numbered above `after`."""
    with store.session() as session:
        rows = session.execute(
            _versions_query()
            .where(
                ChecklistVersionModel.checklist_id == checklist_id,
                ChecklistVersionModel.number > after,
            )
            .order_by(ChecklistVersionModel.number)
            .limit(bounded(limit))
        ).all()
        exists = bool(rows) or session.scalar(
            select(ChecklistModel.id).where(ChecklistModel.id == checklist_id)
        )
    if not exists:
        raise ChecklistNotFound(f"no checklist {checklist_id}")
    return [_version_record(row[0], row[1], row[2]) for row in rows]


def diff_checklist_versions(
    store: Store, checklist_id: int, from_number: int, to_number: int
) -> ChecklistDiffRecord:
    old = get_checklist(store, checklist_id, number=from_number)
    new = get_checklist(store, checklist_id, number=to_number)
    return ChecklistDiffRecord(
        checklist_id=checklist_id,
        from_number=from_number,
        to_number=to_number,
        changes=diff_checklists(old.checklist, new.checklist),
    )
