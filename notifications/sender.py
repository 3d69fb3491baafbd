"""The sender: plan due messages, then deliver due deliveries with retries and backoff.

`Sender.run_once(now)` does one round (tests inject `now`); `run_sender_loop` repeats it every
`poll_seconds` until a stop event is set (the daemon runs it in a thread). Any number of
instances may run against one database: a delivery is sent only by the instance holding its
lease, and marked sent in its own transaction as soon as the server accepted it (see
`monitor.store.outbox` for the one window in which a message can be sent twice, and why receivers
can tell).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import socket
import threading
import uuid
from dataclasses import dataclass

from monitor.config import Config
from monitor.errors import MonitorError
from monitor.store.core import Store, utcnow
from monitor.store.outbox import Delivery, NotifyStore
from notifications.apprise_notify import CHANNEL as APPRISE_CHANNEL
from notifications.apprise_notify import AppriseTransport
from notifications.errors import DeliveryError, PermanentDeliveryError
from notifications.health import check_sources
from notifications.planner import Planner
from notifications.smtp import SmtpTransport, SmtpUnavailable, build_email
from notifications.webhooks import WebhookTransport

log = logging.getLogger("policy_monitor.notifications")


@dataclass(frozen=True, kw_only=True)
class RoundReport:
    """What one round did."""

    planned: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    deferred: int = 0  # left for the next round: the SMTP server was unreachable


def backoff(attempts: int, *, base: float, cap: float, rng: random.Random) -> dt.timedelta:
    """Exponential (base, 2 base, 4 base … at most `cap`), jittered to 50-100 % so deliveries
    that failed together do not all come back at the same second."""
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return dt.timedelta(seconds=delay * (0.5 + 0.5 * rng.random()))


def instance_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Sender:
    def __init__(
        self,
        store: Store,
        config: Config,
        *,
        owner: str | None = None,
        smtp: SmtpTransport | None = None,
        webhooks: WebhookTransport | None = None,
        notifiers: AppriseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.notify = NotifyStore(store)
        self.planner = Planner(self.notify, config)
        self.owner = owner or instance_owner()
        self.smtp = smtp or SmtpTransport(config.email)
        self.webhooks = webhooks or WebhookTransport()
        self.notifiers = notifiers or AppriseTransport()
        self.rng = rng or random.Random()

    def run_once(self, now: dt.datetime | None = None) -> RoundReport:
        """Write due messages (alerts, digests, webhook and chat batches, source health), then send
        what is due."""
        now = now or utcnow()
        planned = 0
        if self.config.notifications.enabled:
            planned = self.planner.plan(now) + check_sources(self.notify, self.config, now)
        report = self.deliver_due(now)
        return RoundReport(
            planned=planned,
            sent=report.sent,
            retrying=report.retrying,
            failed=report.failed,
            deferred=report.deferred,
        )

    def deliver_due(self, now: dt.datetime, *, limit: int = 200) -> RoundReport:
        settings = self.config.notifications
        sent = retrying = failed = deferred = 0
        smtp_down = False
        try:
            for delivery_id in self.notify.due_deliveries(now, limit=limit):
                lease_until = now + dt.timedelta(seconds=settings.lease_seconds)
                delivery = self.notify.claim_delivery(
                    delivery_id, owner=self.owner, now=now, lease_until=lease_until
                )
                if delivery is None:
                    continue  # another instance has it, or sent it meanwhile
                if smtp_down and delivery.channel == "email":
                    self._release(delivery, now)
                    deferred += 1
                    continue
                try:
                    detail = self._send(delivery)
                except DeliveryError as exc:
                    smtp_down = smtp_down or isinstance(exc, SmtpUnavailable)
                    attempts = delivery.attempts + 1
                    give_up = (
                        isinstance(exc, PermanentDeliveryError) or attempts >= settings.max_attempts
                    )
                    retry_at = None
                    if not give_up:
                        retry_at = now + backoff(
                            attempts,
                            base=settings.backoff_seconds,
                            cap=settings.max_backoff_seconds,
                            rng=self.rng,
                        )
                    self.notify.mark_failed(
                        delivery.id, owner=self.owner, now=now, error=str(exc), retry_at=retry_at
                    )
                    log.warning(
                        "delivery %d (%s to %s) failed, attempt %d: %s%s",
                        delivery.id,
                        delivery.kind,
                        delivery.recipient,
                        attempts,
                        exc,
                        "; giving up" if give_up else f"; retry at {retry_at:%H:%M:%S}",
                    )
                    if give_up:
                        failed += 1
                    else:
                        retrying += 1
                    continue
                # Its own transaction, straight after the server said yes: the window in which
                # a crash makes this message go out twice is this one statement.
                self.notify.mark_sent(delivery.id, owner=self.owner, now=utcnow(), detail=detail)
                sent += 1
                log.info(
                    "delivered",
                    extra={
                        "delivery": delivery.id,
                        "kind": delivery.kind,
                        "to": delivery.recipient,
                    },
                )
        finally:
            self.smtp.close()
        return RoundReport(sent=sent, retrying=retrying, failed=failed, deferred=deferred)

    def _release(self, delivery: Delivery, now: dt.datetime) -> None:
        """Give a claimed delivery back untouched (no attempt was made)."""
        self.notify.release(delivery.id, owner=self.owner)

    def _send(self, delivery: Delivery) -> str:
        if delivery.channel == "webhook":
            hook = next((h for h in self.config.webhooks if h.name == delivery.target), None)
            return self.webhooks.send(delivery, hook)
        if delivery.channel == APPRISE_CHANNEL:
            notifier = next((n for n in self.config.notifiers if n.name == delivery.target), None)
            return self.notifiers.send(delivery, notifier)
        message = build_email(delivery, from_address=self.config.email.from_address)
        return self.smtp.send(message, delivery.recipient)

    def close(self) -> None:
        self.smtp.close()
        self.webhooks.close()
        self.notifiers.close()


def run_sender_loop(
    store: Store,
    config: Config,
    stop: threading.Event,
    *,
    sender: Sender | None = None,
) -> None:
    """Run rounds every `[notifications] poll_seconds` until `stop` is set (a daemon thread).
    A failing round is logged and the next one tried: the outbox keeps what was not sent."""
    sender = sender or Sender(store, config)
    try:
        while not stop.is_set():
            try:
                sender.run_once()
            except MonitorError as exc:
                log.error("notification round failed: %s", exc)
            except Exception:  # a bug must not stop notifications for good
                log.exception("notification round crashed")
            stop.wait(config.notifications.poll_seconds)
    finally:
        sender.close()
