"""Changes between two criteria trees, each naming its indication and branch:
"atopic dermatitis, initial: trial of topical corticosteroid 8 weeks → 12 weeks". A criterion that
moves between branches or groups is a change; an indication block that appears or goes is one
change; diff(a, a) is empty and diff(b, a) is diff(a, b) with before and after swapped."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from diffing.model import Change, ChangeKind, Severity
from diffing.severity import approval_period_severity, step_therapy_severity
from diffing.tree.nodes import (
    AGE,
    ALL,
    PRESCRIBER,
    STEP_THERAPY,
    THRESHOLD,
    CriteriaTree,
    CriterionLeaf,
    IndicationBlock,
    PlacedLeaf,
)
from diffing.tree.render import leaf_text

_KINDS = {
    STEP_THERAPY: (
        ChangeKind.STEP_THERAPY_ADDED,
        ChangeKind.STEP_THERAPY_REMOVED,
        ChangeKind.STEP_THERAPY_CHANGED,
    ),
    THRESHOLD: (
        ChangeKind.THRESHOLD_ADDED,
        ChangeKind.THRESHOLD_REMOVED,
        ChangeKind.THRESHOLD_CHANGED,
    ),
    AGE: (ChangeKind.AGE_LIMIT_CHANGED,) * 3,
    PRESCRIBER: (ChangeKind.SPECIALTY_CHANGED,) * 3,
}
_OTHER = (ChangeKind.CRITERION_ADDED, ChangeKind.CRITERION_REMOVED, ChangeKind.CRITERION_CHANGED)
_ADDED, _REMOVED, _CHANGED = 0, 1, 2
_Key = tuple[str, str, str, str]


def _key(placed: PlacedLeaf) -> _Key:
    return (placed.indication, placed.phase, placed.leaf.kind, placed.leaf.subject)


def _where(indication: str, phase: str) -> str:
    return f"{indication}, {phase}"


def _kind(leaf_kind: str, which: int) -> ChangeKind:
    return _KINDS.get(leaf_kind, _OTHER)[which]


def shown(leaf: CriterionLeaf) -> str:
    """The value a change's before / after shows, as the policy wrote it ("8 weeks")."""
    if leaf.kind == STEP_THERAPY:
        count = f"{leaf.count} agents, " if leaf.count and leaf.count > 1 else ""
        return count + (leaf.duration_text or "a trial")
    return leaf.value


def _field(placed: PlacedLeaf) -> str:
    leaf = placed.leaf
    what = leaf.subject if leaf.kind == STEP_THERAPY else leaf.kind.replace("_", " ")
    if leaf.kind == THRESHOLD:
        what = leaf.subject.split("|")[0]
    return f"{_where(placed.indication, placed.phase)}: {what}"


def _changed_severity(a: CriterionLeaf, b: CriterionLeaf) -> Severity:
    if a.kind == STEP_THERAPY:
        if a.days != b.days:
            return step_therapy_severity(a.days, b.days)
        return step_therapy_severity(a.count, b.count)
    if a.kind == THRESHOLD and a.number is not None and b.number is not None and a.op == b.op:
        higher = b.number > a.number
        stricter = higher if (a.op or "").startswith(">") else not higher
        return Severity.HIGH if stricter else Severity.MEDIUM
    if a.kind == AGE:
        return Severity.MEDIUM
    return Severity.HIGH


def _sentences(*leaves: CriterionLeaf) -> set[str]:
    return {leaf.evidence.sentence for leaf in leaves if leaf.evidence is not None}


def _block_change(block: IndicationBlock, *, appeared: bool, effective: dt.date | None) -> Change:
    count = sum(1 for branch in block.branches for _ in branch.root.leaves())
    summary = f"{block.name}: {count} criteria" + (
        ", " + ", ".join(b.phase for b in block.branches) if block.branches else ""
    )
    return Change(
        kind=ChangeKind.CRITERION_ADDED if appeared else ChangeKind.CRITERION_REMOVED,
        severity=Severity.MEDIUM,
        field=f"{block.name}: indication",
        before=None if appeared else summary,
        after=summary if appeared else None,
        evidence=f"{block.name}: indication {'now covered' if appeared else 'no longer listed'}",
        effective_date=effective,
    )


def diff_trees_explained(
    old: CriteriaTree, new: CriteriaTree, *, effective: dt.date | None = None
) -> tuple[tuple[Change, ...], set[str]]:
    """The changes, and the evidence sentences they account for (kept out of the text diff)."""
    out: list[Change] = []
    explained: set[str] = set()
    old_blocks = {b.name: b for b in old.indications}
    new_blocks = {b.name: b for b in new.indications}
    for name in old_blocks.keys() - new_blocks.keys():
        out.append(_block_change(old_blocks[name], appeared=False, effective=effective))
    for name in new_blocks.keys() - old_blocks.keys():
        out.append(_block_change(new_blocks[name], appeared=True, effective=effective))
    for block in [b for b in new.indications if b.name in old_blocks]:
        approvals = _approval_changes(old_blocks[block.name], block, effective)
        out.extend(approvals)
        for change in approvals:
            phase = (change.field or "").split(", ")[-1].split(":")[0]
            for side in (old_blocks[block.name].branch(phase), block.branch(phase)):
                where = side and (side.approval_evidence or side.evidence)
                if where:
                    explained.add(where.sentence)

    def grouped(tree: CriteriaTree, keep: set[str]) -> dict[_Key, list[PlacedLeaf]]:
        by_key: dict[_Key, list[PlacedLeaf]] = defaultdict(list)
        for placed in tree.placed():
            if placed.indication in keep:
                by_key[_key(placed)].append(placed)
        return by_key

    common = old_blocks.keys() & new_blocks.keys()
    before, after = grouped(old, common), grouped(new, common)
    gone: list[PlacedLeaf] = []
    came: list[PlacedLeaf] = []
    for key in [*before, *(k for k in after if k not in before)]:
        olds, news = before.get(key, []), after.get(key, [])
        for a, b in zip(olds, news, strict=False):
            if a.leaf == b.leaf and a.parent_op == b.parent_op:
                continue
            explained |= _sentences(a.leaf, b.leaf)
            out.append(_changed(a, b, effective))
        gone.extend(olds[len(news) :])
        came.extend(news[len(olds) :])
    for a in list(gone):
        moved = next(
            (
                p
                for p in came
                if p.indication == a.indication
                and p.leaf == a.leaf
                and (p.leaf.kind, p.leaf.subject) == (a.leaf.kind, a.leaf.subject)
            ),
            None,
        )
        if moved is None:
            continue
        b = moved
        gone.remove(a)
        came.remove(b)
        explained |= _sentences(a.leaf, b.leaf)
        out.append(
            Change(
                kind=_kind(b.leaf.kind, _CHANGED),
                severity=Severity.HIGH,
                field=f"{b.indication}: {_field(b).split(': ', 1)[1]}",
                before=f"{a.phase}: {leaf_text(a.leaf)}",
                after=f"{b.phase}: {leaf_text(b.leaf)}",
                evidence=f"{b.indication}: {leaf_text(b.leaf)} moved from {a.phase} to {b.phase}",
                effective_date=effective,
            )
        )
    for a in gone:
        explained |= _sentences(a.leaf)
        out.append(
            Change(
                kind=_kind(a.leaf.kind, _REMOVED),
                # one alternative fewer narrows what qualifies; one requirement fewer widens it
                severity=Severity.MEDIUM if a.parent_op == ALL else Severity.HIGH,
                field=_field(a),
                before=leaf_text(a.leaf),
                evidence=f"{_where(a.indication, a.phase)}: no longer required: "
                f"{leaf_text(a.leaf)}",
                effective_date=effective,
            )
        )
    for b in came:
        explained |= _sentences(b.leaf)
        out.append(
            Change(
                kind=_kind(b.leaf.kind, _ADDED),
                severity=Severity.HIGH if b.parent_op == ALL else Severity.MEDIUM,
                field=_field(b),
                after=leaf_text(b.leaf),
                evidence=f"{_where(b.indication, b.phase)}: "
                + ("new requirement: " if b.parent_op == ALL else "new alternative: ")
                + leaf_text(b.leaf),
                effective_date=effective,
            )
        )
    return tuple(out), explained


def _changed(a: PlacedLeaf, b: PlacedLeaf, effective: dt.date | None) -> Change:
    where = _where(b.indication, b.phase)
    if a.leaf != b.leaf:
        detail = f"{leaf_text(b.leaf)}: {shown(a.leaf)} → {shown(b.leaf)}"
        if a.leaf.days != b.leaf.days and a.leaf.days and b.leaf.days:
            detail += f" ({a.leaf.days} → {b.leaf.days} days)"
        return Change(
            kind=_kind(b.leaf.kind, _CHANGED),
            severity=_changed_severity(a.leaf, b.leaf),
            field=_field(b),
            before=shown(a.leaf),
            after=shown(b.leaf),
            # The policy's own sentence, so the claim can be checked against the text (the
            # change page marks it in the document); the summary when no sentence was kept.
            evidence=(b.leaf.evidence.sentence if b.leaf.evidence else None)
            or f"{where}: {detail}",
            effective_date=effective,
        )
    word = {ALL: "all of", "any": "one of"}
    return Change(
        kind=_kind(b.leaf.kind, _CHANGED),
        severity=Severity.HIGH if b.parent_op == ALL else Severity.MEDIUM,
        field=_field(b),
        before=f"{word.get(a.parent_op, a.parent_op)}: {leaf_text(a.leaf)}",
        after=f"{word.get(b.parent_op, b.parent_op)}: {leaf_text(b.leaf)}",
        evidence=f"{where}: {leaf_text(b.leaf)} is now in a '{word.get(b.parent_op)}' group "
        f"(was '{word.get(a.parent_op)}')",
        effective_date=effective,
    )


def _approval_changes(
    old: IndicationBlock, new: IndicationBlock, effective: dt.date | None
) -> list[Change]:
    out = []
    phases = [b.phase for b in old.branches]
    phases += [b.phase for b in new.branches if b.phase not in phases]
    for phase in phases:
        a, b = old.branch(phase), new.branch(phase)
        a_days = a.approval_days if a else None
        b_days = b.approval_days if b else None
        if a_days == b_days:
            continue
        a_text = a.approval_text if a else None
        b_text = b.approval_text if b else None
        out.append(
            Change(
                kind=ChangeKind.APPROVAL_PERIOD_CHANGED,
                severity=approval_period_severity(a_days, b_days),
                field=f"{_where(new.name, phase)}: approval",
                before=a_text,
                after=b_text,
                evidence=f"{_where(new.name, phase)}: approve for {a_text or 'not stated'} → "
                f"{b_text or 'not stated'}",
                effective_date=effective,
            )
        )
    return out


def diff_trees(
    old: CriteriaTree, new: CriteriaTree, *, effective: dt.date | None = None
) -> tuple[Change, ...]:
    """Indication blocks added or removed; per block, approval durations changed and leaves
    added, removed, changed (same criterion, other value or other AND/OR parent) and moved (same
    criterion in another branch of the same indication)."""
    return diff_trees_explained(old, new, effective=effective)[0]
