"""Quarantined versions (issue 8): fetched versions held for a reviewer instead of published.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_OPEN = sa.text("status IN ('pending', 'rejected')")


def upgrade() -> None:
    op.create_table(
        "quarantined_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), nullable=False),
        sa.Column("document_id", sa.Integer, sa.ForeignKey("documents.id"), nullable=False),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("source_runs.id"), nullable=False),
        sa.Column("baseline", sa.Boolean, nullable=False),
        sa.Column("source_version", sa.String(100), nullable=False),
        sa.Column("version_number", sa.Integer),
        sa.Column(
            "content_sha256", sa.String(64), sa.ForeignKey("payloads.sha256"), nullable=False
        ),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("doc_type", sa.String(50), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("etag", sa.Text),
        sa.Column("source_meta", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(100), nullable=False),
        sa.Column("extractor", sa.String(50), nullable=False),
        sa.Column("criteria", sa.LargeBinary, nullable=False),
        sa.Column("previous_version_id", sa.Integer, sa.ForeignKey("document_versions.id")),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("old_codes", sa.Integer, nullable=False),
        sa.Column("dropped_codes", sa.Integer, nullable=False),
        sa.Column("old_items", sa.Integer, nullable=False),
        sa.Column("dropped_items", sa.Integer, nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("reviewer", sa.String(200)),
        sa.Column("note", sa.Text),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("document_versions.id")),
        sa.Column("alerted_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_quarantined_versions_document_id", "quarantined_versions", ["document_id"])
    op.create_index("ix_quarantined_versions_status", "quarantined_versions", ["status", "id"])
    # Partial unique index: SQLite and PostgreSQL both have them.
    op.create_index(
        "uq_quarantined_versions_open",
        "quarantined_versions",
        ["document_id", "source_version", "content_sha256"],
        unique=True,
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )


def downgrade() -> None:
    op.drop_table("quarantined_versions")
