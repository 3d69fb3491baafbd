"""Turn outbox events into messages: per-profile alerts (batched per window) and digests (on
the digest schedule), and per-webhook and per-notifier (Apprise) change batches.

Each consumer ("alert:NAME", "digest:NAME", "webhook:NAME", "notifier:NAME") claims the events
it covered in the transaction that writes its message (see `monitor.store.outbox`), so a crash
between reading and writing loses nothing, and two instances never write the same message.

Unverified claims (changes the two versions' texts contradict: an extraction error, not a
policy change) are never news: alerts, webhooks and notifiers claim their events without
sending them. A digest lists them in a section of their own, apart from the changes and never
counted among them (its subject counts them apart), to the profiles that would have received
the claim had the texts confirmed it (its filters, judged at the claimed severity).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, replace

from apscheduler.triggers.cron import CronTrigger

from monitor.config import Config, NotifierConfig, RecipientProfile, Schedule, WebhookConfig
from monitor.links import change_page_url
from monitor.store.outbox import Cursor, NewMessage, NotifyStore, PendingChange
from notifications.apprise_notify import CHANNEL as APPRISE_CHANNEL
from notifications.apprise_notify import chat_text, recipient_label
from notifications.render import UNVERIFIED, RenderedEmail, render_changes
from notifications.select import effective_profiles, group_label, matches

log = logging.getLogger("policy_monitor.notifications")

# A consumer seen for the first time covers the events of the last day (changes published
# just before the sender first ran), not the whole history.
FIRST_LOOKBACK = dt.timedelta(days=1)
# A steady stream of changes still sends an alert batch after this many windows.
MAX_BATCH_WINDOWS = 10


def rfc_message_id(idempotency_key: str, from_address: str) -> str:
    """Stable: derived from the idempotency key, so every retry carries the same id."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    domain = from_address.rsplit("@", 1)[-1] or "policy-monitor.invalid"
    return f"<{digest}@{domain}>"


def email_message(
    kind: str,
    profile: RecipientProfile,
    key: str,
    rendered: RenderedEmail,
    config: Config,
    *,
    changes: Sequence[PendingChange] = (),
) -> NewMessage:
    """The outbox message of a rendered email to `profile`; `key` makes it exactly-once."""
    return NewMessage(
        kind=kind,
        target=profile.name,
        idempotency_key=key,
        rfc_message_id=rfc_message_id(key, config.email.from_address),
        subject=rendered.subject,
        body_text=rendered.text,
        body_html=rendered.html,
        change_ids=tuple(p.change.id for p in changes),
        recipients=profile.addresses,
    )


def is_claim(pending: PendingChange) -> bool:
    """An unverified claim: shown apart in digests, never sent as news."""
    return pending.change.severity == UNVERIFIED


def as_claimed(pending: PendingChange) -> PendingChange:
    """An unverified claim as it would have been published had the texts confirmed it (for
    choosing the digests that list it; never rendered)."""
    claimed = pending.change.claimed_severity or "low"
    return replace(pending, change=replace(pending.change, severity=claimed))


def latest_slot(schedule: Schedule, after: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    """The latest time the schedule fired in (after, now], or None (missed slots coalesce)."""
    interval = schedule.interval_seconds
    if interval is not None:
        slot = dt.datetime.fromtimestamp(now.timestamp() // interval * interval, dt.UTC)
        return slot if slot > after else None
    trigger = CronTrigger.from_crontab(schedule.expression, timezone="UTC")
    fire = trigger.get_next_fire_time(None, after + dt.timedelta(seconds=1))
    if fire is None or fire > now:
        return None
    for _ in range(100_000):  # an hourly schedule missed for years is still bounded
        following = trigger.get_next_fire_time(fire, fire + dt.timedelta(seconds=1))
        if following is None or following > now:
            break
        fire = following
    return fire.astimezone(dt.UTC)


class Planner:
    def __init__(self, notify: NotifyStore, config: Config) -> None:
        self.notify = notify
        self.config = config
        self.schedule = Schedule.parse(config.notifications.digest_schedule)

    def plan(self, now: dt.datetime) -> int:
        """Write every message that is due; returns how many were written."""
        written = 0
        for profile in effective_profiles(self.config):
            if profile.alerts:
                written += self._alerts(profile, now)
            if profile.digest:
                written += self.digest(profile, now)
        for hook in self.config.webhooks:
            written += self._webhook(hook, now)
        for notifier in self.config.notifiers:
            written += self._notifier(notifier, now)
        return written

    # -- batches (alerts and webhooks) -----------------------------------------------------

    def _batch(
        self,
        consumer: str,
        filters: RecipientProfile | WebhookConfig | NotifierConfig,
        floor: str,
        now: dt.datetime,
    ) -> tuple[Cursor, list[PendingChange], list[PendingChange]] | None:
        """The pending events and those wanted, once the batch window has passed."""
        cursor = self.notify.cursor(consumer, first_seen=now - FIRST_LOOKBACK)
        pending = self.notify.pending(cursor)
        if not pending:
            return None
        wanted = [p for p in pending if not is_claim(p) and matches(filters, p, min_severity=floor)]
        window = dt.timedelta(seconds=self.config.notifications.alert_window_seconds)
        if wanted:
            newest = max(p.created_at for p in wanted)
            oldest = min(p.created_at for p in wanted)
            # Wait while changes keep arriving (one update publishes many versions), so one
            # update gives one message; a stream that never pauses is cut after some windows.
            if now - newest < window and now - oldest < window * MAX_BATCH_WINDOWS:
                return None
        return cursor, pending, wanted

    def _alerts(self, profile: RecipientProfile, now: dt.datetime) -> int:
        consumer = f"alert:{profile.name}"
        floor = self.config.notifications.alert_min_severity
        batch = self._batch(consumer, profile, floor, now)
        if batch is None:
            return 0
        cursor, pending, wanted = batch
        message = None
        if wanted:
            key = f"{consumer}:{wanted[0].event_id}-{wanted[-1].event_id}:{len(wanted)}"
            rendered = self._render(wanted, kind="alert", profile=profile.name, now=now)
            message = email_message("alert", profile, key, rendered, self.config, changes=wanted)
        return self._commit(cursor, pending, message, now)

    def _webhook(self, hook: WebhookConfig, now: dt.datetime) -> int:
        consumer = f"webhook:{hook.name}"
        batch = self._batch(consumer, hook, hook.min_severity, now)
        if batch is None:
            return 0
        cursor, pending, wanted = batch
        message = None
        if wanted:
            key = f"{consumer}:{wanted[0].event_id}-{wanted[-1].event_id}:{len(wanted)}"
            body = {
                "webhook": hook.name,
                "batch": key,
                "created_at": now.isoformat(),
                "changes": [self._change_json(p, now) for p in wanted],
            }
            message = NewMessage(
                kind="webhook",
                target=hook.name,
                idempotency_key=key,
                rfc_message_id=rfc_message_id(key, self.config.email.from_address),
                subject=f"{len(wanted)} change(s) to webhook {hook.name}",
                body_text=", ".join(f"{p.change.document_id}:{p.change.kind}" for p in wanted),
                payload=json.dumps(body, ensure_ascii=False, sort_keys=True),
                change_ids=tuple(p.change.id for p in wanted),
                channel="webhook",
                recipients=(hook.url,),
            )
        return self._commit(cursor, pending, message, now)

    def _notifier(self, notifier: NotifierConfig, now: dt.datetime) -> int:
        consumer = f"notifier:{notifier.name}"
        batch = self._batch(consumer, notifier, notifier.min_severity, now)
        if batch is None:
            return 0
        cursor, pending, wanted = batch
        message = None
        if wanted:
            key = f"{consumer}:{wanted[0].event_id}-{wanted[-1].event_id}:{len(wanted)}"
            title, body = chat_text(wanted, api=self.config.api, now=now)
            message = NewMessage(
                kind="notifier",
                target=notifier.name,
                idempotency_key=key,
                rfc_message_id=rfc_message_id(key, self.config.email.from_address),
                subject=title,
                body_text=body,
                change_ids=tuple(p.change.id for p in wanted),
                channel=APPRISE_CHANNEL,
                recipients=(recipient_label(notifier),),
            )
        return self._commit(cursor, pending, message, now)

    def _change_json(self, pending: PendingChange, now: dt.datetime) -> dict[str, object]:
        data = asdict(pending.change)
        data["effective_date"] = (
            pending.change.effective_date.isoformat() if pending.change.effective_date else None
        )
        data["detected_at"] = pending.change.detected_at.isoformat()
        data["issuer"] = group_label(pending)
        data["change_url"] = change_page_url(self.config.api, pending.change.id, now=now)
        return data

    # -- digests ---------------------------------------------------------------------------

    def _digest_cursor(self, profile: RecipientProfile, now: dt.datetime) -> Cursor:
        # A new profile's first digest is at the first scheduled time after it appeared.
        return self.notify.cursor(
            f"digest:{profile.name}", first_seen=now - FIRST_LOOKBACK, slot=now
        )

    def digest_changes(
        self, profile: RecipientProfile, now: dt.datetime
    ) -> tuple[Cursor, list[PendingChange], list[PendingChange]]:
        cursor = self._digest_cursor(profile, now)
        pending = self.notify.pending(cursor)
        floor = profile.min_severity
        wanted = [p for p in pending if not is_claim(p) and matches(profile, p, min_severity=floor)]
        claims = [
            p
            for p in pending
            if is_claim(p) and matches(profile, as_claimed(p), min_severity=floor)
        ]
        return cursor, pending, wanted + claims

    def preview(self, profile: RecipientProfile, now: dt.datetime) -> RenderedEmail:
        """The digest `profile` would get now, without writing anything."""
        _cursor, _pending, wanted = self.digest_changes(profile, now)
        return self._render(wanted, kind="digest", profile=profile.name, now=now)

    def digest(self, profile: RecipientProfile, now: dt.datetime, *, force: bool = False) -> int:
        """Write `profile`'s digest when its schedule fired (or now, with `force`)."""
        cursor = self._digest_cursor(profile, now)
        slot = now if force else latest_slot(self.schedule, cursor.slot or now, now)
        if slot is None:
            return 0
        cursor, pending, wanted = self.digest_changes(profile, now)
        message = None
        if wanted or self.config.notifications.send_empty_digest:
            key = f"digest:{profile.name}:{slot.isoformat()}"
            rendered = self._render(wanted, kind="digest", profile=profile.name, now=now)
            message = email_message("digest", profile, key, rendered, self.config, changes=wanted)
        return self._commit(cursor, pending, message, now, new_slot=slot)

    # -- shared ----------------------------------------------------------------------------

    def _render(
        self, changes: Sequence[PendingChange], *, kind: str, profile: str, now: dt.datetime
    ) -> RenderedEmail:
        return render_changes(
            changes,
            kind=kind,
            profile=profile,
            api=self.config.api,
            now=now,
            max_changes=self.config.notifications.digest_max_changes,
        )

    def _commit(
        self,
        cursor: Cursor,
        pending: Sequence[PendingChange],
        message: NewMessage | None,
        now: dt.datetime,
        *,
        new_slot: dt.datetime | None = None,
    ) -> int:
        result = self.notify.commit(
            cursor,
            claim=[p.event_id for p in pending],
            message=message,
            now=now,
            new_slot=new_slot,
        )
        if result is False:
            log.info("%s: another instance handled these events first", cursor.consumer)
            return 0
        if message is not None and result is not None:
            log.info(
                "message written",
                extra={"consumer": cursor.consumer, "message_id": result, "changes": len(pending)},
            )
            return 1
        return 0
