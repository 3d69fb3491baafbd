"""Chat and push notifications through Apprise (``[[notifiers]]``: Slack, Teams, Discord,
ntfy, a JSON endpoint … any Apprise URL): one short message per change batch.

The planner writes them into the outbox like webhook batches (consumer ``notifier:NAME``), so
they share the email's once-only guarantee; `AppriseTransport` delivers one. Apprise reports
failures by return value and log lines, not exceptions: the log lines are captured as the
reason, and every failure is retried (Apprise cannot tell a bad token from a service outage).
The URL, which carries the service's token, is never stored: deliveries name the notifier, and
`monitor.logs.register_url_secrets` masks the URL's token-like parts in every log line.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence

from monitor.config import ApiConfig, NotifierConfig
from monitor.links import change_page_url
from monitor.logs import register_secret
from monitor.report import describe, flag_label
from monitor.store.outbox import Delivery, PendingChange
from notifications.errors import DeliveryError, PermanentDeliveryError
from notifications.select import group_label

CHANNEL = "apprise"
MAX_LISTED = 10  # changes named in one chat message; the rest are counted
_URL_PARTS = re.compile(r"[/?&=#@:]+")
_SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


def recipient_label(notifier: NotifierConfig) -> str:
    """What deliveries and logs show instead of the URL: the notifier and the URL's scheme."""
    return f"{notifier.name} ({notifier.url.split('://', 1)[0]}://…)"


def chat_text(
    changes: Sequence[PendingChange], *, api: ApiConfig, now: dt.datetime
) -> tuple[str, str]:
    """(title, body) of a chat message: the highest severities first, one line per change with
    its issuer, what changed, the date it takes effect, its notice flags and a signed link."""
    ordered = sorted(changes, key=lambda p: (_SEVERITY_ORDER.get(p.change.severity, 3), p.event_id))
    high = sum(p.change.severity == "high" for p in changes)
    title = f"Policy monitor: {len(changes)} change(s)" + (f", {high} high" if high else "")
    lines = []
    for pending in ordered[:MAX_LISTED]:
        change = pending.change
        effective = f"effective {change.effective_date}" if change.effective_date else ""
        notes = [effective, *(flag_label(f) for f in change.flags)]
        when = f" ({'; '.join(n for n in notes if n)})" if any(notes) else ""
        lines.append(
            f"{change.severity.upper()} {group_label(pending)} · {change.title}: "
            f"{describe(change, width=120)}{when}\n  {change_page_url(api, change.id, now=now)}"
        )
    if len(ordered) > MAX_LISTED:
        lines.append(f"… and {len(ordered) - MAX_LISTED} more (see the digest or the API)")
    return title, "\n".join(lines)


class AppriseTransport:
    """Sends a stored chat message to its notifier's URL through Apprise (imported on first
    send: it is large, and the CLI's start-up must not pay for it)."""

    def send(self, delivery: Delivery, notifier: NotifierConfig | None) -> str:
        label = delivery.recipient
        if notifier is None:
            raise PermanentDeliveryError(
                CHANNEL, label, f"notifier {delivery.target!r} is no longer configured"
            )
        import apprise

        service = apprise.Apprise()
        if not service.add(notifier.url):
            raise PermanentDeliveryError(
                CHANNEL, label, "Apprise does not understand this URL (unknown scheme or form)"
            )
        _register_private_parts(service)
        with apprise.LogCapture(level=logging.WARNING) as captured:
            accepted = service.notify(
                body=delivery.body_text,
                title=delivery.subject,
                body_format=apprise.NotifyFormat.TEXT,
            )
        if accepted:
            return "accepted"
        reasons = [line.split(" - ", 2)[-1] for line in captured.getvalue().splitlines()]
        reason = "; ".join(r for r in reasons if r)[:300] or "the service did not accept it"
        raise DeliveryError(CHANNEL, label, reason)

    def close(self) -> None:
        pass


def _register_private_parts(service: object) -> None:
    """Mask what Apprise itself calls private: the parts its privacy form of the URL hides."""
    for plugin in service:  # type: ignore[attr-defined]
        plain = set(_URL_PARTS.split(plugin.url()))
        shown = set(_URL_PARTS.split(plugin.url(privacy=True)))
        for part in plain - shown:
            if len(part) >= 4:
                register_secret(part)
