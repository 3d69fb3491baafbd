"""Prior-authorization checklists: what a PA request must document, per payer x drug. Pure.

`build_checklists(criteria)` gives one checklist per drug a payer policy governs (or, for a
medical policy without one, per procedure: the document's title), its items in the order a
request is assembled: the diagnosis (indications and ICD-10 codes), each step-therapy trial
with its minimum duration, severity thresholds, age, prescriber specialty, the initial
approval period and what a renewal needs. `diff_checklists(old, new)` matches items by their
`key` and says what changed in words a PA coordinator reads: "Dupixent / Acme Health: item 2
now requires 12 weeks".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from diffing.model import (
    Change,
    ChangeKind,
    CodeSystem,
    CoverageFlag,
    Criteria,
    Evidence,
    Severity,
)
from diffing.rules import days_text, governed_drugs, rule_payer, threshold_text
from diffing.severity import (
    approval_period_severity,
    checklist_change_severity,
    step_therapy_severity,
)
from diffing.tree.diff import shown
from diffing.tree.nodes import (
    AGE,
    ALL,
    CONTINUATION,
    GENERAL,
    INITIAL,
    THRESHOLD,
    CriteriaGroup,
    CriteriaTree,
    CriterionLeaf,
    tree_of,
)
from diffing.tree.render import group_text, leaf_text, render_outline

CHECKLIST_FORMAT = 2
_READABLE_FORMATS = (1, 2)  # format 1 bodies (stored before trees) have no outline


@dataclass(frozen=True, kw_only=True, slots=True)
class ChecklistItem:
    """One thing a PA request must document.

    `key` identifies the item across versions (category, indication and what it is about);
    `requirement` is the short value that changes ("12 weeks", "BSA >= 5%"); the numbers
    (`days`, `count`, `op`, `value`, `codes`) let the diff tell stricter from looser.
    """

    key: str
    category: str  # diagnosis, step_therapy, threshold, age, prescriber, approval, renewal
    text: str
    requirement: str
    indication: str | None = None
    days: int | None = None
    count: int | None = None
    op: str | None = None
    value: float | None = None
    codes: tuple[str, ...] = ()
    evidence: Evidence | None = field(default=None, compare=False)
    branch: str | None = None  # initial, continuation, dosing, exclusion (criteria trees)
    alternatives: tuple[str, ...] = ()  # "one of" items: each alternative as shown
    depth: int = 0  # indentation when the checklist is shown as the policy's tree
    # The all-of group the item belongs to ("atopic dermatitis/initial/all[2]"): items of one
    # group must all hold, so they must never contradict each other.
    group: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Checklist:
    payer: str
    subject: str  # canonical drug name ("dupilumab") or the procedure policy's title
    subject_kind: str  # "drug" or "procedure"
    label: str  # what people call it: "Dupixent"
    document: str
    title: str
    version: str | None
    effective_date: dt.date | None
    prior_auth_required: bool | None
    items: tuple[ChecklistItem, ...]
    # The policy's own logic, one line per row, indented by two spaces per level: indication
    # blocks, branches with their approval, "all of" / "one of" groups, "must not" exclusions.
    outline: tuple[str, ...] = ()

    @property
    def heading(self) -> str:
        return f"{self.label} / {self.payer}"


@dataclass(frozen=True, kw_only=True, slots=True)
class ChecklistChange:
    """One item added, removed or changed between two versions of a checklist."""

    action: str  # "added", "removed", "changed"
    position: int  # the item's number (in the new checklist; in the old one when removed)
    before: ChecklistItem | None
    after: ChecklistItem | None
    summary: str  # "Dupixent / Acme Health: item 2 now requires 12 weeks"
    stricter: bool | None  # None when neither stricter nor looser can be said


def _label(subject: str, title: str) -> str:
    """The brand a policy is titled with ("Dupixent® (Dupilumab)" -> "Dupixent"), else the
    generic name capitalised."""
    if subject.lower() in title.lower():
        brand = re.split(r"[(®™]|\bTM\b", title, maxsplit=1)[0].strip(" -–,")
        brand = re.sub(r"(?<=[a-z])TM$", "", brand).strip()
        if brand and subject.lower() not in brand.lower():
            return brand
    return subject[:1].upper() + subject[1:]


def _diagnosis(criteria: Criteria, drug: str | None) -> ChecklistItem | None:
    indications: list[str] = []
    # Thresholds have no drug; step therapy and approvals may be about another drug.
    mentioned: list[tuple[str | None, str | None]] = [
        *((item.indication, item.drug) for item in criteria.step_therapy),
        *((item.indication, item.drug) for item in criteria.approval_periods),
        *((item.indication, None) for item in criteria.thresholds),
    ]
    for indication, item_drug in mentioned:
        about_this_drug = drug is None or item_drug in (drug, None)
        if indication and indication not in indications and about_this_drug:
            indications.append(indication)
    codes = tuple(
        c.code
        for c in sorted(criteria.codes)
        if c.system is CodeSystem.ICD10 and c.flag is CoverageFlag.COVERED
    )
    if not indications and not codes:
        return None
    named = " or ".join(indications) if indications else "a covered diagnosis"
    text = f"Diagnosis of {named}"
    if codes:
        text += f" (ICD-10: {', '.join(codes)})"
    return ChecklistItem(
        key="diagnosis",
        category="diagnosis",
        text=text,
        requirement=named + (f"; {len(codes)} ICD-10 codes" if codes else ""),
        codes=codes,
    )


def _items(criteria: Criteria, drug: str | None) -> tuple[ChecklistItem, ...]:
    def mine(item_drug: str | None) -> bool:
        return drug is None or item_drug in (drug, None)

    items: list[ChecklistItem] = []
    diagnosis = _diagnosis(criteria, drug)
    if diagnosis:
        items.append(diagnosis)
    for step in criteria.step_therapy:
        if not mine(step.drug):
            continue
        count = f"{step.count_required} of " if step.count_required > 1 else ""
        duration = days_text(step.min_duration_days) if step.min_duration_days else None
        requirement = duration or "a trial"
        if step.count_required > 1:
            requirement = f"{step.count_required} agents, {requirement}"
        items.append(
            ChecklistItem(
                key=f"step_therapy|{step.indication or ''}|{step.prerequisite}",
                category="step_therapy",
                text=(
                    f"Trial of {count}{step.prerequisite}"
                    + (f" for at least {duration}" if duration else "")
                    + (f" ({step.indication})" if step.indication else "")
                    + " with inadequate response, intolerance or contraindication"
                ),
                requirement=requirement,
                indication=step.indication,
                days=step.min_duration_days,
                count=step.count_required,
                evidence=step.evidence,
            )
        )
    for threshold in criteria.thresholds:
        shown = threshold_text(threshold.measure, threshold.op, threshold.value, threshold.unit)
        items.append(
            ChecklistItem(
                key="|".join(
                    ("threshold", threshold.indication or "", threshold.measure, threshold.op[:1])
                ),
                category="threshold",
                text=f"Documented {shown}"
                + (f" ({threshold.indication})" if threshold.indication else ""),
                requirement=shown,
                indication=threshold.indication,
                op=threshold.op,
                value=threshold.value,
                evidence=threshold.evidence,
            )
        )
    for age in criteria.age_limits:
        shown = f"age {age.op} {age.shown}"
        items.append(
            ChecklistItem(
                key=f"age|{age.indication or ''}|{age.op}",
                category="age",
                text=f"Patient {shown}" + (f" ({age.indication})" if age.indication else ""),
                requirement=shown,
                indication=age.indication,
                op=age.op,
                value=float(age.years),
                evidence=age.evidence,
            )
        )
    if criteria.prescriber_specialties:
        names = ", ".join(criteria.prescriber_specialties)
        items.append(
            ChecklistItem(
                key="prescriber",
                category="prescriber",
                text=f"Prescribed by or in consultation with: {names}",
                requirement=names,
                codes=criteria.prescriber_specialties,
            )
        )
    for period in criteria.approval_periods:
        if not mine(period.drug):
            continue
        renewal = period.phase != "initial"
        shown = days_text(period.days)
        where = f" ({period.indication})" if period.indication else ""
        items.append(
            ChecklistItem(
                key=f"{'renewal' if renewal else 'approval'}|{period.indication or ''}",
                category="renewal" if renewal else "approval",
                text=(
                    f"Renewal{where}: documentation of positive clinical response; "
                    f"reauthorization lasts up to {shown}"
                    if renewal
                    else f"Initial authorization{where} lasts up to {shown}"
                ),
                requirement=shown,
                indication=period.indication,
                days=period.days,
                evidence=period.evidence,
            )
        )
    return tuple(items)


def _age_years(leaf: CriterionLeaf) -> float | None:
    if leaf.number is None:
        return None
    return leaf.number / 12 if leaf.unit.startswith("month") else leaf.number


def _leaf_item(
    leaf: CriterionLeaf, indication: str | None, phase: str, depth: int, group: str
) -> ChecklistItem:
    where = ", ".join(p for p in (indication, phase) if p)
    return ChecklistItem(
        key=f"{leaf.kind}|{indication or ''}|{phase}|{leaf.subject}",
        category=leaf.kind,
        text=leaf_text(leaf) + (f" ({where})" if where else ""),
        requirement=shown(leaf),
        indication=indication,
        days=leaf.days,
        count=leaf.count,
        op=leaf.op,
        value=_age_years(leaf) if leaf.kind == AGE else leaf.number,
        evidence=leaf.evidence,
        branch=phase,
        depth=depth,
        group=group,
    )


def _alternatives_item(
    node: CriteriaGroup, indication: str | None, phase: str, depth: int, group: str
) -> ChecklistItem:
    """A "one of" group as ONE item: any alternative satisfies it."""
    options = tuple(
        leaf_text(c) if isinstance(c, CriterionLeaf) else group_text(c) for c in node.children
    )
    kinds = {c.kind for c in node.children if isinstance(c, CriterionLeaf)}
    all_leaves = all(isinstance(c, CriterionLeaf) for c in node.children)
    category = kinds.pop() if all_leaves and len(kinds) == 1 else "one_of"
    subjects = sorted(c.subject if isinstance(c, CriterionLeaf) else c.op for c in node.children)
    where = ", ".join(p for p in (indication, phase) if p)
    return ChecklistItem(
        key=f"one_of|{indication or ''}|{phase}|{'/'.join(subjects)}",
        category=category,
        text="One of: " + "; ".join(options) + (f" ({where})" if where else ""),
        requirement="one of: " + "; ".join(options),
        indication=indication,
        evidence=next((c.evidence for c in node.children if isinstance(c, CriterionLeaf)), None),
        branch=phase,
        alternatives=options,
        depth=depth,
        group=group,
    )


def _tree_items(criteria: Criteria, tree: CriteriaTree) -> tuple[ChecklistItem, ...]:
    """Checklist items that follow the policy's logic: one item per requirement of an all-of
    group (nested groups indented), one item with alternatives per one-of group, and each
    branch's approval duration."""
    items: list[ChecklistItem] = []
    names = [b.name for b in tree.indications if b.name != GENERAL]
    codes = tuple(
        c.code
        for c in sorted(criteria.codes)
        if c.system is CodeSystem.ICD10 and c.flag is CoverageFlag.COVERED
    )
    if names or codes:
        named = " or ".join(names) if names else "a covered diagnosis"
        items.append(
            ChecklistItem(
                key="diagnosis",
                category="diagnosis",
                text=f"Diagnosis of {named}" + (f" (ICD-10: {', '.join(codes)})" if codes else ""),
                requirement=named + (f"; {len(codes)} ICD-10 codes" if codes else ""),
                codes=codes,
            )
        )

    def walk(
        node: CriteriaGroup, indication: str | None, phase: str, depth: int, path: str
    ) -> None:
        if node.op != ALL:
            items.append(_alternatives_item(node, indication, phase, depth, path))
            return
        for n, child in enumerate(node.children, 1):
            if isinstance(child, CriterionLeaf):
                items.append(_leaf_item(child, indication, phase, depth, path))
            elif child.op == ALL:
                walk(child, indication, phase, depth + 1, f"{path}/all[{n}]")
            else:
                items.append(_alternatives_item(child, indication, phase, depth, path))

    for block in tree.indications:
        indication = None if block.name == GENERAL else block.name
        for branch in block.branches:
            walk(branch.root, indication, branch.phase, 0, f"{block.name}/{branch.phase}")
            if branch.approval_days is None or branch.phase not in (INITIAL, CONTINUATION):
                continue
            renewal = branch.phase == CONTINUATION
            where = f" ({indication})" if indication else ""
            items.append(
                ChecklistItem(
                    key=f"{'renewal' if renewal else 'approval'}|{indication or ''}",
                    category="renewal" if renewal else "approval",
                    text=(
                        f"Reauthorization{where} lasts up to {branch.approval_text}"
                        if renewal
                        else f"Initial authorization{where} lasts up to {branch.approval_text}"
                    ),
                    requirement=branch.approval_text or "",
                    indication=indication,
                    days=branch.approval_days,
                    evidence=branch.evidence,
                    branch=branch.phase,
                )
            )
    return _unique_keys(items)


def _unique_keys(items: list[ChecklistItem]) -> tuple[ChecklistItem, ...]:
    seen: dict[str, int] = {}
    out = []
    for item in items:
        seen[item.key] = seen.get(item.key, 0) + 1
        if seen[item.key] > 1:
            item = dataclasses.replace(item, key=f"{item.key}#{seen[item.key]}")
        out.append(item)
    return tuple(out)


def contradictions(checklist: Checklist) -> tuple[str, ...]:
    """Items of one all-of group that cannot all hold: an age floor above the age ceiling, or
    the same measure required twice with different limits. Empty for a sound checklist."""
    out: list[str] = []
    groups: dict[str, list[ChecklistItem]] = {}
    for item in checklist.items:
        if item.group and not item.alternatives and item.value is not None and item.op:
            groups.setdefault(item.group, []).append(item)
    for group, items in groups.items():
        ages = [i for i in items if i.category == AGE]
        floors = [i.value for i in ages if i.op and i.op.startswith(">") and i.value is not None]
        ceilings = [i.value for i in ages if i.op and i.op.startswith("<") and i.value is not None]
        if floors and ceilings and max(floors) > min(ceilings):
            out.append(f"{group}: age floor {max(floors):g} above ceiling {min(ceilings):g}")
        limits: dict[tuple[str, str], set[float]] = {}
        for item in items:
            if item.category == THRESHOLD and item.value is not None and item.op:
                measure = item.key.split("|")[3].split("|")[0]
                limits.setdefault((measure, item.op), set()).add(item.value)
        for (measure, op), values in limits.items():
            if len(values) > 1:
                shown_values = ", ".join(f"{v:g}" for v in sorted(values))
                out.append(f"{group}: {measure} {op} twice ({shown_values})")
    return tuple(out)


def build_checklists(criteria: Criteria) -> tuple[Checklist, ...]:
    """One checklist per governed drug of a payer policy (or one for a procedure policy with
    criteria); CMS documents, which carry no PA criteria, have none."""
    if criteria.payer is None:
        return ()
    drugs = governed_drugs(criteria)
    subjects: list[tuple[str, str, str | None]] = [(d, "drug", d) for d in drugs]
    tree = tree_of(criteria)
    tree = tree if tree is not None and not tree.is_empty else None
    if not subjects and (
        tree is not None or criteria.step_therapy or criteria.thresholds or criteria.age_limits
    ):
        subjects = [(criteria.title or criteria.document_id, "procedure", None)]
    payer = rule_payer(criteria)
    out = []
    for subject, kind, drug in subjects:
        items = _tree_items(criteria, tree) if tree is not None else _items(criteria, drug)
        if not items:
            continue
        required = [pa.required for pa in criteria.prior_auth if pa.drug in (drug, None)]
        out.append(
            Checklist(
                payer=payer,
                subject=subject,
                subject_kind=kind,
                label=_label(subject, criteria.title) if kind == "drug" else subject,
                document=criteria.document_id,
                title=criteria.title,
                version=criteria.version,
                effective_date=criteria.effective_date,
                prior_auth_required=any(required) if required else None,
                items=items,
                outline=render_outline(tree) if tree is not None else (),
            )
        )
    return tuple(out)


# -- diff -----------------------------------------------------------------------------------


def _stricter(before: ChecklistItem, after: ChecklistItem) -> bool | None:
    """Whether `after` asks more of a PA request than `before` (None: cannot be said)."""
    if before.category == "step_therapy":
        pairs = [(before.days, after.days), (before.count, after.count)]
        deltas = [(a or 0) - (b or 0) for b, a in pairs if a != b]
        if deltas and all(d > 0 for d in deltas):
            return True
        if deltas and all(d < 0 for d in deltas):
            return False
        return None
    if before.category in ("threshold", "age") and None not in (before.value, after.value):
        assert before.value is not None and after.value is not None
        if before.op != after.op:
            return None
        higher = after.value > before.value
        return higher if (before.op or "").startswith(">") else not higher
    if before.category == "diagnosis":
        lost = set(before.codes) - set(after.codes)
        gained = set(after.codes) - set(before.codes)
        return bool(lost) and not gained if lost or gained else None
    if before.category == "prescriber":
        return set(after.codes) < set(before.codes) or None
    if before.category in ("approval", "renewal") and before.days and after.days:
        return after.days < before.days  # a shorter approval means earlier renewal
    return None


def diff_checklists(old: Checklist | None, new: Checklist | None) -> tuple[ChecklistChange, ...]:
    """Items added, removed and changed from `old` to `new` (either may be None)."""
    if old is None and new is None:
        return ()
    heading = (new or old).heading  # type: ignore[union-attr]
    old_items = {item.key: (n, item) for n, item in enumerate(old.items if old else (), 1)}
    new_items = {item.key: (n, item) for n, item in enumerate(new.items if new else (), 1)}
    out: list[ChecklistChange] = []
    for key, (position, item) in new_items.items():
        if key not in old_items:
            out.append(
                ChecklistChange(
                    action="added",
                    position=position,
                    before=None,
                    after=item,
                    summary=f"{heading}: new item {position}: {item.text}",
                    stricter=True,
                )
            )
            continue
        _, previous = old_items[key]
        if previous == item:
            continue
        if previous.requirement != item.requirement:
            summary = (
                f"{heading}: item {position} now requires {item.requirement} "
                f"(was {previous.requirement})"
            )
        else:
            summary = f"{heading}: item {position} now reads: {item.text}"
        out.append(
            ChecklistChange(
                action="changed",
                position=position,
                before=previous,
                after=item,
                summary=summary,
                stricter=_stricter(previous, item),
            )
        )
    for key, (position, item) in old_items.items():
        if key not in new_items:
            out.append(
                ChecklistChange(
                    action="removed",
                    position=position,
                    before=item,
                    after=None,
                    summary=f"{heading}: item {position} no longer required: {item.text}",
                    stricter=False,
                )
            )
    return tuple(out)


def _severity(change: ChecklistChange) -> Severity:
    """The severity the criteria diff gives the same fact (issue 15: one fact, one severity):
    a changed step trial or approval duration is scored as the criterion change is."""
    before, after = change.before, change.after
    if change.action == "changed" and before is not None and after is not None:
        if before.category in ("approval", "renewal"):
            return approval_period_severity(before.days, after.days)
        if before.category == "step_therapy" and before.days != after.days:
            return step_therapy_severity(before.days, after.days)
    return checklist_change_severity(change.action, change.stricter)


def checklist_feed_changes(
    old: Checklist | None, new: Checklist | None, *, effective_date: dt.date | None
) -> tuple[Change, ...]:
    """The checklist's changes as feed `Change`s: kind `checklist_changed`, field the
    checklist's subject, before/after the item texts, evidence the readable summary.

    A checklist seen for the first time gives none (the document or drug being new is reported
    by the criteria diff already); one that disappears gives a single change, not one per item.
    """
    if old is None:
        return ()
    if new is not None and new.outline and not old.outline:
        # The old checklist was built before criteria trees (flat items); item by item the two
        # say nothing comparable. The criteria diff reports what really changed.
        return ()
    if new is None:
        return (
            Change(
                kind=ChangeKind.CHECKLIST_CHANGED,
                severity=checklist_change_severity("removed", False),
                field=old.subject,
                before=f"{len(old.items)} items",
                after=None,
                evidence=f"{old.heading}: checklist withdrawn (the policy no longer covers it)",
                effective_date=effective_date,
            ),
        )
    return tuple(
        Change(
            kind=ChangeKind.CHECKLIST_CHANGED,
            severity=_severity(change),
            field=new.subject,
            before=change.before.text if change.before else None,
            after=change.after.text if change.after else None,
            evidence=change.summary,
            effective_date=effective_date,
        )
        for change in diff_checklists(old, new)
    )


# -- JSON -----------------------------------------------------------------------------------


def checklist_to_dict(checklist: Checklist) -> dict[str, Any]:
    """Plain JSON-able form (what the store keeps and the API returns), key for key what
    `dataclasses.asdict` gave, built field by field: its recursive deep copy of every item was
    a third of storing a payer version's checklists. An item's evidence is the one dataclass
    inside a checklist."""
    body: dict[str, Any] = {f.name: getattr(checklist, f.name) for f in _CHECKLIST_FIELDS}
    body["items"] = tuple(_item_to_dict(item) for item in checklist.items)
    body["format"] = CHECKLIST_FORMAT
    body["effective_date"] = (
        checklist.effective_date.isoformat() if checklist.effective_date else None
    )
    body["outline"] = list(checklist.outline)
    return body


def _item_to_dict(item: ChecklistItem) -> dict[str, Any]:
    body: dict[str, Any] = {f.name: getattr(item, f.name) for f in _ITEM_FIELDS}
    body["codes"] = list(item.codes)
    body["alternatives"] = list(item.alternatives)
    if item.evidence is not None:
        body["evidence"] = {f.name: getattr(item.evidence, f.name) for f in _EVIDENCE_FIELDS}
    return body


_CHECKLIST_FIELDS = dataclasses.fields(Checklist)
_ITEM_FIELDS = dataclasses.fields(ChecklistItem)
_EVIDENCE_FIELDS = dataclasses.fields(Evidence)


def checklist_from_dict(body: dict[str, Any]) -> Checklist:
    if body.get("format") not in _READABLE_FORMATS:
        raise ValueError(f"unsupported checklist format {body.get('format')!r}")
    items = tuple(
        ChecklistItem(
            **{
                **item,
                "codes": tuple(item["codes"]),
                "alternatives": tuple(item.get("alternatives", ())),
                "evidence": Evidence(**item["evidence"]) if item.get("evidence") else None,
            }
        )
        for item in body["items"]
    )
    fields = {
        k: v for k, v in body.items() if k not in ("format", "items", "effective_date", "outline")
    }
    effective = body.get("effective_date")
    return Checklist(
        **fields,
        items=items,
        effective_date=dt.date.fromisoformat(effective) if effective else None,
        outline=tuple(body.get("outline", ())),
    )
