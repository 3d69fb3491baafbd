"""Tables of MAC bulletins: one row per published bulletin version, and what it mentions.

Both are derived from the version's criteria (`diffing.mentions`) and written once, in the
transaction that publishes the version (`monitor.store.bulletins.index_bulletin`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor.store.models.core import Base
from monitor.store.types import UTCDateTime


class BulletinRow(Base):
    """A published bulletin version: which MAC, which date. Its presence also marks the
    version as indexed (`index_bulletins` indexes a version without one)."""

    __tablename__ = "bulletins"
    __immutable__ = True

    version_id: Mapped[int] = mapped_column(ForeignKey("document_versions.id"), primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    mac: Mapped[str] = mapped_column(String(200))
    bulletin_date: Mapped[dt.date | None] = mapped_column(Date)
    indexed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class BulletinMentionRow(Base):
    """One thing a bulletin version mentions: an LCD/Article id, a code or a drug."""

    __tablename__ = "bulletin_mentions"
    __immutable__ = True
    __table_args__ = (
        UniqueConstraint("version_id", "kind", "value"),
        Index("ix_bulletin_mentions_document_key", "document_key"),
        Index("ix_bulletin_mentions_value", "value"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("bulletins.version_id"))
    kind: Mapped[str] = mapped_column(String(20))  # lcd, article, hcpcs, icd10, drug
    value: Mapped[str] = mapped_column(String(100))  # "L39902", "DL39902", "J3245", "L20.9"
    # The monitored document an LCD/Article id names ("L39902"); None for codes and drugs.
    document_key: Mapped[str | None] = mapped_column(String(200))
    sentence: Mapped[str] = mapped_column(Text)
