"""A criteria tree to and from plain JSON-able values, so criteria read back from the store keep
their indication blocks, branches and AND/OR groups (and the next version diffs against them)."""

from __future__ import annotations

import dataclasses
from typing import Any

from diffing.model import Evidence
from diffing.tree.nodes import (
    CriteriaBranch,
    CriteriaGroup,
    CriteriaTree,
    CriterionLeaf,
    IndicationBlock,
)

_LEAF_FIELDS = tuple(f.name for f in dataclasses.fields(CriterionLeaf) if f.name != "evidence")


def _evidence_to(evidence: Evidence | None) -> list[Any] | None:
    return [evidence.sentence, evidence.page, evidence.section] if evidence else None


def _evidence_from(body: list[Any] | None) -> Evidence | None:
    if not body:
        return None
    sentence, page, section = body
    return Evidence(sentence=sentence, page=page, section=section)


def _leaf_to(leaf: CriterionLeaf) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _LEAF_FIELDS:
        value = getattr(leaf, name)
        if value in (None, "", ()):
            continue  # defaults are left out: smaller, and stable when fields are added
        out[name] = list(value) if isinstance(value, tuple) else value
    if leaf.evidence is not None:
        out["evidence"] = _evidence_to(leaf.evidence)
    return out


def _leaf_from(body: dict[str, Any]) -> CriterionLeaf:
    fields = {k: v for k, v in body.items() if k in _LEAF_FIELDS}
    if "path" in fields:
        fields["path"] = tuple(fields["path"])
    return CriterionLeaf(**fields, evidence=_evidence_from(body.get("evidence")))


def _group_to(group: CriteriaGroup) -> dict[str, Any]:
    return {
        "op": group.op,
        "text": group.text,
        "children": [
            {"leaf": _leaf_to(c)} if isinstance(c, CriterionLeaf) else {"group": _group_to(c)}
            for c in group.children
        ],
    }


def _group_from(body: dict[str, Any]) -> CriteriaGroup:
    children: list[CriteriaGroup | CriterionLeaf] = [
        _leaf_from(c["leaf"]) if "leaf" in c else _group_from(c["group"]) for c in body["children"]
    ]
    return CriteriaGroup(op=body["op"], text=body.get("text", ""), children=tuple(children))


def tree_to_dict(tree: CriteriaTree) -> dict[str, Any]:
    return {
        "indications": [
            {
                "name": block.name,
                "evidence": _evidence_to(block.evidence),
                "branches": [
                    {
                        "phase": branch.phase,
                        "approval_text": branch.approval_text,
                        "approval_days": branch.approval_days,
                        "evidence": _evidence_to(branch.evidence),
                        "approval_evidence": _evidence_to(branch.approval_evidence),
                        "root": _group_to(branch.root),
                    }
                    for branch in block.branches
                ],
            }
            for block in tree.indications
        ]
    }


def tree_from_dict(body: dict[str, Any]) -> CriteriaTree:
    return CriteriaTree(
        indications=tuple(
            IndicationBlock(
                name=block["name"],
                evidence=_evidence_from(block.get("evidence")),
                branches=tuple(
                    CriteriaBranch(
                        phase=branch["phase"],
                        approval_text=branch.get("approval_text"),
                        approval_days=branch.get("approval_days"),
                        evidence=_evidence_from(branch.get("evidence")),
                        approval_evidence=_evidence_from(branch.get("approval_evidence")),
                        root=_group_from(branch["root"]),
                    )
                    for branch in block["branches"]
                ),
            )
            for block in body["indications"]
        )
    )
