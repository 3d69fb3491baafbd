"""Sub-command ``checklists``: the PA checklists in force (or as of a date) for people
(Markdown, HTML) and for programs (JSON lines, or a FHIR Bundle of Questionnaires)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.store.checklists import ChecklistRecord


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date (e.g. 2026-11-01)") from exc


def register(commands: Any) -> None:
    """Add this module's parser to `commands` (argparse sub-parsers); it sets ``handler``."""
    checklists = commands.add_parser(
        "checklists",
        help="the PA checklists in force (current version, or --as-of a date)",
    )
    checklists.add_argument("--payer", help="only this payer (part of its name, any case)")
    checklists.add_argument(
        "--drug", help="only this drug: generic or brand name, any case (dupilumab, Dupixent)"
    )
    checklists.add_argument(
        "--format",
        choices=["markdown", "json", "html", "fhir"],
        default="markdown",
        help="markdown (default), json (one object per line), html (one page) or fhir (a FHIR "
        "R4 collection Bundle of Questionnaires, one per checklist version)",
    )
    checklists.add_argument(
        "--as-of",
        type=_date,
        metavar="DATE",
        help="the checklists in effect on this date (default: the newest version of each)",
    )
    checklists.set_defaults(handler=cmd_checklists)


def _json(record: ChecklistRecord) -> str:
    from diffing.checklist import checklist_to_dict

    assert record.checklist is not None
    body = checklist_to_dict(record.checklist)
    body.update(
        id=record.id,
        source=record.source,
        url=record.url,
        checklist_version=record.version.number,
        document_version=record.version.document_version,
        published_at=record.version.published_at.isoformat(),
    )
    return json.dumps(body, ensure_ascii=False, default=str)


def cmd_checklists(config: Config, args: argparse.Namespace) -> int:
    from monitor.fhir import fhir_json, questionnaire_bundle, questionnaire_for
    from monitor.report import render_checklist
    from monitor.store.checklists import find_checklists
    from monitor.store.core import Store

    store = Store.open_read_only(config.database.url)
    try:
        records = find_checklists(store, payer=args.payer, drug=args.drug, as_of=args.as_of)
        questionnaires = (
            [questionnaire_for(store, r, public_url=config.api.public_url) for r in records]
            if args.format == "fhir"
            else []
        )
    finally:
        store.close()
    if not records:
        asked = ", ".join(
            f"{name} {value}"
            for name, value in (("payer", args.payer), ("drug", args.drug), ("as of", args.as_of))
            if value
        )
        print(f"No PA checklists{f' for {asked}' if asked else ''}.", file=sys.stderr)
        return 1
    if args.format == "fhir":
        sys.stdout.write(fhir_json(questionnaire_bundle(questionnaires)) + "\n")
    elif args.format == "json":
        for record in records:
            sys.stdout.write(_json(record) + "\n")
    elif args.format == "html":
        sys.stdout.write(render_checklist(records, "html"))
    else:
        sys.stdout.write("\n\n".join(render_checklist(r, "markdown").strip() for r in records))
        sys.stdout.write("\n")
    return 0
