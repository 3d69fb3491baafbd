"""SQLAlchemy 2 models of the store. Versions, payloads and criteria are write-once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from monitor.errors import StoreError
from monitor.store.types import UTCDateTime


class Base(DeclarativeBase):
    """Every table of the store. A model that sets ``__immutable__ = True`` is write-once: the
    session refuses updates and deletes (and its migration adds database triggers, see
    `monitor.store.migration_helpers`)."""

    __immutable__: bool = False


class SourceRow(Base):
    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Set when the first complete run ends; until then every new document is baseline.
    baseline_completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SourceRun(Base):
    __tablename__ = "source_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(20))  # running, success, partial, failed
    baseline: Mapped[bool] = mapped_column(Boolean, default=False)
    listed: Mapped[int] = mapped_column(Integer, default=0)
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    new_versions: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    changes: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class RunError(Base):
    __tablename__ = "run_errors"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("source_runs.id"), index=True)
    document_key: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("source_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    key: Mapped[str] = mapped_column(String(200))
    doc_type: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Consecutive complete listings that did not show the document; at 2 it is withdrawn.
    missing_runs: Mapped[int] = mapped_column(Integer, default=0)
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Payload(Base):
    """Raw fetched bytes, zlib-compressed, addressed by the sha256 of the uncompressed bytes."""

    __tablename__ = "payloads"
    __immutable__ = True

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    compression: Mapped[str] = mapped_column(String(10))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    # The payer document's text as the extraction worker parsed it (zlib-compressed UTF-8) and
    # the parser version that made it: the next version's changes are verified against it
    # without parsing these bytes again. NULL when not known (CMS data, stored before 0013).
    text: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    text_parser: Mapped[str | None] = mapped_column(String(20), nullable=True)


class DocumentVersion(Base):
    __tablename__ = "document_versions"
    __immutable__ = True
    __table_args__ = (
        # Not unique: a document without version ids may return to earlier bytes (a revert).
        Index("ix_document_versions_content", "document_id", "source_version", "content_sha256"),
        Index("ix_document_versions_document_order", "document_id", "version_number", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    source_version: Mapped[str] = mapped_column(String(100), default="")
    version_number: Mapped[int | None] = mapped_column(Integer)
    content_sha256: Mapped[str] = mapped_column(ForeignKey("payloads.sha256"))
    content_type: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    effective_date: Mapped[dt.date | None] = mapped_column(Date)
    retirement_date: Mapped[dt.date | None] = mapped_column(Date)
    url: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("source_runs.id"))


class CriteriaRow(Base):
    __tablename__ = "criteria"
    __immutable__ = True

    version_id: Mapped[int] = mapped_column(ForeignKey("document_versions.id"), primary_key=True)
    extractor: Mapped[str] = mapped_column(String(50))
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)  # zlib-compressed canonical JSON


class ChangeRow(Base):
    __tablename__ = "changes"
    __immutable__ = True
    __table_args__ = (Index("ix_changes_detected_at", "detected_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("document_versions.id"))
    previous_version_id: Mapped[int | None] = mapped_column(ForeignKey("document_versions.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("source_runs.id"))
    kind: Mapped[str] = mapped_column(String(40))
    field: Mapped[str | None] = mapped_column(String(100))
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(10))
    evidence: Mapped[str | None] = mapped_column(Text)
    effective_date: Mapped[dt.date | None] = mapped_column(Date)
    detected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    baseline: Mapped[bool] = mapped_column(Boolean, default=False)
    # An `unverified` claim (diffing.verify): the severity it claimed, and why the two
    # versions' texts contradict it with each text's evidence. NULL for every other change.
    claimed_severity: Mapped[str | None] = mapped_column(String(10))
    contradiction: Mapped[str | None] = mapped_column(Text)


class ListingEntry(Base):
    """What a source's listing last said about one (document, version): bookkeeping, mutable."""

    __tablename__ = "listing_entries"

    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    source_version: Mapped[str] = mapped_column(String(100), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(100))  # e.g. "html:" + sha256
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Validators for a conditional GET next time (sources that have them).
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(String(100))


@event.listens_for(Session, "before_flush")
def _refuse_updates_to_published(session: Session, _context: object, _instances: object) -> None:
    for instance in list(session.dirty) + list(session.deleted):
        if type(instance).__immutable__ and (
            instance in session.deleted or session.is_modified(instance)
        ):
            raise StoreError(f"{type(instance).__tablename__} rows are immutable once published")
