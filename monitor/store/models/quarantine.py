"""The quarantine table: fetched versions held back from publishing until a reviewer decides.

A row keeps everything approval needs to publish the version without fetching it again: the
payload (by sha256, in the content-addressed `payloads` table), the extracted criteria and the
fetch and listing facts. Rows are bookkeeping, not published data: status, reviewer, note and
decision time are filled in when a reviewer decides, so the table is not write-once.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from monitor.store.models.core import Base
from monitor.store.types import UTCDateTime

PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"
SUPERSEDED = "superseded"  # a later version of the document was published meanwhile
STATUSES = (PENDING, APPROVED, REJECTED, SUPERSEDED)
# The statuses in which the same bytes must not be held (or published) a second time.
OPEN_STATUSES = (PENDING, REJECTED)
_OPEN = text("status IN ('pending', 'rejected')")


class QuarantinedVersion(Base):
    __tablename__ = "quarantined_versions"
    __table_args__ = (
        # One open row per (document, source version, bytes): seeing the bytes again while
        # pending or rejected finds this row instead of writing a second one.
        Index(
            "uq_quarantined_versions_open",
            "document_id",
            "source_version",
            "content_sha256",
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
        Index("ix_quarantined_versions_status", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("source_runs.id"))
    baseline: Mapped[bool] = mapped_column(Boolean, default=False)
    # The fetched version, as the source named it and as it was fetched.
    source_version: Mapped[str] = mapped_column(String(100), default="")
    version_number: Mapped[int | None] = mapped_column(Integer)
    content_sha256: Mapped[str] = mapped_column(ForeignKey("payloads.sha256"))
    content_type: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    doc_type: Mapped[str] = mapped_column(String(50))
    fetched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    etag: Mapped[str | None] = mapped_column(Text)
    source_meta: Mapped[str] = mapped_column(Text, default="[]")  # JSON [[name, value], ...]
    fingerprint: Mapped[str] = mapped_column(String(100))  # the listing row's
    # What was extracted (zlib-compressed canonical JSON) and by what.
    extractor: Mapped[str] = mapped_column(String(50))
    criteria: Mapped[bytes] = mapped_column(LargeBinary)
    # What it was compared with, and why it was held.
    previous_version_id: Mapped[int | None] = mapped_column(ForeignKey("document_versions.id"))
    reason: Mapped[str] = mapped_column(Text)
    old_codes: Mapped[int] = mapped_column(Integer, default=0)
    dropped_codes: Mapped[int] = mapped_column(Integer, default=0)
    old_items: Mapped[int] = mapped_column(Integer, default=0)
    dropped_items: Mapped[int] = mapped_column(Integer, default=0)
    detected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # The decision.
    status: Mapped[str] = mapped_column(String(12), default=PENDING)
    reviewer: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("document_versions.id"))
    # When the operators' email was written to the outbox (once per row).
    alerted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
