"""SQLAlchemy models of the HTTP API: API keys (hashed) and change reviews (write-once)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from monitor.store.models.core import Base
from monitor.store.types import UTCDateTime


class ApiKey(Base):
    """One API key. Only the sha256 of the key is stored; `prefix` is its non-secret first part,
    used to find the row. Revoking sets `revoked_at` (the row stays, so reviews keep naming it)."""

    __tablename__ = "api_keys"
    __table_args__ = (
        # A name is unique among live keys only, so a revoked key's name can be reused on rotation.
        Index(
            "ix_api_keys_active_name",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_sha256: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(10))  # read, review, admin
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ChangeReview(Base):
    """An acknowledgement of a change by a person. Write-once: a change reviewed again gets a
    second row, and listings show the latest."""

    __tablename__ = "change_reviews"
    __immutable__ = True
    __table_args__ = (Index("ix_change_reviews_change", "change_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("changes.id"))
    reviewer: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text)
    reviewed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # The key the review came through (None from the command line).
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
