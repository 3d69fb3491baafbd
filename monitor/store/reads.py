"""Store queries of the HTTP API: documents and their versions, raw payloads, change reviews.

Like `monitor.store.core`, the only place the API's SQL is written; the routes get dataclasses.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.errors import StoreError
from monitor.store.core import Store, decompress, utcnow
from monitor.store.db import check_schema, first_line, make_read_only_engine, sqlite_path
from monitor.store.limits import MAX_LIST_ROWS, bounded
from monitor.store.models.api import ChangeReview
from monitor.store.models.core import (
    ChangeRow,
    CriteriaRow,
    Document,
    DocumentVersion,
    Payload,
    SourceRow,
)
from monitor.store.types import as_utc


@dataclass(frozen=True, kw_only=True)
class DocumentInfo:
    id: int
    source: str
    key: str
    doc_type: str
    title: str
    url: str
    first_seen_at: dt.datetime
    withdrawn_at: dt.datetime | None
    versions: int
    latest_version: int | None


@dataclass(frozen=True, kw_only=True)
class VersionInfo:
    id: int
    version_number: int | None
    source_version: str
    title: str
    status: str
    effective_date: dt.date | None
    retirement_date: dt.date | None
    url: str
    content_type: str
    content_sha256: str
    size: int
    fetched_at: dt.datetime
    published_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class VersionContent:
    document: DocumentInfo
    version: VersionInfo
    criteria: dict[str, Any]  # the stored canonical criteria JSON, as a dict


@dataclass(frozen=True, kw_only=True)
class RawPayload:
    content: bytes
    content_type: str
    sha256: str
    key: str
    version_number: int | None


@dataclass(frozen=True, kw_only=True)
class Review:
    id: int
    change_id: int
    reviewer: str
    note: str
    reviewed_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class ChangeVersions:
    """The two versions a change compares, as criteria JSON (previous is None for additions)."""

    document: DocumentInfo
    version: VersionInfo
    previous: VersionInfo | None
    criteria: dict[str, Any]
    previous_criteria: dict[str, Any] | None


def _aware_or_none(value: dt.datetime | None) -> dt.datetime | None:
    return as_utc(value) if value is not None else None


def _document_query() -> Any:
    counts = (
        select(
            DocumentVersion.document_id.label("document_id"),
            func.count().label("versions"),
            func.max(DocumentVersion.version_number).label("latest"),
        )
        .group_by(DocumentVersion.document_id)
        .subquery()
    )
    return (
        select(Document, SourceRow.name, counts.c.versions, counts.c.latest)
        .join(SourceRow, Document.source_id == SourceRow.id)
        .outerjoin(counts, counts.c.document_id == Document.id)
    )


def _document_info(row: Any) -> DocumentInfo:
    document, source, versions, latest = row
    return DocumentInfo(
        id=document.id,
        source=source,
        key=document.key,
        doc_type=document.doc_type,
        title=document.title,
        url=document.url,
        first_seen_at=as_utc(document.first_seen_at),
        withdrawn_at=_aware_or_none(document.withdrawn_at),
        versions=int(versions or 0),
        latest_version=latest,
    )


def _version_info(version: DocumentVersion, size: int) -> VersionInfo:
    return VersionInfo(
        id=version.id,
        version_number=version.version_number,
        source_version=version.source_version,
        title=version.title,
        status=version.status,
        effective_date=version.effective_date,
        retirement_date=version.retirement_date,
        url=version.url,
        content_type=version.content_type,
        content_sha256=version.content_sha256,
        size=size,
        fetched_at=as_utc(version.fetched_at),
        published_at=as_utc(version.published_at),
    )


def list_documents(
    store: Store, *, source: str | None, after: int | None, limit: int = MAX_LIST_ROWS
) -> list[DocumentInfo]:
    """Documents in id order, the first `limit` (at most `MAX_LIST_ROWS`) after document id
    `after`."""
    query = _document_query().order_by(Document.id).limit(bounded(limit))
    if source is not None:
        query = query.where(SourceRow.name == source)
    if after is not None:
        query = query.where(Document.id > after)
    with store.session() as session:
        return [_document_info(row) for row in session.execute(query)]


def _find_document(session: Session, source: str, key: str) -> DocumentInfo | None:
    row = session.execute(
        _document_query().where(SourceRow.name == source, Document.key == key)
    ).first()
    return _document_info(row) if row is not None else None


def document_versions(
    store: Store, source: str, key: str, *, after: int = 0, limit: int = MAX_LIST_ROWS
) -> tuple[DocumentInfo, list[VersionInfo]] | None:
    """A document and its versions oldest first: the first `limit` (at most `MAX_LIST_ROWS`)
    of those with a version id above `after` (the API's cursor)."""
    with store.session() as session:
        document = _find_document(session, source, key)
        if document is None:
            return None
        rows = session.execute(
            select(DocumentVersion, Payload.size)
            .join(Payload, DocumentVersion.content_sha256 == Payload.sha256)
            .where(DocumentVersion.document_id == document.id, DocumentVersion.id > after)
            .order_by(DocumentVersion.version_number, DocumentVersion.id)
            .limit(bounded(limit))
        )
        return document, [_version_info(version, size) for version, size in rows]


def _version_row(
    session: Session, document_id: int, number: int
) -> tuple[DocumentVersion, int] | None:
    # A source may republish one version number with new bytes; the latest row answers.
    row = session.execute(
        select(DocumentVersion, Payload.size)
        .join(Payload, DocumentVersion.content_sha256 == Payload.sha256)
        .where(DocumentVersion.document_id == document_id, DocumentVersion.version_number == number)
        .order_by(DocumentVersion.id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row is not None else None


def _criteria_dict(session: Session, version_id: int) -> dict[str, Any]:
    stored = session.get_one(CriteriaRow, version_id)
    data: dict[str, Any] = json.loads(decompress(stored.data))
    return data


def _find_version(
    session: Session, source: str, key: str, number: int
) -> tuple[DocumentInfo, DocumentVersion, int] | None:
    """Version `number` of a document, with the document and the raw size."""
    document = _find_document(session, source, key)
    if document is None:
        return None
    found = _version_row(session, document.id, number)
    if found is None:
        return None
    version, size = found
    return document, version, size


def version_content(store: Store, source: str, key: str, number: int) -> VersionContent | None:
    with store.session() as session:
        found = _find_version(session, source, key, number)
        if found is None:
            return None
        document, version, size = found
        return VersionContent(
            document=document,
            version=_version_info(version, size),
            criteria=_criteria_dict(session, version.id),
        )


def raw_payload(store: Store, source: str, key: str, number: int) -> RawPayload | None:
    with store.session() as session:
        found = _find_version(session, source, key, number)
        if found is None:
            return None
        _document, version, _size = found
        payload = session.get_one(Payload, version.content_sha256)
        return RawPayload(
            content=decompress(payload.data) if payload.compression == "zlib" else payload.data,
            content_type=version.content_type,
            sha256=payload.sha256,
            key=key,
            version_number=version.version_number,
        )


def change_versions(store: Store, change_id: int) -> ChangeVersions | None:
    """The version a change belongs to and the one it was compared with, with their criteria."""
    with store.session() as session:
        change = session.get(ChangeRow, change_id)
        if change is None:
            return None
        row = session.execute(_document_query().where(Document.id == change.document_id)).one()
        document = _document_info(row)

        def load(version_id: int) -> tuple[VersionInfo, dict[str, Any]]:
            version = session.get_one(DocumentVersion, version_id)
            size = session.get_one(Payload, version.content_sha256).size
            return _version_info(version, size), _criteria_dict(session, version_id)

        version, criteria = load(change.version_id)
        previous, previous_criteria = (None, None)
        if change.previous_version_id is not None:
            previous, previous_criteria = load(change.previous_version_id)
        return ChangeVersions(
            document=document,
            version=version,
            previous=previous,
            criteria=criteria,
            previous_criteria=previous_criteria,
        )


def record_review(
    store: Store, change_id: int, *, reviewer: str, note: str, api_key_id: int | None = None
) -> Review | None:
    """Add an (immutable) acknowledgement of a change; None when the change does not exist."""
    with store.session() as session:
        if session.get(ChangeRow, change_id) is None:
            return None
        row = ChangeReview(
            change_id=change_id,
            reviewer=reviewer,
            note=note,
            reviewed_at=utcnow(),
            api_key_id=api_key_id,
        )
        session.add(row)
        session.flush()
        return _review(row)


def _review(row: ChangeReview) -> Review:
    return Review(
        id=row.id,
        change_id=row.change_id,
        reviewer=row.reviewer,
        note=row.note,
        reviewed_at=as_utc(row.reviewed_at),
    )


def reviews_of(store: Store, change_id: int, *, limit: int = MAX_LIST_ROWS) -> list[Review]:
    """The reviews of a change oldest first: its latest `limit` (at most `MAX_LIST_ROWS`)."""
    with store.session() as session:
        newest = session.scalars(
            select(ChangeReview)
            .where(ChangeReview.change_id == change_id)
            .order_by(ChangeReview.id.desc())
            .limit(bounded(limit))
        )
        return [_review(row) for row in reversed(list(newest))]


def latest_reviews(store: Store, change_ids: Sequence[int]) -> dict[int, Review]:
    """The latest review of each of `change_ids` that has one."""
    if not change_ids:
        return {}
    latest = (
        select(func.max(ChangeReview.id))
        .where(ChangeReview.change_id.in_(list(change_ids)))
        .group_by(ChangeReview.change_id)
    )
    with store.session() as session:
        return {
            row.change_id: _review(row)
            for row in session.scalars(select(ChangeReview).where(ChangeReview.id.in_(latest)))
        }


def version_numbers(store: Store, change_ids: Sequence[int]) -> dict[int, int | None]:
    """The version number each change was found in (the API's version links use it)."""
    if not change_ids:
        return {}
    with store.session() as session:
        rows = session.execute(
            select(ChangeRow.id, DocumentVersion.version_number)
            .join(DocumentVersion, ChangeRow.version_id == DocumentVersion.id)
            .where(ChangeRow.id.in_(list(change_ids)))
        )
        return {change_id: number for change_id, number in rows}


def database_answers(store: Store) -> str | None:
    """None when the database answers a trivial query, else why not."""
    try:
        with store.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except Exception as exc:  # any driver or pool failure means "not healthy"
        return f"database unavailable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return None


@dataclass(frozen=True, kw_only=True)
class IntegrityReport:
    """What `policy-monitor db check` found: `problems` empty means healthy."""

    database: str
    checks: tuple[str, ...]  # what was checked, for the report
    problems: tuple[str, ...]
    advice: str


def check_integrity(url: str) -> IntegrityReport:
    """SQLite: ``PRAGMA integrity_check`` and the schema revision. PostgreSQL: a connection,
    the schema revision and, when the `amcheck` extension is installed, ``bt_index_check`` of
    every B-tree index in the current schema (without it, index corruption is not looked for)."""
    path = sqlite_path(url)
    where = str(path) if path is not None else url.split("@")[-1]
    checks: list[str] = []
    problems: list[str] = []
    try:
        engine = make_read_only_engine(url)
    except StoreError as exc:
        return IntegrityReport(
            database=where, checks=(), problems=(str(exc),), advice="check [database] url"
        )
    try:
        with engine.connect() as connection:
            if path is not None:
                checks.append("PRAGMA integrity_check")
                rows = [r[0] for r in connection.exec_driver_sql("PRAGMA integrity_check")]
                problems.extend(r for r in rows if r != "ok")
            else:
                checks.append("connection")
                installed = connection.exec_driver_sql(
                    "SELECT 1 FROM pg_extension WHERE extname = 'amcheck'"
                ).first()
                if installed is None:
                    checks.append(
                        "amcheck extension not installed: indexes not checked "
                        "(CREATE EXTENSION amcheck, as a superuser, enables it)"
                    )
                else:
                    indexes = list(
                        connection.exec_driver_sql(
                            "SELECT c.oid, c.relname FROM pg_index i "
                            "JOIN pg_class c ON c.oid = i.indexrelid "
                            "JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "JOIN pg_am a ON a.oid = c.relam "
                            "WHERE a.amname = 'btree' AND n.nspname = current_schema()"
                        )
                    )
                    for oid, name in indexes:
                        try:
                            connection.exec_driver_sql(f"SELECT bt_index_check({int(oid)})")
                        except Exception as exc:  # the driver reports corruption as an error
                            problems.append(f"index {name}: {first_line(exc)}")
                            connection.rollback()
                    checks.append(f"amcheck bt_index_check of {len(indexes)} indexes")
        if not problems:
            checks.append("schema revision")
            check_schema(engine, where)
    except StoreError as exc:
        problems.append(str(exc))
    except Exception as exc:  # a corrupt file or a refused connection: one line, no SQL
        problems.append(first_line(exc))
    finally:
        engine.dispose()
    if not problems:
        advice = "nothing to do"
    elif path is not None:
        advice = (
            "stop the daemon, keep a copy of the file, then restore the latest backup; "
            "or recover what is readable with `sqlite3 FILE .recover | sqlite3 NEW.db`"
        )
    else:
        advice = "reindex the damaged indexes (REINDEX INDEX name) or restore from a backup"
    return IntegrityReport(
        database=where, checks=tuple(checks), problems=tuple(problems), advice=advice
    )
