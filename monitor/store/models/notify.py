"""Tables of the notification outbox: events, consumers' claims, messages, deliveries, health.

The flow: publishing writes one `OutboxEvent` per announceable change (same transaction as the
change). A consumer (a profile's alerts or digest, a webhook) turns unclaimed events into one
`NotifyMessage`, claiming them (`ConsumedEvent`) in the same transaction. Each message has one
`NotifyDelivery` per recipient, which the sender claims with a lease, sends and marks sent.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor.store.models.core import Base
from monitor.store.types import UTCDateTime


class OutboxEvent(Base):
    """One change to announce, written in the transaction that published the change."""

    __tablename__ = "outbox_events"
    __immutable__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("changes.id"), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class ConsumedEvent(Base):
    """An event a consumer ("alert:derm", "digest:derm", "webhook:scrubber") has dealt with.

    The primary key makes a second claim of the same event fail, which is what keeps two
    sender instances from announcing one change twice."""

    __tablename__ = "notify_consumed"
    __immutable__ = True

    consumer: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("outbox_events.id"), primary_key=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("notify_messages.id"))


class NotifyCursor(Base):
    """Per consumer: when it was first seen (older events are not its business) and, for
    digests, the last schedule slot handled. `generation` makes slot updates compare-and-set."""

    __tablename__ = "notify_cursors"

    consumer: Mapped[str] = mapped_column(String(200), primary_key=True)
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    slot: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    generation: Mapped[int] = mapped_column(Integer, default=0)


class NotifyMessage(Base):
    """One rendered message (digest, alert, webhook batch, source health), never changed, so
    every retry sends the same bytes with the same Message-ID."""

    __tablename__ = "notify_messages"
    __immutable__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # digest, alert, webhook, health
    target: Mapped[str] = mapped_column(String(200))  # profile or webhook name
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    rfc_message_id: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text)  # webhook JSON body
    change_ids: Mapped[str] = mapped_column(Text, default="")  # "12,13,20"
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class NotifyDelivery(Base):
    """One message to one recipient (address or webhook URL): the unit of exactly-once."""

    __tablename__ = "notify_deliveries"
    __table_args__ = (
        UniqueConstraint("message_id", "recipient"),
        Index("ix_notify_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("notify_messages.id"))
    channel: Mapped[str] = mapped_column(String(20))  # email, webhook
    recipient: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(10))  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class DeliveryAttempt(Base):
    """The delivery log: every attempt, its outcome and the server's answer or the error."""

    __tablename__ = "notify_attempts"
    __immutable__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("notify_deliveries.id"), index=True)
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(10))  # sent, error
    detail: Mapped[str | None] = mapped_column(Text)


class SourceHealth(Base):
    """Whether a source was last reported broken, so each break and recovery is told once."""

    __tablename__ = "source_health"

    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[str] = mapped_column(String(10))  # ok, broken
    reason: Mapped[str | None] = mapped_column(Text)
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_run_id: Mapped[int] = mapped_column(Integer, default=0)
    generation: Mapped[int] = mapped_column(Integer, default=0)
