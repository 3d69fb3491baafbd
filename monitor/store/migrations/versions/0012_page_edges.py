"""Page edges of payer document versions: the light reference a version's successor is parsed
with, so a one-page re-print recognises the running header and footer of the previous print
(`diffing.parse.printed_alike`). A cache: a missing row only means no reference.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "page_edges",
        sa.Column("content_sha256", sa.String(64), primary_key=True),
        sa.Column("pages", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("page_edges")
