"""Sub-command ``coverage``: what a payer's rules say about one billing code or one drug on a
date (covered, PA needed, documentation needed, the questionnaire), as a table, JSON lines or
Da Vinci CRD `coverage-information` extensions."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import textwrap
from typing import TYPE_CHECKING, Any

from monitor.cli.checklists import _date

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.fhir import CoverageAnswer


def register(commands: Any) -> None:
    """Add this module's parser to `commands` (argparse sub-parsers); it sets ``handler``."""
    coverage = commands.add_parser(
        "coverage",
        help="what a payer's rules say about one code or drug: covered, PA, documentation",
    )
    coverage.add_argument("--payer", required=True, help="the payer (part of its name, any case)")
    wanted = coverage.add_mutually_exclusive_group(required=True)
    wanted.add_argument("--code", help="a CPT, HCPCS or ICD-10 code (J3590, L20.9)")
    wanted.add_argument("--drug", help="a drug: generic or brand name (dupilumab, Dupixent)")
    coverage.add_argument(
        "--as-of",
        type=_date,
        metavar="DATE",
        help="the rules in effect on this date (default: today)",
    )
    coverage.add_argument(
        "--format",
        choices=["table", "json", "crd"],
        default="table",
        help="table (default), json (one answer per line) or crd (a JSON object whose "
        "`extension` holds one CRD coverage-information extension per answer)",
    )
    coverage.set_defaults(handler=cmd_coverage)


def _table(answers: list[CoverageAnswer]) -> str:
    header = f"{'code':9}  {'covered':12}  {'PA':12}  {'docs':9}  document / reason"
    lines = [header, "-" * 100]
    for a in answers:
        code = a.code or a.kind
        where = f"{a.document} v{a.version}: {a.reason}"
        wrapped = textwrap.wrap(where, 56) or [""]
        lines.append(
            f"{code:9}  {a.covered:12}  {a.pa_needed or '-':12}  {a.doc_needed or '-':9}  "
            f"{wrapped[0]}"
        )
        lines.extend(f"{'':50}{more}" for more in wrapped[1:])
        if a.questionnaire:
            lines.append(f"{'':50}questionnaire: {a.questionnaire}")
    return "\n".join(lines) + "\n"


def cmd_coverage(config: Config, args: argparse.Namespace) -> int:
    from monitor.fhir import coverage_crd, coverage_json, find_coverage
    from monitor.store.core import Store

    as_of = args.as_of or dt.datetime.now(dt.UTC).date()
    store = Store.open_read_only(config.database.url)
    try:
        answers = find_coverage(
            store,
            payer=args.payer,
            code=args.code,
            drug=args.drug,
            as_of=as_of,
            public_url=config.api.public_url,
        )
    finally:
        store.close()
    if not answers:
        what = f"code {args.code}" if args.code else f"drug {args.drug}"
        print(f"No rules of payer {args.payer} for {what} as of {as_of}.", file=sys.stderr)
        return 1
    if args.format == "json":
        for answer in answers:
            sys.stdout.write(json.dumps(coverage_json(answer), ensure_ascii=False) + "\n")
    elif args.format == "crd":
        sys.stdout.write(json.dumps(coverage_crd(answers), ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(_table(answers))
    return 0
