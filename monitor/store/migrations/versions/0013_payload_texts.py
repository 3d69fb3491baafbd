"""Payloads keep the text their payer document was parsed to, and the parser version.

Verifying a new version's changes needs the previous version's text; without it the parent
parsed the previous bytes again (about 14 ms of CPU per HTML page, more for PDFs). Both columns
nullable: CMS payloads and every payload stored before have neither, and are parsed as before.
A plain ADD COLUMN keeps SQLite's immutability triggers on `payloads` in place.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("payloads", sa.Column("text", sa.LargeBinary))
    op.add_column("payloads", sa.Column("text_parser", sa.String(20)))


def downgrade() -> None:
    op.drop_column("payloads", "text_parser")
    op.drop_column("payloads", "text")
