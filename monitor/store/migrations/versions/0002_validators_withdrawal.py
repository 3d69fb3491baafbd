"""Conditional-GET validators on listing entries; withdrawal tracking on documents.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("listing_entries") as batch:
        batch.add_column(sa.Column("etag", sa.Text))
        batch.add_column(sa.Column("last_modified", sa.String(100)))
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("missing_runs", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("withdrawn_at")
        batch.drop_column("missing_runs")
    with op.batch_alter_table("listing_entries") as batch:
        batch.drop_column("last_modified")
        batch.drop_column("etag")
