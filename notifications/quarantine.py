"""The operators' email about a quarantined version: written once per held version, to the
operators profile, and delivered by the sender like every other message (retries, backoff,
exactly once per recipient).

Once: the message's idempotency key is ``quarantine:<id>``, so a second instance (or a retry
after a crash between writing the message and marking the row) writes nothing new; the row's
``alerted_at`` keeps later rounds from looking at it again.
"""

from __future__ import annotations

import datetime as dt
import logging

from monitor.config import Config
from monitor.pipeline.quarantine import QuarantineRecord, mark_alerted, unalerted
from monitor.store.outbox import NotifyStore
from notifications.planner import email_message
from notifications.render import SUBJECT_CHARS, RenderedEmail, clip, render_email
from notifications.select import operators_profile

log = logging.getLogger("policy_monitor.notifications")


def render_quarantine(record: QuarantineRecord) -> RenderedEmail:
    """The operators' email (its HTML autoescaped, like every template's: titles and URLs come
    from fetched documents)."""
    url = record.url if record.url.lower().startswith(("http://", "https://")) else ""
    version = record.source_version or (
        str(record.version_number) if record.version_number is not None else "new"
    )
    subject = clip(
        f"Quarantined: {record.document} ({record.source}) {record.reason}", SUBJECT_CHARS
    )
    context = {
        "id": record.id,
        "source": clip(record.source, 100),
        "document": clip(record.document, 200),
        "title": clip(record.title, 160),
        "version": clip(version, 100),
        "reason": clip(record.reason, 1000),
        "url": clip(url, 2000),
        "when": record.detected_at.isoformat(timespec="seconds"),
        "subject": subject,
    }
    text, html = render_email("quarantine", context)
    return RenderedEmail(subject=subject, text=text, html=html)


def announce_quarantines(notify: NotifyStore, config: Config, now: dt.datetime) -> int:
    """Write one operators' message per pending quarantined version not announced yet;
    returns how many were written. Without an operators profile nothing is written (nor
    marked, so configuring one later still tells of the versions still pending)."""
    operators = operators_profile(config)
    if operators is None:
        return 0
    written = 0
    for record in unalerted(notify.store):
        key = f"quarantine:{record.id}"
        rendered = render_quarantine(record)
        message = email_message("quarantine", operators, key, rendered, config)
        if notify.add_message(message, now=now) is not None:
            written += 1
            log.warning(
                "quarantined #%d %s (%s): %s",
                record.id,
                record.document,
                record.source,
                record.reason,
            )
        mark_alerted(notify.store, record.id, now=now)
    return written
