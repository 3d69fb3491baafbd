"""Changes between two criteria trees, each naming its indication and branch:
"atopic dermatitis, initial: trial of topical corticosteroid 28 days → 42 days". A criterion that
moves between branches or groups is a change; diff(a, a) is empty."""

from __future__ import annotations

from diffing.model import Change, ChangeKind, Severity
from diffing.tree.nodes import AGE, EXCLUSION, STEP_THERAPY, THRESHOLD, CriteriaTree, PlacedLeaf
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
}


def _key(placed: PlacedLeaf) -> tuple[str, str, str, str]:
    return (placed.indication, placed.phase, placed.leaf.kind, placed.leaf.subject)


def _where(placed: PlacedLeaf) -> str:
    return f"{placed.indication}, {placed.phase}"


def _kind(leaf_kind: str, which: int) -> ChangeKind:
    if leaf_kind in _KINDS:
        return _KINDS[leaf_kind][which]
    if leaf_kind == AGE:
        return ChangeKind.AGE_LIMIT_CHANGED
    return ChangeKind.SECTION_CHANGED if which == 2 else ChangeKind.CHECKLIST_CHANGED


def _shown(placed: PlacedLeaf) -> str:
    leaf = placed.leaf
    if leaf.kind == STEP_THERAPY:
        return leaf.duration_text or "a trial"
    return leaf.value


def diff_trees(old: CriteriaTree, new: CriteriaTree) -> tuple[Change, ...]:
    """Leaves added, removed, changed (same criterion, other value or other AND/OR parent) and
    moved (same criterion in another branch of the same indication)."""
    before = {_key(p): p for p in old.placed()}
    after = {_key(p): p for p in new.placed()}
    out: list[Change] = []
    gone = [k for k in before if k not in after]
    came = [k for k in after if k not in before]
    for key in [k for k in before if k in after]:
        a, b = before[key], after[key]
        if a.leaf == b.leaf and a.parent_op == b.parent_op:
            continue
        if a.leaf != b.leaf:
            detail = f"{leaf_text(a.leaf)}: {_shown(a)} → {_shown(b)}"
        else:
            detail = f"{leaf_text(b.leaf)}: now in an '{b.parent_op} of' group (was {a.parent_op})"
        out.append(
            Change(
                kind=_kind(b.leaf.kind, 2),
                severity=Severity.HIGH,
                field=f"{_where(b)}: {b.leaf.kind}",
                before=_shown(a),
                after=_shown(b),
                evidence=f"{_where(b)}: {detail}",
            )
        )
    for key in list(gone):
        moved = next(
            (
                k
                for k in came
                if k[0] == key[0] and k[2:] == key[2:] and after[k].leaf == before[key].leaf
            ),
            None,
        )
        if moved is None:
            continue
        gone.remove(key)
        came.remove(moved)
        a, b = before[key], after[moved]
        out.append(
            Change(
                kind=ChangeKind.CHECKLIST_CHANGED,
                severity=Severity.HIGH,
                field=f"{b.indication}: {b.leaf.kind}",
                before=a.phase,
                after=b.phase,
                evidence=f"{b.indication}: {leaf_text(b.leaf)} moved from {a.phase} to {b.phase}",
            )
        )
    for key in gone:
        a = before[key]
        out.append(
            Change(
                kind=_kind(a.leaf.kind, 1),
                severity=Severity.MEDIUM if a.leaf.kind != EXCLUSION else Severity.HIGH,
                field=f"{_where(a)}: {a.leaf.kind}",
                before=leaf_text(a.leaf),
                evidence=f"{_where(a)}: no longer required: {leaf_text(a.leaf)}",
            )
        )
    for key in came:
        b = after[key]
        out.append(
            Change(
                kind=_kind(b.leaf.kind, 0),
                severity=Severity.HIGH,
                field=f"{_where(b)}: {b.leaf.kind}",
                after=leaf_text(b.leaf),
                evidence=f"{_where(b)}: new requirement: {leaf_text(b.leaf)}",
            )
        )
    return tuple(out)
