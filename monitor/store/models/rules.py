"""Tables of the rule rows and PA checklists (migrations 0003, 0010). All write-once.

Why there is no stored effective-to: a version stops applying when a later version of the same
document takes effect, and which later versions exist depends on *when* you ask (`known_at`):
on 1 March we may not yet have known of the version published on 5 March that takes effect on
1 April. A stored effective-to would have to be rewritten as versions arrive (so the rows
could not be immutable) and would still be wrong for every earlier `known_at`. So each row
keeps only what its own version says (`effective_from`, `retired_on`) and the copy of the
version's `published_at`; `monitor.store.rules` derives effective-to and the as-of answer in the
query from `document_versions`, which has an index per document.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from monitor.store.models.core import Base
from monitor.store.types import UTCDateTime


class RuleRowModel(Base):
    """One fact of one published document version (`diffing.rules.RuleRow` plus ids)."""

    __tablename__ = "rule_rows"
    __immutable__ = True
    __table_args__ = (
        # One code as of a date: the index finds the code's rows, the as-of test is per row.
        Index("ix_rule_rows_code", "code", "id"),
        Index(
            "ix_rule_rows_drug",
            "drug",
            "id",
            sqlite_where=text("drug IS NOT NULL"),
            postgresql_where=text("drug IS NOT NULL"),
        ),
        Index("ix_rule_rows_document", "document_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("document_versions.id"))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    version_number: Mapped[int] = mapped_column(Integer)
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    effective_from: Mapped[dt.date | None] = mapped_column(Date)
    retired_on: Mapped[dt.date | None] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(30))
    payer: Mapped[str] = mapped_column(Text)
    code_system: Mapped[str | None] = mapped_column(String(20))
    code: Mapped[str | None] = mapped_column(String(20))
    code_group: Mapped[int | None] = mapped_column(Integer)
    drug: Mapped[str | None] = mapped_column(String(200))
    indication: Mapped[str | None] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(200))
    op: Mapped[str | None] = mapped_column(String(4))
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(20))
    days: Mapped[int | None] = mapped_column(Integer)
    count: Mapped[int | None] = mapped_column(Integer)
    required: Mapped[bool | None] = mapped_column(Boolean)
    text: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(Text)
    evidence_page: Mapped[int | None] = mapped_column(Integer)
    evidence_section: Mapped[str | None] = mapped_column(String(200))
    # Migration 0010: the criteria tree's branch (initial, continuation …) and the leaf's path;
    # NULL on rows published before the tree and on rows outside one (codes).
    branch: Mapped[str | None] = mapped_column(String(30))
    tree_path: Mapped[str | None] = mapped_column(Text)


class ChecklistModel(Base):
    """A checklist's identity: one payer policy document x one drug (or procedure)."""

    __tablename__ = "checklists"
    __immutable__ = True
    __table_args__ = (UniqueConstraint("document_id", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    subject: Mapped[str] = mapped_column(String(300))
    subject_kind: Mapped[str] = mapped_column(String(20))
    payer: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ChecklistVersionModel(Base):
    """The checklist as one published document version gives it (`removed`: the version no
    longer has this drug; `data` is then the empty checklist)."""

    __tablename__ = "checklist_versions"
    __immutable__ = True
    __table_args__ = (
        UniqueConstraint("checklist_id", "number"),
        Index("ix_checklist_versions_version", "version_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    checklist_id: Mapped[int] = mapped_column(ForeignKey("checklists.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("document_versions.id"))
    number: Mapped[int] = mapped_column(Integer)
    effective_date: Mapped[dt.date | None] = mapped_column(Date)
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    removed: Mapped[bool] = mapped_column(Boolean)
    items: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[str] = mapped_column(Text)  # canonical JSON (`diffing.checklist`)
