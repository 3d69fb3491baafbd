"""Cross-payer compare: one drug's criteria side by side, one row per payer document (the
prerequisite and its minimum duration as written, thresholds, approval periods, the document
and version), the strictest value of each column marked. `GET /compare` (JSON, or an HTML
page with `format=html`); `policy-monitor compare` prints the same. Included by
`monitor.api.app`."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, JSONResponse

from monitor.api.auth import ReadAccess
from monitor.api.deps import AsOf, StoreDep
from monitor.api.schemas import KEY_ERRORS
from monitor.store.checklists import find_checklists
from monitor.store.core import Store
from monitor.store.rules import MAX_LIMIT, RuleRecord, query_rules
from monitor.templating import template_environment
from monitor.wording import duration

_AGE_UNIT_YEARS = {"years": 1.0, "months": 1 / 12, "weeks": 1 / 52}
CRITERIA = ("step_therapy", "threshold", "approval_period", "prior_auth", "age_limit")
router = APIRouter(tags=["compare"])
_HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True, kw_only=True)
class Cell:
    """One value of one column: as written for people, and the number it is ranked by."""

    text: str
    rank: float | None = None  # larger is stricter
    strictest: bool = False


@dataclass(frozen=True, kw_only=True)
class PayerRow:
    payer: str
    source: str
    document: str
    title: str
    version: str
    effective_date: dt.date | None
    url: str
    # Column name ("step_therapy: topical corticosteroid", "threshold: EASI >=", …) -> cells.
    columns: dict[str, list[Cell]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Comparison:
    drug: str
    criterion: str | None
    as_of: dt.date | None
    columns: list[str]
    rows: list[PayerRow]


def _cell(rule: RuleRecord) -> tuple[str, Cell] | None:
    evidence = rule.evidence or rule.text
    if rule.kind == "step_therapy" and rule.subject:
        how_long = f" for {duration(rule.days, evidence)}" if rule.days else ""
        count = f" ({rule.count} agents)" if rule.count and rule.count > 1 else ""
        return f"step_therapy: {rule.subject}", Cell(
            text=f"{rule.subject}{how_long}{count}", rank=float(rule.days or 0)
        )
    if rule.kind == "threshold" and rule.subject and rule.value is not None:
        unit = f" {rule.unit}" if rule.unit else ""
        # Above a floor (>=, >): a higher floor is stricter; below a ceiling, a lower one.
        rank = rule.value if (rule.op or ">=").startswith(">") else -rule.value
        value = f"{rule.value:g}"
        return f"threshold: {rule.subject}", Cell(
            text=f"{rule.subject} {rule.op or ''} {value}{unit}".replace("  ", " "), rank=rank
        )
    if rule.kind == "approval_period" and rule.days:
        # A shorter approval means re-authorizing sooner: stricter.
        return f"approval_period: {rule.subject or 'initial'}", Cell(
            text=duration(rule.days, evidence), rank=-float(rule.days)
        )
    if rule.kind == "prior_auth" and rule.required is not None:
        return "prior_auth", Cell(
            text="required" if rule.required else "not required", rank=float(rule.required)
        )
    if rule.kind == "age_limit" and rule.value is not None:
        # In the policy's own unit ("6 months of age" stays months); ranked in years.
        unit = rule.unit if rule.unit in _AGE_UNIT_YEARS else "years"
        years = rule.value * _AGE_UNIT_YEARS[unit]
        rank = years if (rule.op or ">=").startswith(">") else -years
        return "age_limit", Cell(text=f"{rule.op or ''} {rule.value:g} {unit}".strip(), rank=rank)
    return None


def _rules_of(store: Store, document: str, version_id: int, as_of: dt.date | None) -> list[Any]:
    out: list[RuleRecord] = []
    after = 0
    while True:
        page = query_rules(store, document=document, as_of=as_of, after_id=after, limit=MAX_LIMIT)
        out.extend(r for r in page if r.version_id == version_id)
        if len(page) < MAX_LIMIT:
            return out
        after = page[-1].id


def compare_payers(
    store: Store, *, drug: str, criterion: str | None = None, as_of: dt.date | None = None
) -> Comparison:
    """Every payer document about `drug` (generic or brand name) in force on `as_of` (default:
    the newest version of each), its criteria by column, the strictest of each column marked."""
    rows: list[PayerRow] = []
    for record in find_checklists(store, drug=drug, as_of=as_of):
        checklist = record.checklist
        if checklist is None:
            continue
        row = PayerRow(
            payer=checklist.payer,
            source=record.source,
            document=checklist.document,
            title=checklist.title,
            version=record.version.document_version,
            effective_date=record.version.effective_date,
            url=record.url,
        )
        for rule in _rules_of(store, checklist.document, record.version.version_id, as_of):
            if criterion is not None and rule.kind != criterion:
                continue
            found = _cell(rule)
            if found is not None:
                row.columns.setdefault(found[0], []).append(found[1])
        rows.append(row)
    columns = sorted({name for row in rows for name in row.columns})
    for name in columns:
        ranks = [c.rank for row in rows for c in row.columns.get(name, []) if c.rank is not None]
        if len(rows) < 2 or not ranks:
            continue
        top = max(ranks)
        for row in rows:
            row.columns[name] = [
                Cell(text=c.text, rank=c.rank, strictest=c.rank == top)
                for c in row.columns.get(name, [])
            ]
    rows.sort(key=lambda r: (r.payer.lower(), r.document))
    return Comparison(drug=drug, criterion=criterion, as_of=as_of, columns=columns, rows=rows)


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    data = asdict(comparison)
    data["as_of"] = comparison.as_of.isoformat() if comparison.as_of else None
    for row in data["rows"]:
        row["effective_date"] = row["effective_date"].isoformat() if row["effective_date"] else None
        row["strictest"] = sorted(
            name for name, cells in row["columns"].items() if any(c["strictest"] for c in cells)
        )
    return data


def comparison_html(comparison: Comparison) -> str:
    template = template_environment("monitor").get_template("compare.html")
    return template.render(comparison=comparison)


Criterion = Literal["step_therapy", "threshold", "approval_period", "prior_auth", "age_limit"]


@router.get(
    "/compare",
    responses={**KEY_ERRORS, 200: {"content": {"application/json": {}, "text/html": {}}}},
)
def compare(
    store: StoreDep,
    _key: ReadAccess,
    drug: Annotated[str, Query(min_length=1, max_length=200, pattern=r"^[^\x00]+$")],
    criterion: Criterion | None = None,
    as_of: AsOf = None,
    format: Literal["json", "html"] = "json",
) -> Any:
    """One row per payer document about `drug`, the strictest value of each column marked."""
    comparison = compare_payers(store, drug=drug, criterion=criterion, as_of=as_of)
    if format == "html":
        return HTMLResponse(comparison_html(comparison), headers=_HTML_HEADERS)
    return JSONResponse(comparison_json(comparison))
