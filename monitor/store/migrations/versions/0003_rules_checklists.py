"""Rule tables and PA checklists (issue 5): rule_rows, checklists, checklist_versions.

All three are write-once (database triggers refuse UPDATE and DELETE). Versions published
before this revision get no rule rows; re-publishing is not needed for new versions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.migration_helpers import create_immutability_triggers, drop_immutability_triggers

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
TABLES = ("rule_rows", "checklists", "checklist_versions")


def upgrade() -> None:
    op.create_table(
        "rule_rows",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("document_versions.id"), nullable=False),
        sa.Column("document_id", sa.Integer, sa.ForeignKey("documents.id"), nullable=False),
        sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), nullable=False),
        sa.Column("version_number", sa.Integer, nullable=False),
        sa.Column("published_at", TZ, nullable=False),
        sa.Column("effective_from", sa.Date),
        sa.Column("retired_on", sa.Date),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("payer", sa.Text, nullable=False),
        sa.Column("code_system", sa.String(20)),
        sa.Column("code", sa.String(20)),
        sa.Column("code_group", sa.Integer),
        sa.Column("drug", sa.String(200)),
        sa.Column("indication", sa.String(200)),
        sa.Column("subject", sa.String(200)),
        sa.Column("op", sa.String(4)),
        sa.Column("value", sa.Float),
        sa.Column("unit", sa.String(20)),
        sa.Column("days", sa.Integer),
        sa.Column("count", sa.Integer),
        sa.Column("required", sa.Boolean),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("evidence", sa.Text),
        sa.Column("evidence_page", sa.Integer),
        sa.Column("evidence_section", sa.String(200)),
    )
    op.create_index("ix_rule_rows_code", "rule_rows", ["code", "id"])
    op.create_index(
        "ix_rule_rows_drug",
        "rule_rows",
        ["drug", "id"],
        sqlite_where=sa.text("drug IS NOT NULL"),
        postgresql_where=sa.text("drug IS NOT NULL"),
    )
    op.create_index("ix_rule_rows_document", "rule_rows", ["document_id", "id"])
    op.create_table(
        "checklists",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), nullable=False),
        sa.Column("document_id", sa.Integer, sa.ForeignKey("documents.id"), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("subject_kind", sa.String(20), nullable=False),
        sa.Column("payer", sa.Text, nullable=False),
        sa.Column("label", sa.String(300), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("document_id", "subject"),
    )
    op.create_table(
        "checklist_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("checklist_id", sa.Integer, sa.ForeignKey("checklists.id"), nullable=False),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("document_versions.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("effective_date", sa.Date),
        sa.Column("published_at", TZ, nullable=False),
        sa.Column("removed", sa.Boolean, nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.UniqueConstraint("checklist_id", "number"),
    )
    op.create_index("ix_checklist_versions_version", "checklist_versions", ["version_id"])
    create_immutability_triggers(TABLES)


def downgrade() -> None:
    drop_immutability_triggers(TABLES)
    op.drop_table("checklist_versions")
    op.drop_table("checklists")
    op.drop_index("ix_rule_rows_document", table_name="rule_rows")
    op.drop_index("ix_rule_rows_drug", table_name="rule_rows")
    op.drop_index("ix_rule_rows_code", table_name="rule_rows")
    op.drop_table("rule_rows")
