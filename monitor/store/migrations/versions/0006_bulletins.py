"""MAC bulletin mentions (issue 4).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.migration_helpers import create_immutability_triggers, drop_immutability_triggers

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = ("bulletins", "bulletin_mentions")


def upgrade() -> None:
    op.create_table(
        "bulletins",
        sa.Column(
            "version_id", sa.Integer, sa.ForeignKey("document_versions.id"), primary_key=True
        ),
        sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), nullable=False),
        sa.Column("document_id", sa.Integer, sa.ForeignKey("documents.id"), nullable=False),
        sa.Column("mac", sa.String(200), nullable=False),
        sa.Column("bulletin_date", sa.Date),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_bulletins_source_id", "bulletins", ["source_id"])
    op.create_index("ix_bulletins_document_id", "bulletins", ["document_id"])
    op.create_table(
        "bulletin_mentions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("bulletins.version_id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("value", sa.String(100), nullable=False),
        sa.Column("document_key", sa.String(200)),
        sa.Column("sentence", sa.Text, nullable=False),
        sa.UniqueConstraint("version_id", "kind", "value"),
    )
    op.create_index("ix_bulletin_mentions_document_key", "bulletin_mentions", ["document_key"])
    op.create_index("ix_bulletin_mentions_value", "bulletin_mentions", ["value"])
    create_immutability_triggers(_TABLES)


def downgrade() -> None:
    drop_immutability_triggers(_TABLES)
    op.drop_table("bulletin_mentions")
    op.drop_table("bulletins")
