"""Sub-command ``compare``: one drug's criteria side by side, one row per payer, the strictest
value of each column marked with `*` (JSON with `--format json`)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.api.compare import Comparison
    from monitor.config import Config


# monitor.api.compare.CRITERIA (tests/test_cli_startup.py keeps the two equal).
CRITERIA = ("step_therapy", "threshold", "approval_period", "prior_auth", "age_limit")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date (e.g. 2026-11-01)") from exc


def register(commands: Any) -> None:
    """Add this module's parser to `commands` (argparse sub-parsers); it sets ``handler``."""
    compare = commands.add_parser(
        "compare", help="one drug's criteria across payers, the strictest of each marked"
    )
    compare.add_argument("--drug", required=True, help="generic or brand name (dupilumab)")
    compare.add_argument("--criterion", choices=list(CRITERIA), help="only this criterion")
    compare.add_argument(
        "--as-of", type=_date, metavar="DATE", help="the versions in force on this date"
    )
    compare.add_argument("--format", choices=["table", "json"], default="table")
    compare.set_defaults(handler=cmd_compare)


def render_table(comparison: Comparison) -> str:
    """One block per payer document, one line per column; `*` marks the strictest value."""
    if not comparison.rows:
        return f"No payer documents about {comparison.drug}."
    lines = []
    for row in comparison.rows:
        effective = f", effective {row.effective_date}" if row.effective_date else ""
        lines.append(f"{row.payer}: {row.title} [{row.document}, version {row.version}{effective}]")
        for name in comparison.columns:
            cells = row.columns.get(name, [])
            shown = "; ".join(f"{c.text}{' *' if c.strictest else ''}" for c in cells) or "-"
            lines.append(f"    {name.replace('_', ' ')}: {shown}")
        lines.append("")
    lines.append("* strictest among the payers")
    return "\n".join(lines)


def cmd_compare(config: Config, args: argparse.Namespace) -> int:
    from monitor.api.compare import compare_payers, comparison_json
    from monitor.store.core import Store

    store = Store.open_read_only(config.database.url)
    try:
        comparison = compare_payers(
            store, drug=args.drug, criterion=args.criterion, as_of=args.as_of
        )
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps(comparison_json(comparison), ensure_ascii=False))
    else:
        print(render_table(comparison))
    return 0 if comparison.rows else 1
