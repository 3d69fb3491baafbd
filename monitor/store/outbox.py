"""The outbox: rows written in the same transaction as the changes they announce, and the store
API that `notifications/` uses to turn them into messages and deliver those exactly once.

What is announced: changes that are neither baseline (a source's first run lists what exists;
nothing is news yet) nor `noise` (re-prints, stamps): `enqueue_changes` writes no event for
them, in one INSERT … SELECT so a 3,500-version baseline costs one cheap statement per version.
An `unverified` change (a claim the two versions' texts contradict: an extraction error, not a
policy change) does get an event, so that scheduled digests list it in a section of its own;
it is never news: alerts, webhooks and notifiers claim it without sending it, and a digest
never counts it among the changes (`notifications.planner`).

Exactly once per (message, recipient):
- a consumer (a profile's alerts or digest, a webhook) claims the events it covers in the same
  transaction that writes its message and deliveries; the (consumer, event) primary key makes a
  second instance's identical claim fail, so its whole transaction is dropped;
- a delivery is sent only by the instance that leased it (`claim_delivery`: a conditional
  UPDATE on status and lease), and is marked sent in its own transaction right after the
  server accepted it. If the process dies between the two, the lease runs out and the delivery
  is sent again: at least once in that window, with the same stored Message-ID, by which a
  receiver (or a mail filter) recognises the copy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from diffing.model import Criteria, Severity
from diffing.serialize import criteria_from_json
from monitor.store.core import ChangeRecord, Store, decompress, utcnow
from monitor.store.inserts import insert_ignoring_duplicates
from monitor.store.models.core import ChangeRow, CriteriaRow, SourceRow, SourceRun
from monitor.store.models.notify import (
    ConsumedEvent,
    DeliveryAttempt,
    NotifyCursor,
    NotifyDelivery,
    NotifyMessage,
    OutboxEvent,
    SourceHealth,
)

_CHUNK = 500  # ids per IN (…): far below SQLite's and PostgreSQL's parameter limits


def enqueue_changes(session: Session, change_ids: Sequence[int]) -> None:
    """Record, inside the publishing transaction, that `change_ids` are to be announced
    (baseline and noise changes are not; unverified claims only to digests: see the module
    docstring)."""
    now = utcnow()
    for start in range(0, len(change_ids), _CHUNK):
        chunk = list(change_ids[start : start + _CHUNK])
        session.execute(
            insert(OutboxEvent).from_select(
                ["change_id", "created_at"],
                select(ChangeRow.id, literal(now, OutboxEvent.created_at.type)).where(
                    ChangeRow.id.in_(chunk),
                    ChangeRow.baseline.is_(False),
                    ChangeRow.severity != Severity.NOISE.value,
                ),
            )
        )


@dataclass(frozen=True, kw_only=True)
class ChangeFacets:
    """What filters and grouping need to know about a changed document (from its criteria,
    before and after the change): who issued it and which codes and drugs it is about."""

    payer: str | None = None
    contractors: tuple[str, ...] = ()
    codes: frozenset[str] = frozenset()
    drugs: frozenset[str] = frozenset()  # generic names and classes, lower case


@dataclass(frozen=True, kw_only=True)
class PendingChange:
    """An outbox event a consumer has not dealt with yet, with its change and facets."""

    event_id: int
    created_at: dt.datetime
    change: ChangeRecord
    facets: ChangeFacets


@dataclass(frozen=True, kw_only=True)
class NewMessage:
    kind: str  # digest, alert, webhook, health
    target: str
    idempotency_key: str
    rfc_message_id: str
    subject: str
    body_text: str
    body_html: str | None = None
    payload: str | None = None
    change_ids: tuple[int, ...] = ()
    channel: str = "email"
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Cursor:
    consumer: str
    since: dt.datetime
    slot: dt.datetime | None
    generation: int


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """A delivery with its message: everything needed to send it or show it."""

    id: int
    message_id: int
    kind: str
    target: str
    channel: str
    recipient: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    sent_at: dt.datetime | None
    rfc_message_id: str
    subject: str
    body_text: str
    body_html: str | None
    payload: str | None
    created_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class RunInfo:
    id: int
    outcome: str
    listed: int
    new_versions: int
    error: str | None


@dataclass(frozen=True, kw_only=True)
class HealthState:
    source: str
    state: str  # ok, broken
    reason: str | None
    last_run_id: int
    generation: int


class _Lost(Exception):
    """Another instance got there first: roll the transaction back, write nothing."""


def _is_empty(criteria: Criteria) -> bool:
    """Extraction found nothing: no codes, no text, no payer criteria."""
    return not (
        criteria.codes
        or any(s.text.strip() for s in criteria.sections)
        or criteria.drugs
        or criteria.step_therapy
        or criteria.prior_auth
        or criteria.thresholds
        or criteria.approval_periods
    )


class NotifyStore:
    """Everything `notifications/` reads and writes, as typed values (no models leak out)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._criteria: dict[int, Criteria] = {}

    # -- consumers and events --------------------------------------------------------------

    def cursor(
        self, consumer: str, *, first_seen: dt.datetime, slot: dt.datetime | None = None
    ) -> Cursor:
        """The consumer's cursor; created, when new, with `first_seen` (older events are not
        its business) and `slot` (a digest's first scheduled time comes after it)."""
        with self.store.session() as s:
            row = s.get(NotifyCursor, consumer)
            if row is None:
                insert_ignoring_duplicates(
                    s,
                    NotifyCursor,
                    [{"consumer": consumer, "since": first_seen, "slot": slot, "generation": 0}],
                )
                row = s.get_one(NotifyCursor, consumer)
            return Cursor(
                consumer=consumer,
                since=row.since,
                slot=row.slot,
                generation=row.generation,
            )

    def pending(self, cursor: Cursor, *, limit: int = 5000) -> list[PendingChange]:
        """Events since the cursor's start that `cursor.consumer` has not claimed, oldest first."""
        claimed = select(ConsumedEvent.event_id).where(ConsumedEvent.consumer == cursor.consumer)
        with self.store.session() as s:
            rows = s.execute(
                select(OutboxEvent.id, OutboxEvent.change_id, OutboxEvent.created_at)
                .where(OutboxEvent.created_at >= cursor.since, OutboxEvent.id.not_in(claimed))
                .order_by(OutboxEvent.id)
                .limit(limit)
            ).all()
        if not rows:
            return []
        records = {c.id: c for c in self.store.changes(ids=[r.change_id for r in rows])}
        facets = self.facets([r.change_id for r in rows])
        return [
            PendingChange(
                event_id=r.id,
                created_at=r.created_at,
                change=records[r.change_id],
                facets=facets[r.change_id],
            )
            for r in rows
            if r.change_id in records
        ]

    def facets(self, change_ids: Sequence[int]) -> dict[int, ChangeFacets]:
        """Payer or contractors, codes and drugs of each change's document (both versions)."""
        with self.store.session() as s:
            rows = s.execute(
                select(ChangeRow.id, ChangeRow.version_id, ChangeRow.previous_version_id).where(
                    ChangeRow.id.in_(list(change_ids))
                )
            ).all()
        out = {}
        for change_id, version_id, previous_id in rows:
            versions = [self._criteria_of(v) for v in (version_id, previous_id) if v is not None]
            out[change_id] = ChangeFacets(
                payer=next((c.payer for c in versions if c.payer), None),
                contractors=tuple(dict.fromkeys(n for c in versions for n in c.contractors)),
                codes=frozenset(code.code for c in versions for code in c.codes),
                drugs=frozenset(
                    name.lower()
                    for c in versions
                    for name in (
                        *(d.name for d in c.drugs),
                        *(d.drug_class for d in c.drugs if d.drug_class),
                        *(t.drug for t in c.step_therapy if t.drug),
                        *(p.drug for p in c.prior_auth if p.drug),
                    )
                ),
            )
        return out

    def _criteria_of(self, version_id: int) -> Criteria:
        # Versions are immutable, so a cache never goes stale; bounded to keep memory flat.
        if version_id not in self._criteria:
            if len(self._criteria) > 2000:
                self._criteria.clear()
            with self.store.session() as s:
                row = s.get_one(CriteriaRow, version_id)
                self._criteria[version_id] = criteria_from_json(decompress(row.data))
        return self._criteria[version_id]

    def commit(
        self,
        cursor: Cursor,
        *,
        claim: Iterable[int],
        message: NewMessage | None,
        now: dt.datetime,
        new_slot: dt.datetime | None = None,
    ) -> int | bool | None:
        """In one transaction: move the digest slot (compare-and-set on the generation), claim
        the events, write the message and one pending delivery per recipient.

        Returns the message row id (None when there was no message), or False when another
        instance claimed first: then nothing was written."""
        event_ids = sorted(set(claim))
        try:
            with self.store.session() as s:
                if new_slot is not None:
                    moved = s.execute(
                        update(NotifyCursor)
                        .where(
                            NotifyCursor.consumer == cursor.consumer,
                            NotifyCursor.generation == cursor.generation,
                        )
                        .values(slot=new_slot, generation=cursor.generation + 1)
                    )
                    if moved.rowcount != 1:  # type: ignore[attr-defined]
                        raise _Lost
                message_id = self._insert_message(s, message, now) if message else None
                if message is not None and message_id is None:
                    raise _Lost  # its idempotency key exists: this batch was written already
                rows: list[dict[str, object]] = [
                    {"consumer": cursor.consumer, "event_id": e, "message_id": message_id}
                    for e in event_ids
                ]
                for start in range(0, len(rows), _CHUNK):
                    chunk = rows[start : start + _CHUNK]
                    if insert_ignoring_duplicates(s, ConsumedEvent, chunk) != len(chunk):
                        raise _Lost
                return message_id
        except _Lost:
            return False

    def add_message(self, message: NewMessage, *, now: dt.datetime) -> int | None:
        """Write a message not tied to events (source health); None when its idempotency key
        was written already."""
        with self.store.session() as s:
            return self._insert_message(s, message, now)

    def _insert_message(self, s: Session, message: NewMessage, now: dt.datetime) -> int | None:
        written = insert_ignoring_duplicates(
            s,
            NotifyMessage,
            [
                {
                    "kind": message.kind,
                    "target": message.target,
                    "idempotency_key": message.idempotency_key,
                    "rfc_message_id": message.rfc_message_id,
                    "subject": message.subject,
                    "body_text": message.body_text,
                    "body_html": message.body_html,
                    "payload": message.payload,
                    "change_ids": ",".join(str(i) for i in message.change_ids),
                    "created_at": now,
                }
            ],
        )
        if written != 1:
            return None
        message_id = s.scalar(
            select(NotifyMessage.id).where(NotifyMessage.idempotency_key == message.idempotency_key)
        )
        assert message_id is not None
        insert_ignoring_duplicates(
            s,
            NotifyDelivery,
            [
                {
                    "message_id": message_id,
                    "channel": message.channel,
                    "recipient": recipient,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for recipient in dict.fromkeys(message.recipients)
            ],
        )
        return message_id

    # -- deliveries ------------------------------------------------------------------------

    def due_deliveries(self, now: dt.datetime, *, limit: int = 100) -> list[int]:
        with self.store.session() as s:
            return list(
                s.scalars(
                    select(NotifyDelivery.id)
                    .where(
                        NotifyDelivery.status == "pending",
                        NotifyDelivery.next_attempt_at <= now,
                        or_(
                            NotifyDelivery.lease_until.is_(None),
                            NotifyDelivery.lease_until < now,
                        ),
                    )
                    .order_by(NotifyDelivery.next_attempt_at, NotifyDelivery.id)
                    .limit(limit)
                )
            )

    def claim_delivery(
        self, delivery_id: int, *, owner: str, now: dt.datetime, lease_until: dt.datetime
    ) -> Delivery | None:
        """Lease the delivery to `owner` if it is still pending and unleased (or its lease ran
        out); None when another instance holds it or it was sent meanwhile."""
        with self.store.session() as s:
            claimed = s.execute(
                update(NotifyDelivery)
                .where(
                    NotifyDelivery.id == delivery_id,
                    NotifyDelivery.status == "pending",
                    or_(NotifyDelivery.lease_until.is_(None), NotifyDelivery.lease_until < now),
                )
                .values(lease_until=lease_until, lease_owner=owner)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
        found = self.deliveries(ids=[delivery_id])
        return found[0] if found else None

    def mark_sent(self, delivery_id: int, *, owner: str, now: dt.datetime, detail: str) -> bool:
        with self.store.session() as s:
            done = s.execute(
                update(NotifyDelivery)
                .where(NotifyDelivery.id == delivery_id, NotifyDelivery.lease_owner == owner)
                .values(
                    status="sent",
                    sent_at=now,
                    attempts=NotifyDelivery.attempts + 1,
                    lease_until=None,
                    last_error=None,
                )
            )
            s.add(
                DeliveryAttempt(
                    delivery_id=delivery_id, attempted_at=now, outcome="sent", detail=detail
                )
            )
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def mark_failed(
        self,
        delivery_id: int,
        *,
        owner: str,
        now: dt.datetime,
        error: str,
        retry_at: dt.datetime | None,
    ) -> None:
        """Record a failed attempt: retried at `retry_at`, or given up (status failed)."""
        with self.store.session() as s:
            s.execute(
                update(NotifyDelivery)
                .where(NotifyDelivery.id == delivery_id, NotifyDelivery.lease_owner == owner)
                .values(
                    status="pending" if retry_at is not None else "failed",
                    attempts=NotifyDelivery.attempts + 1,
                    next_attempt_at=retry_at or now,
                    lease_until=None,
                    last_error=error,
                )
            )
            s.add(
                DeliveryAttempt(
                    delivery_id=delivery_id, attempted_at=now, outcome="error", detail=error
                )
            )

    def release(self, delivery_id: int, *, owner: str) -> None:
        """Give back a leased delivery without an attempt (the round was cut short)."""
        with self.store.session() as s:
            s.execute(
                update(NotifyDelivery)
                .where(NotifyDelivery.id == delivery_id, NotifyDelivery.lease_owner == owner)
                .values(lease_until=None, lease_owner=None)
            )

    def retry(self, delivery_id: int, *, now: dt.datetime) -> bool:
        """Put a failed delivery back in the queue, due now; False if it is not failed."""
        with self.store.session() as s:
            done = s.execute(
                update(NotifyDelivery)
                .where(NotifyDelivery.id == delivery_id, NotifyDelivery.status == "failed")
                .values(status="pending", attempts=0, next_attempt_at=now, lease_until=None)
            )
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def deliveries(
        self,
        *,
        status: str | None = None,
        ids: Sequence[int] | None = None,
        limit: int | None = None,
    ) -> list[Delivery]:
        query = (
            select(NotifyDelivery, NotifyMessage)
            .join(NotifyMessage, NotifyDelivery.message_id == NotifyMessage.id)
            .order_by(NotifyDelivery.id)
        )
        if status is not None:
            query = query.where(NotifyDelivery.status == status)
        if ids is not None:
            query = query.where(NotifyDelivery.id.in_(list(ids)))
        if limit is not None:
            query = query.limit(limit)
        with self.store.session() as s:
            return [
                Delivery(
                    id=d.id,
                    message_id=m.id,
                    kind=m.kind,
                    target=m.target,
                    channel=d.channel,
                    recipient=d.recipient,
                    status=d.status,
                    attempts=d.attempts,
                    next_attempt_at=d.next_attempt_at,
                    last_error=d.last_error,
                    sent_at=d.sent_at,
                    rfc_message_id=m.rfc_message_id,
                    subject=m.subject,
                    body_text=m.body_text,
                    body_html=m.body_html,
                    payload=m.payload,
                    created_at=m.created_at,
                )
                for d, m in s.execute(query)
            ]

    def attempts(self, delivery_id: int) -> list[tuple[dt.datetime, str, str | None]]:
        """The delivery log of one delivery: (when, sent|error, detail)."""
        with self.store.session() as s:
            return [
                (when, outcome, detail)
                for when, outcome, detail in s.execute(
                    select(
                        DeliveryAttempt.attempted_at,
                        DeliveryAttempt.outcome,
                        DeliveryAttempt.detail,
                    )
                    .where(DeliveryAttempt.delivery_id == delivery_id)
                    .order_by(DeliveryAttempt.id)
                )
            ]

    # -- source health ---------------------------------------------------------------------

    def finished_runs(self, source: str, *, limit: int) -> list[RunInfo]:
        """The source's latest finished runs, newest first."""
        with self.store.session() as s:
            return [
                RunInfo(
                    id=r.id,
                    outcome=r.outcome,
                    listed=r.listed,
                    new_versions=r.new_versions,
                    error=r.error,
                )
                for r in s.scalars(
                    select(SourceRun)
                    .join(SourceRow, SourceRun.source_id == SourceRow.id)
                    .where(SourceRow.name == source, SourceRun.outcome != "running")
                    .order_by(SourceRun.id.desc())
                    .limit(limit)
                )
            ]

    def emptied_versions(self, run_id: int, *, sample: int = 20) -> tuple[int, int]:
        """Of (up to `sample`) versions published by the run that had a predecessor with
        criteria: (how many were looked at, how many came out empty where it was not)."""
        with self.store.session() as s:
            pairs = s.execute(
                select(ChangeRow.version_id, ChangeRow.previous_version_id)
                .where(ChangeRow.run_id == run_id, ChangeRow.previous_version_id.is_not(None))
                .distinct()
                .limit(sample)
            ).all()
        looked = emptied = 0
        for version_id, previous_id in pairs:
            previous = self._criteria_of(previous_id)
            if _is_empty(previous):
                continue
            looked += 1
            emptied += _is_empty(self._criteria_of(version_id))
        return looked, emptied

    def health(self, source: str) -> HealthState | None:
        with self.store.session() as s:
            row = s.get(SourceHealth, source)
            if row is None:
                return None
            return HealthState(
                source=source,
                state=row.state,
                reason=row.reason,
                last_run_id=row.last_run_id,
                generation=row.generation,
            )

    def set_health(
        self,
        source: str,
        *,
        expected: HealthState | None,
        state: str,
        reason: str | None,
        run_id: int,
        now: dt.datetime,
        message: NewMessage | None,
    ) -> bool:
        """Compare-and-set the source's health (and write the message telling of the change
        in the same transaction); False when another instance changed it first."""
        try:
            with self.store.session() as s:
                if expected is None:
                    row: dict[str, object] = {
                        "source": source,
                        "state": state,
                        "reason": reason,
                        "since": now,
                        "last_run_id": run_id,
                        "generation": 1,
                    }
                    if insert_ignoring_duplicates(s, SourceHealth, [row]) != 1:
                        raise _Lost
                else:
                    values: dict[str, object] = {
                        "last_run_id": run_id,
                        "generation": expected.generation + 1,
                    }
                    if state != expected.state:
                        values.update(state=state, reason=reason, since=now)
                    moved = s.execute(
                        update(SourceHealth)
                        .where(
                            SourceHealth.source == source,
                            SourceHealth.generation == expected.generation,
                        )
                        .values(**values)
                    )
                    if moved.rowcount != 1:  # type: ignore[attr-defined]
                        raise _Lost
                if message is not None:
                    self._insert_message(s, message, now)
                return True
        except _Lost:
            return False

    def counts(self) -> dict[str, int]:
        """Deliveries by status (for `outbox` and metrics)."""
        with self.store.session() as s:
            return {
                status: int(n)
                for status, n in s.execute(
                    select(NotifyDelivery.status, func.count()).group_by(NotifyDelivery.status)
                )
            }
