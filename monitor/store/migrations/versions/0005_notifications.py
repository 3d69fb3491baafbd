"""Outbox, messages, deliveries (issue 6).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.migration_helpers import create_immutability_triggers, drop_immutability_triggers

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
IMMUTABLE = ("outbox_events", "notify_consumed", "notify_messages", "notify_attempts")


def upgrade() -> None:
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("change_id", sa.Integer, sa.ForeignKey("changes.id"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("change_id"),
    )
    op.create_index("ix_outbox_events_created_at", "outbox_events", ["created_at"])
    op.create_table(
        "notify_messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(300), nullable=False, unique=True),
        sa.Column("rfc_message_id", sa.String(300), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body_text", sa.Text, nullable=False),
        sa.Column("body_html", sa.Text),
        sa.Column("payload", sa.Text),
        sa.Column("change_ids", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "notify_consumed",
        sa.Column("consumer", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.Integer, sa.ForeignKey("outbox_events.id"), primary_key=True),
        sa.Column("message_id", sa.Integer, sa.ForeignKey("notify_messages.id")),
    )
    op.create_table(
        "notify_cursors",
        sa.Column("consumer", sa.String(200), primary_key=True),
        sa.Column("since", TZ, nullable=False),
        sa.Column("slot", TZ),
        sa.Column("generation", sa.Integer, nullable=False),
    )
    op.create_table(
        "notify_deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("message_id", sa.Integer, sa.ForeignKey("notify_messages.id"), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("recipient", sa.String(2000), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("lease_until", TZ),
        sa.Column("lease_owner", sa.String(100)),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", TZ),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("message_id", "recipient"),
    )
    op.create_index("ix_notify_deliveries_due", "notify_deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "notify_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "delivery_id",
            sa.Integer,
            sa.ForeignKey("notify_deliveries.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("attempted_at", TZ, nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_table(
        "source_health",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("since", TZ, nullable=False),
        sa.Column("last_run_id", sa.Integer, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
    )
    create_immutability_triggers(IMMUTABLE)


def downgrade() -> None:
    drop_immutability_triggers(IMMUTABLE)
    op.drop_table("source_health")
    op.drop_table("notify_attempts")
    op.drop_index("ix_notify_deliveries_due", table_name="notify_deliveries")
    op.drop_table("notify_deliveries")
    op.drop_table("notify_cursors")
    op.drop_table("notify_consumed")
    op.drop_table("notify_messages")
    op.drop_index("ix_outbox_events_created_at", table_name="outbox_events")
    op.drop_table("outbox_events")
