"""Changes keep what an unverified claim would have been and why the texts contradict it.

`claimed_severity`: the severity the diff gave a claim before `diffing.verify` demoted it to
`unverified`; `contradiction`: why the two versions' texts contradict it, with each text's
evidence. Both nullable: every other change (and every change stored before) has neither. A
plain ADD COLUMN (no table copy) keeps SQLite's immutability triggers on `changes` in place.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("changes", sa.Column("claimed_severity", sa.String(10)))
    op.add_column("changes", sa.Column("contradiction", sa.Text))


def downgrade() -> None:
    op.drop_column("changes", "contradiction")
    op.drop_column("changes", "claimed_severity")
