"""Sub-commands for notifications: digest (preview or send now) and outbox (list, retry,
deliver)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.errors import ConfigError

if TYPE_CHECKING:
    from monitor.config import Config, RecipientProfile


def register(commands: Any) -> None:
    """Add this module's parsers to `commands` (argparse sub-parsers); each sets ``handler``."""
    digest = commands.add_parser(
        "digest", help="preview the next digest as HTML, or send digests now"
    )
    action = digest.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--preview", metavar="FILE.html", help="write the HTML digest to FILE (nothing is sent)"
    )
    action.add_argument(
        "--send", action="store_true", help="write every profile's digest now and send it"
    )
    digest.add_argument("--profile", help="only this [[recipients]] profile")
    digest.add_argument("--text", metavar="FILE.txt", help="with --preview: the plain-text part")
    digest.set_defaults(handler=cmd_digest)

    outbox = commands.add_parser("outbox", help="list deliveries; retry a failed one; deliver")
    outbox.add_argument(
        "action",
        nargs="?",
        choices=["list", "retry", "deliver"],
        default="list",
        help="list (default), retry ID (a failed delivery), or deliver what is due now",
    )
    outbox.add_argument("id", nargs="?", type=int, help="delivery id (for retry)")
    outbox.add_argument("--status", choices=["pending", "sent", "failed"])
    outbox.add_argument("--limit", type=int, default=100)
    outbox.set_defaults(handler=cmd_outbox)


def _profiles(config: Config, name: str | None) -> list[RecipientProfile]:
    from notifications.select import effective_profiles

    profiles = [p for p in effective_profiles(config) if p.digest]
    if name is not None:
        chosen = [p for p in effective_profiles(config) if p.name == name]
        if not chosen:
            raise ConfigError(
                f"no [[recipients]] profile named {name!r}",
                path=config.path,
                key="recipients",
                allowed=[p.name for p in effective_profiles(config)],
            )
        return chosen
    return profiles


def cmd_digest(config: Config, args: argparse.Namespace) -> int:
    from monitor.store.core import Store, utcnow
    from notifications.sender import Sender

    profiles = _profiles(config, args.profile)
    if not profiles:
        print("policy-monitor: no [[recipients]] profile with digest = true", file=sys.stderr)
        return 2
    store = Store.open(config.database.url, notice_days=config.notice_days())
    sender = Sender(store, config)
    try:
        now = utcnow()
        if args.preview:
            rendered = sender.planner.preview(profiles[0], now)
            Path(args.preview).write_text(rendered.html, encoding="utf-8")
            if args.text:
                Path(args.text).write_text(rendered.text, encoding="utf-8")
            print(f"{profiles[0].name}: {rendered.subject} (written to {args.preview})")
            return 0
        written = sum(sender.planner.digest(p, now, force=True) for p in profiles)
        report = sender.deliver_due(utcnow())
        print(
            f"{written} digest(s) written; {report.sent} delivered, {report.retrying} to "
            f"retry, {report.failed} failed"
        )
        return 0 if not report.retrying and not report.failed else 1
    finally:
        sender.close()
        store.close()


def cmd_outbox(config: Config, args: argparse.Namespace) -> int:
    from monitor.store.core import Store, utcnow
    from monitor.store.outbox import NotifyStore
    from notifications.sender import Sender

    store = Store.open(config.database.url, notice_days=config.notice_days())
    try:
        notify = NotifyStore(store)
        if args.action == "retry":
            if args.id is None:
                print("policy-monitor: outbox retry needs a delivery ID", file=sys.stderr)
                return 2
            if not notify.retry(args.id, now=utcnow()):
                print(f"delivery {args.id} is not failed (or does not exist)", file=sys.stderr)
                return 1
            print(f"delivery {args.id} queued again")
            return 0
        if args.action == "deliver":
            sender = Sender(store, config)
            try:
                report = sender.run_once()
            finally:
                sender.close()
            print(
                f"{report.planned} message(s) written; {report.sent} delivered, "
                f"{report.retrying} to retry, {report.failed} failed, {report.deferred} deferred"
            )
            return 0
        deliveries = notify.deliveries(status=args.status, limit=args.limit)
        for d in deliveries:
            when = d.sent_at or d.next_attempt_at
            label = "sent" if d.sent_at else "next"
            error = f"  error: {d.last_error}" if d.last_error and d.status != "sent" else ""
            print(
                f"{d.id:>5}  {d.status:7}  {d.kind:7}  {d.recipient[:40]:40}  "
                f"attempts {d.attempts}  {label} {when:%Y-%m-%d %H:%M:%S}  {d.subject[:60]}{error}"
            )
        counts = notify.counts()
        print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "empty")
        return 0
    finally:
        store.close()
