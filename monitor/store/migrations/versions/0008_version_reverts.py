"""A document without source version ids may go back to bytes it had before (a revert).

Such a revert is a new version, so (document, source version, content) is no longer unique; it
stays indexed for the "already stored?" lookup. Also: listing fingerprints carry a kind prefix
("html:" + sha256), longer than the 64 characters revision 0001 allowed (PostgreSQL refused them;
SQLite does not check lengths).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.migration_helpers import create_immutability_triggers, drop_immutability_triggers

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = ["document_id", "source_version", "content_sha256"]
# How revision 0001 named the constraint: SQLite keeps it unnamed, PostgreSQL names it itself.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
SQLITE_NAME = "uq_document_versions_document_id"
POSTGRES_NAME = "document_versions_document_id_source_version_content_sha256_key"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite alters by copying the table, which drops its triggers: put them back after.
        drop_immutability_triggers(["document_versions"])
        with op.batch_alter_table("document_versions", naming_convention=NAMING) as batch:
            batch.drop_constraint(SQLITE_NAME, type_="unique")
        create_immutability_triggers(["document_versions"])
    else:
        op.drop_constraint(POSTGRES_NAME, "document_versions", type_="unique")
    op.create_index("ix_document_versions_content", "document_versions", COLUMNS)
    with op.batch_alter_table("listing_entries") as batch:
        batch.alter_column("fingerprint", type_=sa.String(100), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("listing_entries") as batch:
        batch.alter_column("fingerprint", type_=sa.String(64), existing_nullable=False)
    op.drop_index("ix_document_versions_content", "document_versions")
    if op.get_bind().dialect.name == "sqlite":
        drop_immutability_triggers(["document_versions"])
        with op.batch_alter_table("document_versions", naming_convention=NAMING) as batch:
            batch.create_unique_constraint(SQLITE_NAME, COLUMNS)
        create_immutability_triggers(["document_versions"])
    else:
        op.create_unique_constraint(POSTGRES_NAME, "document_versions", COLUMNS)
