"""A criteria tree as a person reads it: indented "all of" / "one of" groups per indication and
branch, exclusions as "must not be receiving …", durations and ages as the policy wrote them."""

from __future__ import annotations

from diffing.tree.nodes import (
    AGE,
    ALL,
    DOSING,
    EXCLUSION,
    ON_THERAPY,
    PRESCRIBER,
    RESPONSE,
    STEP_THERAPY,
    CriteriaGroup,
    CriteriaTree,
    CriterionLeaf,
)

_PHASES = {
    "initial": "Initial authorization",
    "continuation": "Continuation (reauthorization)",
    "dosing": "Dosing",
    "exclusion": "Not covered",
}


def leaf_text(leaf: CriterionLeaf) -> str:
    """One criterion in words: "Patient age >= 6 months", "Must not be receiving …"."""
    if leaf.kind == EXCLUSION:
        return f"Must not be receiving {leaf.value}"
    if leaf.kind == AGE:
        return f"Patient age {leaf.value}"
    if leaf.kind == PRESCRIBER:
        return f"Prescribed by or in consultation with: {leaf.value}"
    if leaf.kind == STEP_THERAPY:
        count = f"{leaf.count} of " if leaf.count and leaf.count > 1 else ""
        duration = f" for at least {leaf.duration_text}" if leaf.duration_text else ""
        return f"Trial of {count}{leaf.subject}{duration}"
    if leaf.kind == ON_THERAPY:
        return f"On therapy for at least {leaf.value}"
    if leaf.kind == RESPONSE:
        return f"Documented response: {leaf.value}"
    if leaf.kind == DOSING:
        return f"Dose up to {leaf.value}"
    if leaf.kind == "threshold":
        return f"Documented {leaf.value}"
    if leaf.kind == "diagnosis":
        return f"Diagnosis: {leaf.value}"
    return leaf.value[:1].upper() + leaf.value[1:]


def group_text(group: CriteriaGroup) -> str:
    """A group of leaves only, joined: "one of: BSA >= 10%, EASI >= 16, IGA >= 3"."""
    word = "all of" if group.op == ALL else "one of"
    return f"{word}: " + ", ".join(
        leaf_text(c) if isinstance(c, CriterionLeaf) else group_text(c) for c in group.children
    )


def _group_lines(group: CriteriaGroup, depth: int) -> list[str]:
    pad = "  " * depth
    leaves_only = all(isinstance(c, CriterionLeaf) for c in group.children)
    if group.op != ALL and leaves_only and len(group.children) <= 4:
        return [pad + group_text(group)]  # alternatives as ONE item
    lines = [pad + ("all of:" if group.op == ALL else "one of:")]
    for child in group.children:
        if isinstance(child, CriterionLeaf):
            lines.append("  " * (depth + 1) + leaf_text(child))
        else:
            lines.extend(_group_lines(child, depth + 1))
    return lines


def render_outline(tree: CriteriaTree) -> tuple[str, ...]:
    lines: list[str] = []
    for block in tree.indications:
        lines.append(block.name[:1].upper() + block.name[1:])
        for branch in block.branches:
            title = _PHASES.get(branch.phase, branch.phase)
            if branch.approval_text:
                title += f" (approve for {branch.approval_text})"
            lines.append("  " + title)
            lines.extend(_group_lines(branch.root, 2))
    return tuple(lines)
