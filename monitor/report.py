"""Render changes for people (a table, a grouped report) and for machines (JSON lines), and PA
checklists as Markdown and HTML."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from difflib import SequenceMatcher
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Types only: `changes` renders without loading the checklist code or Jinja.
    from monitor.store.checklists import ChecklistRecord
    from monitor.store.records import ChangeRecord

SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}
UNVERIFIED = "unverified"  # diffing.model.Severity.UNVERIFIED: shown apart, never alerted
_KIND_LABEL = {
    "document_added": "new document",
    "document_retired": "retired",
    "status_changed": "status changed",
    "upcoming_version": "upcoming version",
    "code_added": "code added",
    "code_removed": "code removed",
    "code_group_changed": "code moved to another group",
    "code_coverage_changed": "code coverage changed",
    "date_changed": "date changed",
    "title_changed": "title changed",
    "section_changed": "text changed",
    "document_withdrawn": "withdrawn",
    "document_reinstated": "listed again after withdrawal",
    "step_therapy_added": "new step-therapy requirement",
    "step_therapy_removed": "step-therapy requirement removed",
    "step_therapy_changed": "step therapy changed",
    "prior_auth_added": "prior authorization now required",
    "prior_auth_removed": "prior authorization no longer required",
    "approval_period_changed": "approval period changed",
    "threshold_added": "new threshold",
    "threshold_removed": "threshold removed",
    "threshold_changed": "threshold changed",
    "age_limit_changed": "age limit changed",
    "specialty_changed": "prescriber specialty changed",
    "drug_added": "drug added",
    "drug_removed": "drug removed",
    "noise_only": "re-published with no substantive change",
    "bulletin_published": "bulletin published",
    "checklist_changed": "PA checklist changed",
    # From the criteria tree: `field` names the indication and branch.
    "criterion_added": "new criterion",
    "criterion_removed": "criterion removed",
    "criterion_changed": "criterion changed",
    # From a table (an Excel PDL): `field` names the sheet.
    "table_row_added": "row added to the list",
    "table_row_removed": "row removed from the list",
    "table_row_changed": "row of the list changed",
}
_FIELD_LABEL = {
    "min_duration_days": "minimum trial",
    "count_required": "agents to try",
    "initial": "initial",
    "reauthorization": "renewal",
    "effective_date": "effective date",
    "retirement_date": "retirement date",
    "notice_end_date": "notice period ends",
    "icd10_covered": "ICD-10 covered",
    "icd10_noncovered": "ICD-10 not covered",
    "hcpcs": "CPT/HCPCS",
    "hcpcs_modifier": "HCPCS modifier",
}
# Kinds whose evidence sentence is worth a line of its own in the report.
_QUOTE_EVIDENCE = frozenset(
    {
        "code_coverage_changed",
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
        "criterion_added",
        "criterion_removed",
        "criterion_changed",
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
        "document_reinstated",
        "noise_only",
    }
)


def kind_label(kind: str) -> str:
    """What a change kind is called in reports and on the change page."""
    return _KIND_LABEL.get(kind, kind.replace("_", " "))


def field_label(field: str | None) -> str | None:
    """What a change's field is called for people ("minimum trial", not min_duration_days)."""
    if field is None:
        return None
    return _FIELD_LABEL.get(field, field.replace("_", " "))


def flag_label(flag: str) -> str:
    """A notice flag as a table shows it: "SHORT NOTICE", "RETROACTIVE"."""
    return flag.replace("_", " ").upper()


def change_to_json(change: ChangeRecord) -> str:
    """One JSON object: the stored values (durations in days) and their wording for people
    (`before_text`/`after_text` as the policy wrote them, `kind_label`, `effective_note`), and
    its notice `flags` ("short_notice", "retroactive") against the source's `notice_days`."""
    data: dict[str, Any] = asdict(change)
    data["effective_date"] = change.effective_date.isoformat() if change.effective_date else None
    data["stated_effective_date"] = (
        change.stated_effective_date.isoformat() if change.stated_effective_date else None
    )
    data["detected_at"] = change.detected_at.isoformat()
    data["kind_label"] = kind_label(change.kind)
    data["before_text"] = change.before_text
    data["after_text"] = change.after_text
    data["effective_note"] = change.effective_note
    data["same_fact_as"] = change.same_fact_as
    data["flags"] = list(change.flags)
    data["flag_notes"] = list(change.flag_notes)
    data["notice_days"] = change.notice_days
    return json.dumps(data, ensure_ascii=False)


def _clip(text: str | None, width: int) -> str:
    if text is None:
        return "-"
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _wrap(text: str | None, width: int) -> list[str]:
    return textwrap.wrap(text, width) if text else []


def word_changes(before: str, after: str, *, context: int = 4) -> str:
    """The words that changed, wdiff style, with `context` words around each change:
    "… at least every [-4-] {+2+} weeks and …"."""
    old, new = before.split(), after.split()
    opcodes = SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
    parts: list[str] = []
    for index, (op, i1, i2, j1, j2) in enumerate(opcodes):
        if op == "equal":
            words = old[i1:i2]
            first, last = index == 0, index == len(opcodes) - 1
            if (
                len(words) > 2 * context + 1
                or (first and len(words) > context)
                or (last and len(words) > context)
            ):
                head = [] if first else words[:context]
                tail = [] if last else words[-context:]
                parts.extend([*head, "…", *tail])
            else:
                parts.extend(words)
            continue
        if op in ("delete", "replace"):
            parts.append(f"[-{' '.join(old[i1:i2])}-]")
        if op in ("insert", "replace"):
            parts.append(f"{{+{' '.join(new[j1:j2])}+}}")
    return " ".join(parts)


def before_after(change: ChangeRecord, width: int = 70) -> str:
    """ "8 weeks → 12 weeks" for values; the changed words for text; "+ text" for new text."""
    before = change.before_text if change.before_text is not None else change.before
    after = change.after_text if change.after_text is not None else change.after
    if before is None and after is None:
        return ""
    if before is None:
        return f"+ {' '.join((after or '').split())}"
    if after is None:
        return f"- {' '.join(before.split())}"
    if len(before) + len(after) <= width:
        return f"{' '.join(before.split())} → {' '.join(after.split())}"
    return word_changes(before, after)


def describe(change: ChangeRecord, width: int = 70) -> str:
    """One line a biller can read: what changed, before → after, in the policy's units."""
    label = kind_label(change.kind)
    field = field_label(change.field)
    where = f" ({field})" if field and change.kind not in _SELF_DESCRIBING else ""
    if change.kind in ("code_added", "code_removed"):
        code = change.after or change.before or ""
        detail = f": {_clip(change.evidence or code, width)}"
    elif change.kind == "document_added":
        detail = f": {_clip(change.title, width)}"
    elif change.kind == "bulletin_published" and change.after:
        # The after text is the news itself ("Novitas bulletin of … mentions L33979"): whole.
        detail = f": {' '.join(change.after.split())}"
    else:
        shown = before_after(change, width)
        detail = f": {shown}" if shown else ""
    same = f" [same fact as change {change.same_fact_as}]" if change.same_fact_as else ""
    return f"{label}{where}{detail}{same}{_contradicted(change, width)}"


def _contradicted(change: ChangeRecord, width: int) -> str:
    """For an unverified claim: what it claimed and why the texts contradict it."""
    if change.severity != UNVERIFIED:
        return ""
    parts = [f"claimed {change.claimed_severity}"] if change.claimed_severity else []
    if change.contradiction:
        parts.append(f"contradicted: {_clip(change.contradiction, 2 * width)}")
    return f" [{'; '.join(parts)}]" if parts else ""


def _terminal_width() -> int:
    return max(100, shutil.get_terminal_size((140, 24)).columns)


def table(changes: Sequence[ChangeRecord], *, width: int | None = None) -> str:
    """A table for a terminal: every column wrapped, nothing clipped but over-long text."""
    width = width or _terminal_width()
    source_width = min(20, max([len("source"), *(len(c.source) for c in changes)]))
    document_width = 28
    fixed = 7 + 2 + 8 + 2 + source_width + 2 + document_width + 2 + 15 + 2
    change_width = max(40, width - fixed)
    header = (
        f"{'id':>7}  {'severity':8}  {'source':{source_width}}  "
        f"{'document':{document_width}}  {'effective':15}  change"
    )
    lines = [header, "-" * min(width, len(header) + change_width - len("change"))]
    for c in changes:
        document = textwrap.wrap(c.document_id, document_width, break_long_words=True)
        document += textwrap.wrap(_clip(c.title, 3 * document_width), document_width)
        effective = (
            [c.effective_date.isoformat(), *(flag_label(f) for f in c.flags)]
            if c.effective_date
            else ["not stated;", f"seen {c.first_seen.isoformat()}"]
        )
        text = textwrap.wrap(describe(c, change_width), change_width, break_long_words=True)
        text = text[:6] + (["…"] if len(text) > 6 else [])
        sources = textwrap.wrap(c.source, source_width, break_long_words=True)
        for row in range(max(len(document), len(effective), len(text), len(sources))):
            cells = (
                f"{c.id:>7}" if row == 0 else " " * 7,
                f"{c.severity:8}" if row == 0 else " " * 8,
                f"{_cell(sources, row):{source_width}}",
                f"{_cell(document, row):{document_width}}",
                f"{_cell(effective, row):15}",
                _cell(text, row),
            )
            lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _cell(lines: list[str], row: int) -> str:
    return lines[row] if row < len(lines) else ""


def facts(changes: Iterable[ChangeRecord]) -> list[tuple[ChangeRecord, list[ChangeRecord]]]:
    """Each change with the checklist changes that restate it (`same_fact_as`); a restating
    change whose fact is not among `changes` stands on its own. One entry per fact."""
    changes = list(changes)
    ids = {c.id for c in changes}
    restated: dict[int, list[ChangeRecord]] = {}
    for c in changes:
        if c.same_fact_as is not None and c.same_fact_as in ids:
            restated.setdefault(c.same_fact_as, []).append(c)
    return [
        (c, restated.get(c.id, []))
        for c in changes
        if c.same_fact_as is None or c.same_fact_as not in ids
    ]


def _effective(c: ChangeRecord) -> str:
    flags = "".join(f"; {note}" for note in c.flag_notes)
    return (
        f" (effective {c.effective_date.isoformat()}{flags})"
        if c.effective_date
        else (f" ({c.effective_note})" if c.effective_note else "")
    )


def grouped_report(changes: Iterable[ChangeRecord], *, title: str) -> str:
    """Changes grouped by document, the most severe documents first; a checklist change that
    restates a criterion change is shown under it, not counted again. Unverified claims (the
    two versions' texts contradict them) are neither counted nor mixed in: listed apart at the
    end, never hidden."""
    changes = list(changes)
    unverified = [c for c in changes if c.severity == UNVERIFIED]
    by_document: dict[str, list[tuple[ChangeRecord, list[ChangeRecord]]]] = {}
    for fact in facts(c for c in changes if c.severity != UNVERIFIED):
        by_document.setdefault(fact[0].document_id, []).append(fact)
    if not by_document:
        return f"{title}\n\nNo changes." + (
            "\n" + _unverified_part(unverified) if unverified else ""
        )

    def rank(items: list[tuple[ChangeRecord, list[ChangeRecord]]]) -> tuple[int, str]:
        return (min(SEVERITY_ORDER.get(c.severity, 3) for c, _ in items), items[0][0].document_id)

    counts = {s: 0 for s in SEVERITY_ORDER}
    for items in by_document.values():
        for c, _ in items:
            counts[c.severity] = counts.get(c.severity, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    out = [title, f"{sum(counts.values())} changes in {len(by_document)} documents ({summary})", ""]
    for items in sorted(by_document.values(), key=rank):
        first = items[0][0]
        version = (
            f"version {first.previous_version} -> {first.version}"
            if first.previous_version
            else f"version {first.version}"
        )
        out.append(f"{first.document_id}  {_clip(first.title, 70)}  [{first.source}, {version}]")
        out.append(f"    {first.url}")
        for c, restating in sorted(
            items, key=lambda f: (SEVERITY_ORDER.get(f[0].severity, 3), f[0].id)
        ):
            effective = _effective(c)
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
            for r in restating:
                out.append("          on the PA checklist:")
                if r.before:
                    out.extend(f"            - {line}" for line in _wrap(r.before, 80))
                out.extend(f"            + {line}" for line in _wrap(r.after, 80))
        out.append("")
    return "\n".join(out).rstrip() + "\n" + _unverified_part(unverified)


def _unverified_part(unverified: Sequence[ChangeRecord]) -> str:
    if not unverified:
        return ""
    out = [
        "",
        f"Unverified - {len(unverified)} claim(s) the two versions' texts contradict "
        "(an extraction error, not a policy change; never alerted):",
    ]
    for c in sorted(unverified, key=lambda c: (c.document_id, c.id)):
        out.append(f"  {c.document_id}  {describe(c, 90)}")
    return "\n".join(out) + "\n"


def render_checklist(records: ChecklistRecord | Sequence[ChecklistRecord], fmt: str) -> str:
    """Markdown ("markdown") or HTML ("html", one page) of checklist versions: the policy's
    outline first when the checklist has one, then the items (alternatives under their item)."""
    from monitor.store.checklists import ChecklistRecord
    from monitor.templating import template_environment

    chosen = [records] if isinstance(records, ChecklistRecord) else list(records)
    name = "checklist.html" if fmt == "html" else "checklist.md"
    environment = template_environment("monitor")
    environment.filters.setdefault("outline_bullet", _outline_bullet)
    template = environment.get_template(name)
    return template.render(records=chosen)


def _outline_bullet(line: str) -> str:
    """An outline line (two spaces per level) as a nested Markdown bullet."""
    text = line.lstrip(" ")
    return f"{'  ' * ((len(line) - len(text)) // 2)}- {text}"
