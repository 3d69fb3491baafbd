"""Rule rows carry the criteria tree's branch and the leaf's path in it (issue 14 point 3).

Both nullable: rows published before the tree existed keep NULL (they named no branch), and
CMS code rows never have one. A plain ADD COLUMN (no table copy) keeps SQLite's immutability
triggers on `rule_rows` in place.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rule_rows", sa.Column("branch", sa.String(30)))
    op.add_column("rule_rows", sa.Column("tree_path", sa.Text))


def downgrade() -> None:
    op.drop_column("rule_rows", "tree_path")
    op.drop_column("rule_rows", "branch")
