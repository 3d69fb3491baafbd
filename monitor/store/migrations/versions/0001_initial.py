"""Initial schema: sources, runs, documents, immutable versions, payloads, criteria, changes.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
IMMUTABLE = ("payloads", "document_versions", "criteria", "changes")


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("baseline_completed_at", TZ),
    )
    op.create_table(
        "source_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), nullable=False, index=True),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("baseline", sa.Boolean, nullable=False),
        *(
            sa.Column(name, sa.Integer, nullable=False)
            for name in (
                "listed",
                "fetched",
                "new_versions",
                "unchanged",
                "changes",
                "errors",
                "requests",
            )
        ),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "run_errors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "run_id", sa.Integer, sa.ForeignKey("source_runs.id"), nullable=False, index=True
        ),
        sa.Column("document_key", sa.String(200)),
        sa.Column("url", sa.Text),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("doc_type", sa.String(50), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("first_seen_at", TZ, nullable=False),
        sa.UniqueConstraint("source_id", "key"),
    )
    op.create_table(
        "payloads",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("compression", sa.String(10), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "document_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("document_id", sa.Integer, sa.ForeignKey("documents.id"), nullable=False),
        sa.Column("source_version", sa.String(100), nullable=False),
        sa.Column("version_number", sa.Integer),
        sa.Column(
            "content_sha256", sa.String(64), sa.ForeignKey("payloads.sha256"), nullable=False
        ),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("effective_date", sa.Date),
        sa.Column("retirement_date", sa.Date),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("fetched_at", TZ, nullable=False),
        sa.Column("published_at", TZ, nullable=False),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("source_runs.id")),
        sa.UniqueConstraint("document_id", "source_version", "content_sha256"),
    )
    op.create_index(
        "ix_document_versions_document_order",
        "document_versions",
        ["document_id", "version_number", "id"],
    )
    op.create_table(
        "criteria",
        sa.Column(
            "version_id", sa.Integer, sa.ForeignKey("document_versions.id"), primary_key=True
        ),
        sa.Column("extractor", sa.String(50), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), nullable=False, index=True),
        sa.Column(
            "document_id", sa.Integer, sa.ForeignKey("documents.id"), nullable=False, index=True
        ),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("document_versions.id"), nullable=False),
        sa.Column("previous_version_id", sa.Integer, sa.ForeignKey("document_versions.id")),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("source_runs.id")),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("field", sa.String(100)),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("evidence", sa.Text),
        sa.Column("effective_date", sa.Date),
        sa.Column("detected_at", TZ, nullable=False),
        sa.Column("baseline", sa.Boolean, nullable=False),
    )
    op.create_index("ix_changes_detected_at", "changes", ["detected_at"])
    op.create_table(
        "listing_entries",
        sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("source_version", sa.String(100), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("last_seen_at", TZ, nullable=False),
    )
    _create_immutability_triggers()


def _create_immutability_triggers() -> None:
    """The database itself refuses UPDATE and DELETE on published rows."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in IMMUTABLE:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} rows are immutable'); END"
                )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION refuse_mutation() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME; END $$"
        )
        for table in IMMUTABLE:
            op.execute(
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION refuse_mutation()"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in (
        "listing_entries",
        "changes",
        "criteria",
        "document_versions",
        "payloads",
        "documents",
        "run_errors",
        "source_runs",
        "sources",
    ):
        op.drop_table(table)
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS refuse_mutation()")
