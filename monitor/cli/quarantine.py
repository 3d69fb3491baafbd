"""Sub-commands for held versions: ``quarantine list|show ID|approve ID|reject ID``."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.pipeline.quarantine import QuarantineRecord


# monitor.store.models.quarantine.STATUSES (tests/test_cli_startup.py keeps the two equal).
STATUSES = ("pending", "approved", "rejected", "superseded")


def register(commands: Any) -> None:
    """Add this module's parsers to `commands` (argparse sub-parsers); each sets ``handler``."""
    quarantine = commands.add_parser(
        "quarantine",
        help="versions held for review (they drop most of their predecessor's codes or "
        "criteria): list, show, approve, reject",
    )
    actions = quarantine.add_subparsers(dest="quarantine_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="held versions (default: pending ones)")
    listing.add_argument(
        "--status",
        choices=[*STATUSES, "all"],
        default="pending",
        help="which ones (default: pending)",
    )
    listing.set_defaults(handler=cmd_list)
    show = actions.add_parser("show", help="one held version and what was extracted from it")
    show.add_argument("id", type=int)
    show.set_defaults(handler=cmd_show)
    decisions = (
        ("approve", "publish it as the document's new version"),
        ("reject", "keep it out; the document stays at its last version"),
    )
    for name, verb in decisions:
        decide = actions.add_parser(name, help=verb)
        decide.add_argument("id", type=int)
        decide.add_argument("--reviewer", required=True, help="who decided")
        decide.add_argument("--note", default="", help="why")
        decide.set_defaults(handler=cmd_decide, decision=name)


def _line(record: QuarantineRecord) -> str:
    version = record.source_version or (
        str(record.version_number) if record.version_number is not None else "-"
    )
    return (
        f"{record.id:>5}  {record.status:10}  {record.detected_at:%Y-%m-%d %H:%M}  "
        f"{record.source}  {record.document}  v{version}  {record.reason}"
    )


def cmd_list(config: Config, args: argparse.Namespace) -> int:
    from monitor.pipeline.quarantine import list_quarantined
    from monitor.store.core import Store

    store = Store.open(config.database.url)
    try:
        status = None if args.status == "all" else args.status
        records = list_quarantined(store, status=status)
        for record in records:
            print(_line(record))
        if not records:
            print(f"no {'' if status is None else status + ' '}quarantined versions")
        return 0
    finally:
        store.close()


def cmd_show(config: Config, args: argparse.Namespace) -> int:
    from monitor.pipeline.quarantine import QuarantineError, get_quarantined, held_criteria
    from monitor.store.core import Store

    store = Store.open(config.database.url)
    try:
        try:
            record = get_quarantined(store, args.id)
            criteria = held_criteria(store, args.id)
        except QuarantineError as exc:
            print(f"policy-monitor: {exc}", file=sys.stderr)
            return 1
        print(_line(record))
        print(f"  title:    {record.title}")
        print(f"  url:      {record.url}")
        print(f"  sha256:   {record.content_sha256}")
        print(
            f"  previous: {record.old_codes} codes, {record.old_items} criteria items; "
            f"dropped {record.dropped_codes} codes, {record.dropped_items} items"
        )
        print(
            f"  held:     status {criteria.status}, {len(criteria.codes)} codes, "
            f"{len(criteria.drugs)} drugs, {len(criteria.step_therapy)} step therapies, "
            f"{len(criteria.prior_auth)} PA, {len(criteria.thresholds)} thresholds"
        )
        if record.decided_at is not None:
            print(
                f"  decided:  {record.status} by {record.reviewer or '-'} at "
                f"{record.decided_at:%Y-%m-%d %H:%M}{': ' + record.note if record.note else ''}"
            )
        return 0
    finally:
        store.close()


def cmd_decide(config: Config, args: argparse.Namespace) -> int:
    from monitor.pipeline.quarantine import QuarantineError, approve, reject
    from monitor.store.core import Store

    store = Store.open(config.database.url)
    try:
        decide = approve if args.decision == "approve" else reject
        try:
            record = decide(store, args.id, reviewer=args.reviewer, note=args.note)
        except QuarantineError as exc:
            print(f"policy-monitor: {exc}", file=sys.stderr)
            return 1
        published = f"; published as version id {record.version_id}" if record.version_id else ""
        print(f"quarantine #{record.id} {record.status} by {record.reviewer}{published}")
        return 0
    finally:
        store.close()
