"""Criteria-level changes of payer policies: step therapy, prior authorization, approval
periods, thresholds, age limits, prescriber specialties and drugs.

Items are matched across versions by their `key` (for example drug, indication and
prerequisite of a step-therapy requirement), so "8 weeks -> 12 weeks" is one change with a
before and an after, not a removal and an addition.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from diffing.model import (
    AgeLimit,
    ApprovalPeriod,
    Change,
    ChangeKind,
    Criteria,
    Evidence,
    Severity,
    StepTherapy,
    Threshold,
)
from diffing.severity import (
    approval_period_severity,
    step_therapy_severity,
    threshold_severity,
)
from diffing.tree.diff import diff_trees_explained
from diffing.tree.nodes import tree_of


def _by_key(items: Iterable[Any]) -> dict[tuple[Any, ...], Any]:
    out: dict[tuple[Any, ...], Any] = {}
    for item in items:
        out.setdefault(item.key, item)  # the first mention of a criterion wins
    return out


def _sentence(item: Any) -> str | None:
    evidence: Evidence | None = getattr(item, "evidence", None)
    return evidence.sentence if evidence else None


def _context(item: Any) -> str:
    parts = [p for p in (getattr(item, "drug", None), getattr(item, "indication", None)) if p]
    return f" ({', '.join(parts)})" if parts else ""


def _evidence(item: Any, label: str) -> str:
    sentence = _sentence(item)
    return f"{label}{_context(item)}: {sentence}" if sentence else f"{label}{_context(item)}"


def format_threshold(threshold: Threshold) -> str:
    return f"{threshold.op} {threshold.value:g}{threshold.unit}"


def _step(item: StepTherapy) -> str:
    agents = f"{item.count_required} agent{'s' if item.count_required != 1 else ''}"
    days = f", >= {item.min_duration_days} days" if item.min_duration_days else ""
    return f"{item.prerequisite}: {agents}{days}"


class _Collector:
    """Collects changes and the sentences they were read from (to keep them out of the
    sentence-level text diff)."""

    def __init__(self, effective: dt.date | None) -> None:
        self.changes: list[Change] = []
        self.sentences: set[str] = set()
        self.effective = effective

    def add(
        self,
        *,
        kind: ChangeKind,
        severity: Severity,
        field: str | None,
        before: str | None,
        after: str | None,
        old: Any,
        new: Any,
        label: str,
    ) -> None:
        for item in (old, new):
            if item is not None and (sentence := _sentence(item)):
                self.sentences.add(sentence)
        self.changes.append(
            Change(
                kind=kind,
                severity=severity,
                field=field,
                before=before,
                after=after,
                evidence=_evidence(new if new is not None else old, label),
                effective_date=self.effective,
            )
        )


def _one_sided(
    out: _Collector,
    kind: ChangeKind,
    severity: Severity,
    field: str | None,
    shown: str,
    item: Any,
    label: str,
    *,
    appeared: bool,
) -> None:
    """A criterion present in only one of the two versions."""
    out.add(
        kind=kind,
        severity=severity,
        field=field,
        before=None if appeared else shown,
        after=shown if appeared else None,
        old=None if appeared else item,
        new=item if appeared else None,
        label=label,
    )


def _appeared(out: _Collector, *args: Any) -> None:
    _one_sided(out, *args, appeared=True)


def _vanished(out: _Collector, *args: Any) -> None:
    _one_sided(out, *args, appeared=False)


def _match(
    old: Sequence[Any],
    new: Sequence[Any],
    on_change: Callable[[Any, Any], None],
    on_added: Callable[[Any], None],
    on_removed: Callable[[Any], None],
) -> None:
    before, after = _by_key(old), _by_key(new)
    for key in sorted(before.keys() - after.keys(), key=str):
        on_removed(before[key])
    for key in sorted(after.keys() - before.keys(), key=str):
        on_added(after[key])
    for key in sorted(before.keys() & after.keys(), key=str):
        if before[key] != after[key]:
            on_change(before[key], after[key])


def payer_changes(
    old: Criteria, new: Criteria, effective: dt.date | None
) -> tuple[list[Change], set[str]]:
    """Structured changes, and the evidence sentences they account for.

    When both versions have a criteria tree, steps, thresholds, ages, prescribers and approval
    periods are compared in the tree only (each change names its indication and branch), so one
    fact is reported once; the flat lists then serve rule rows of older versions only.
    """
    out = _Collector(effective)
    old_tree, new_tree = tree_of(old), tree_of(new)
    if (
        old_tree is not None
        and new_tree is not None
        and not (old_tree.is_empty and new_tree.is_empty)
    ):
        changes, sentences = diff_trees_explained(old_tree, new_tree, effective=effective)
        out.changes.extend(changes)
        out.sentences |= sentences
    else:
        _step_therapy(old, new, out)
        _approval_periods(old, new, out)
        _thresholds(old, new, out)
        _age_limits(old, new, out)
        _specialties(old, new, out)
    _prior_auth(old, new, out)
    _drugs(old, new, out)
    return out.changes, out.sentences


def _step_therapy(old: Criteria, new: Criteria, out: _Collector) -> None:
    def changed(a: StepTherapy, b: StepTherapy) -> None:
        for field in ("min_duration_days", "count_required"):
            before, after = getattr(a, field), getattr(b, field)
            if before != after:
                out.add(
                    kind=ChangeKind.STEP_THERAPY_CHANGED,
                    severity=step_therapy_severity(before, after),
                    field=field,
                    before=None if before is None else str(before),
                    after=None if after is None else str(after),
                    old=a,
                    new=b,
                    label=b.prerequisite,
                )

    _match(
        old.step_therapy,
        new.step_therapy,
        changed,
        lambda b: _appeared(
            out,
            ChangeKind.STEP_THERAPY_ADDED,
            Severity.HIGH,
            b.prerequisite,
            _step(b),
            b,
            b.prerequisite,
        ),
        lambda a: _vanished(
            out,
            ChangeKind.STEP_THERAPY_REMOVED,
            Severity.MEDIUM,
            a.prerequisite,
            _step(a),
            a,
            a.prerequisite,
        ),
    )


def _prior_auth(old: Criteria, new: Criteria, out: _Collector) -> None:
    was = {p.key: p for p in old.prior_auth if p.required}
    now = {p.key: p for p in new.prior_auth if p.required}
    for key in sorted(now.keys() - was.keys(), key=str):
        item = now[key]
        out.add(
            kind=ChangeKind.PRIOR_AUTH_ADDED,
            severity=Severity.HIGH,
            field=item.drug,
            before=None,
            after="required",
            old=None,
            new=item,
            label="prior authorization",
        )
    for key in sorted(was.keys() - now.keys(), key=str):
        item = was[key]
        out.add(
            kind=ChangeKind.PRIOR_AUTH_REMOVED,
            severity=Severity.MEDIUM,
            field=item.drug,
            before="required",
            after=None,
            old=item,
            new=None,
            label="prior authorization",
        )


def _approval_periods(old: Criteria, new: Criteria, out: _Collector) -> None:
    def record(a: ApprovalPeriod | None, b: ApprovalPeriod | None) -> None:
        item = b or a
        assert item is not None
        before = str(a.days) if a else None
        after = str(b.days) if b else None
        out.add(
            kind=ChangeKind.APPROVAL_PERIOD_CHANGED,
            severity=approval_period_severity(a.days if a else None, b.days if b else None),
            field=item.phase,
            before=before,
            after=after,
            old=a,
            new=b,
            label=f"{item.phase} approval period (days)",
        )

    _match(
        old.approval_periods,
        new.approval_periods,
        record,
        lambda b: record(None, b),
        lambda a: record(a, None),
    )


def _thresholds(old: Criteria, new: Criteria, out: _Collector) -> None:
    _match(
        old.thresholds,
        new.thresholds,
        lambda a, b: out.add(
            kind=ChangeKind.THRESHOLD_CHANGED,
            severity=threshold_severity(a, b),
            field=b.measure,
            before=format_threshold(a),
            after=format_threshold(b),
            old=a,
            new=b,
            label=b.measure,
        ),
        lambda b: _appeared(
            out,
            ChangeKind.THRESHOLD_ADDED,
            Severity.HIGH,
            b.measure,
            format_threshold(b),
            b,
            b.measure,
        ),
        lambda a: _vanished(
            out,
            ChangeKind.THRESHOLD_REMOVED,
            Severity.MEDIUM,
            a.measure,
            format_threshold(a),
            a,
            a.measure,
        ),
    )


def _age_limits(old: Criteria, new: Criteria, out: _Collector) -> None:
    def record(a: AgeLimit | None, b: AgeLimit | None) -> None:
        item = b or a
        assert item is not None
        field = "minimum_age" if item.op.startswith(">") else "maximum_age"
        out.add(
            kind=ChangeKind.AGE_LIMIT_CHANGED,
            severity=Severity.MEDIUM,
            field=field,
            before=str(a.years) if a else None,
            after=str(b.years) if b else None,
            old=a,
            new=b,
            label=field.replace("_", " "),
        )

    _match(
        old.age_limits, new.age_limits, record, lambda b: record(None, b), lambda a: record(a, None)
    )


def _specialties(old: Criteria, new: Criteria, out: _Collector) -> None:
    if old.prescriber_specialties == new.prescriber_specialties:
        return
    severity = Severity.HIGH if not old.prescriber_specialties else Severity.MEDIUM
    out.changes.append(
        Change(
            kind=ChangeKind.SPECIALTY_CHANGED,
            severity=severity,
            field="prescriber_specialty",
            before=", ".join(old.prescriber_specialties) or None,
            after=", ".join(new.prescriber_specialties) or None,
            effective_date=out.effective,
        )
    )


def _drugs(old: Criteria, new: Criteria, out: _Collector) -> None:
    _match(
        old.drugs,
        new.drugs,
        lambda a, b: None,
        lambda b: _appeared(out, ChangeKind.DRUG_ADDED, Severity.MEDIUM, None, b.name, b, b.name),
        lambda a: _vanished(out, ChangeKind.DRUG_REMOVED, Severity.MEDIUM, None, a.name, a, a.name),
    )
