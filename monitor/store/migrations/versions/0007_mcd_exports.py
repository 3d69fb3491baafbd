"""No schema change. Reserved for MCD bulk export bookkeeping, which needed no table: the
exports' validators live in listing_entries. Kept so revision numbers stay in sequence.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
