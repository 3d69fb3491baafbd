"""Render changes for people (a table, a grouped report) and for machines (JSON lines), and PA
checklists as Markdown and HTML."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

from monitor.store.checklists import ChecklistRecord
from monitor.store.core import ChangeRecord
from monitor.templating import template_environment

SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}
_KIND_LABEL = {
    "document_added": "new document",
    "document_retired": "retired",
    "status_changed": "status changed",
    "upcoming_version": "upcoming version",
    "code_added": "code added",
    "code_removed": "code removed",
    "code_group_changed": "code moved to another group",
    "date_changed": "date changed",
    "title_changed": "title changed",
    "section_changed": "text changed",
    "document_withdrawn": "withdrawn",
    "step_therapy_added": "new step-therapy requirement",
    "step_therapy_removed": "step-therapy requirement removed",
    "step_therapy_changed": "step therapy changed",
    "prior_auth_added": "prior authorization now required",
    "prior_auth_removed": "prior authorization no longer required",
    "approval_period_changed": "approval period (days) changed",
    "threshold_added": "new threshold",
    "threshold_removed": "threshold removed",
    "threshold_changed": "threshold changed",
    "age_limit_changed": "age limit changed",
    "specialty_changed": "prescriber specialty changed",
    "drug_added": "drug added",
    "drug_removed": "drug removed",
    "noise_only": "re-published with no substantive change",
}
# Kinds whose evidence sentence is worth a line of its own in the report.
_QUOTE_EVIDENCE = frozenset(
    {
        "step_therapy_added",
        "step_therapy_removed",
        "step_therapy_changed",
        "prior_auth_added",
        "prior_auth_removed",
        "approval_period_changed",
        "threshold_added",
        "threshold_removed",
        "threshold_changed",
        "age_limit_changed",
    }
)


_SELF_DESCRIBING = frozenset(
    {
        "document_added",
        "document_retired",
        "status_changed",
        "upcoming_version",
        "title_changed",
        "document_withdrawn",
        "noise_only",
    }
)


def kind_label(kind: str) -> str:
    """What a change kind is called in reports and on the change page."""
    return _KIND_LABEL.get(kind, kind.replace("_", " "))


def change_to_json(change: ChangeRecord) -> str:
    data: dict[str, Any] = asdict(change)
    data["effective_date"] = change.effective_date.isoformat() if change.effective_date else None
    data["detected_at"] = change.detected_at.isoformat()
    return json.dumps(data, ensure_ascii=False)


def _clip(text: str | None, width: int) -> str:
    if text is None:
        return "-"
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _wrap(text: str | None, width: int) -> list[str]:
    return textwrap.wrap(text, width) if text else []


def describe(change: ChangeRecord, width: int = 70) -> str:
    """One line a biller can read: what changed, before -> after."""
    label = _KIND_LABEL.get(change.kind, change.kind)
    where = f" {change.field}" if change.field and change.kind not in _SELF_DESCRIBING else ""
    if change.kind in ("code_added", "code_removed"):
        code = change.after or change.before or ""
        detail = f": {_clip(change.evidence or code, width)}"
    elif change.kind == "document_added":
        detail = f": {_clip(change.title, width)}"
    elif change.kind in ("bulletin_published", "checklist_changed") and change.after:
        # The after text is the news itself ("Novitas bulletin of … mentions L33979"): whole.
        detail = f": {' '.join(change.after.split())}"
    elif change.before is None and change.after is None:
        detail = ""
    else:
        detail = f": {_clip(change.before, width // 2)} -> {_clip(change.after, width // 2)}"
    return f"{label}{where}{detail}"


def table(changes: Sequence[ChangeRecord]) -> str:
    header = f"{'id':>6}  {'severity':8}  {'document':12}  {'effective':10}  change"
    lines = [header, "-" * len(header)]
    for c in changes:
        effective = c.effective_date.isoformat() if c.effective_date else "-"
        lines.append(
            f"{c.id:>6}  {c.severity:8}  {c.document_id:12}  {effective:10}  {describe(c)}"
        )
    return "\n".join(lines)


def grouped_report(changes: Iterable[ChangeRecord], *, title: str) -> str:
    """Changes grouped by document, the most severe documents first."""
    by_document: dict[str, list[ChangeRecord]] = {}
    for change in changes:
        by_document.setdefault(change.document_id, []).append(change)
    if not by_document:
        return f"{title}\n\nNo changes."

    def rank(items: list[ChangeRecord]) -> tuple[int, str]:
        return (min(SEVERITY_ORDER.get(c.severity, 3) for c in items), items[0].document_id)

    counts = {s: 0 for s in SEVERITY_ORDER}
    for items in by_document.values():
        for c in items:
            counts[c.severity] = counts.get(c.severity, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    out = [title, f"{sum(counts.values())} changes in {len(by_document)} documents ({summary})", ""]
    for items in sorted(by_document.values(), key=rank):
        first = items[0]
        version = (
            f"version {first.previous_version} -> {first.version}"
            if first.previous_version
            else f"version {first.version}"
        )
        out.append(f"{first.document_id}  {_clip(first.title, 70)}  [{first.source}, {version}]")
        out.append(f"    {first.url}")
        for c in sorted(items, key=lambda c: (SEVERITY_ORDER.get(c.severity, 3), c.id)):
            effective = f" (effective {c.effective_date.isoformat()})" if c.effective_date else ""
            if c.kind == "section_changed":
                out.append(f"  {c.severity.upper():6}  text changed in {c.field}{effective}:")
                out.extend(f"            - {line}" for line in _wrap(c.before, 80))
                out.extend(f"            + {line}" for line in _wrap(c.after, 80))
            elif c.kind in ("bulletin_published", "checklist_changed"):
                label = kind_label(c.kind)
                out.append(f"  {c.severity.upper():6}  {label}{effective}:")
                if c.before:
                    out.extend(f"            - {line}" for line in _wrap(c.before, 80))
                out.extend(f"            + {line}" for line in _wrap(c.after, 80))
            else:
                out.append(f"  {c.severity.upper():6}  {describe(c, 90)}{effective}")
                if c.kind in _QUOTE_EVIDENCE and c.evidence:
                    out.extend(f"            {line}" for line in _wrap(c.evidence, 80))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def render_checklist(record: ChecklistRecord, fmt: str) -> str:
    """Markdown ("markdown") or HTML ("html") of one checklist version."""
    name = "checklist.html" if fmt == "html" else "checklist.md"
    template = template_environment("monitor").get_template(name)
    return template.render(record=record, checklist=record.checklist)
