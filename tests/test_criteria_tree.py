# ruff: noqa: E501  (the example policy keeps its long criteria lines)
"""Criteria trees: indication blocks, branches, AND/OR groups, exclusions, diffs, outlines."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from diffing.model import PolicyDocument, Section
from diffing.parse.sections import section_role
from diffing.tree import build_tree, tree_of
from diffing.tree.diff import diff_trees
from diffing.tree.render import render_outline

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"

POLICY = """\
1. Atopic Dermatitis. Approve for the duration noted if the patient meets ONE of the following (A or B):
A) Initial Therapy. Approve for 4 months if the patient meets ALL of the following (i, ii, iii and iv):
i. Patient is >= 6 months of age; AND
ii. Patient meets ONE of the following (a or b):
a) Patient has tried a topical corticosteroid for at least {days} consecutive days; OR
Note: Examples include triamcinolone and mometasone.
b) Patient has tried a topical calcineurin inhibitor; AND
iii. Patient is not receiving this medication in combination with another biologic; AND
iv. The medication is prescribed by or in consultation with a dermatologist; OR
B) Patient is Currently Receiving this Medication. Approve for 1 year if the patient meets BOTH of the following (i and ii):
i. Patient has been established on therapy for at least 4 months; AND
ii. Patient experienced a beneficial clinical response when assessed by at least one objective measure.
"""


def _tree(days: int = 28, extra: str = ""):
    text = POLICY.format(days=days) + extra
    document = PolicyDocument(
        title="Example",
        content_type="text",
        sections=(
            Section(name="background", text="Patient has tried methotrexate for 8 weeks."),
            Section(name="coverage criteria", text=text),
        ),
    )
    return build_tree(document)


def test_section_roles() -> None:
    assert section_role("coverage criteria") == "criteria"
    assert section_role("coverage rationale") == "criteria"
    assert section_role("initial authorization") == "criteria"
    assert section_role("background") == "context"
    assert section_role("clinical evidence") == "context"
    assert section_role("references") == "context"
    assert section_role("policy history/revision information") == "history"
    assert section_role("applicable codes") == "codes"


def test_indication_branches_groups_and_exclusion() -> None:
    tree = _tree()
    (block,) = tree.indications
    assert block.name == "atopic dermatitis"
    initial = block.branch("initial")
    continuation = block.branch("continuation")
    assert initial is not None and continuation is not None
    assert (initial.approval_text, continuation.approval_text) == ("4 months", "1 year")
    assert initial.root.op == "all"
    placed = {p.leaf.kind: p for p in tree.placed() if p.phase == "initial"}
    assert placed["age"].leaf.value == ">= 6 months"  # the policy's unit, not ">= 0 years"
    assert placed["exclusion"].leaf.kind == "exclusion"
    steps = [p for p in tree.placed() if p.leaf.kind == "step_therapy"]
    assert {p.parent_op for p in steps} == {"any"}
    assert steps[0].leaf.duration_text == "28 consecutive days"
    assert steps[0].leaf.days == 28
    # nothing from the background section, nothing from the note's examples
    assert all(p.leaf.evidence.section == "coverage criteria" for p in tree.placed())
    assert not any("methotrexate" in p.leaf.value for p in tree.placed())


def test_outline_groups_alternatives_and_says_must_not() -> None:
    outline = render_outline(_tree())
    assert outline[0] == "Atopic dermatitis"
    assert "  Initial authorization (approve for 4 months)" in outline
    assert any(line.strip().startswith("one of: Trial of") for line in outline)
    assert any("Must not be receiving" in line for line in outline)


def test_diff_names_indication_and_branch() -> None:
    tree = _tree()
    assert diff_trees(tree, tree) == ()
    changes = diff_trees(tree, _tree(days=42))
    assert len(changes) == 1
    change = changes[0]
    assert change.field.startswith("atopic dermatitis, initial:")  # indication and branch
    assert (change.before, change.after) == ("28 consecutive days", "42 consecutive days")
    assert "42 consecutive days" in change.evidence  # the policy's own sentence


def test_moving_a_criterion_between_branches_is_a_change() -> None:
    tree = _tree()
    (block,) = tree.indications
    initial, continuation, *_ = block.branches
    leaf = next(c for c in initial.root.children if getattr(c, "kind", "") == "prescriber")
    moved = dataclasses.replace(
        tree,
        indications=(
            dataclasses.replace(
                block,
                branches=(
                    dataclasses.replace(
                        initial,
                        root=dataclasses.replace(
                            initial.root,
                            children=tuple(c for c in initial.root.children if c is not leaf),
                        ),
                    ),
                    dataclasses.replace(
                        continuation,
                        root=dataclasses.replace(
                            continuation.root, children=(*continuation.root.children, leaf)
                        ),
                    ),
                ),
            ),
        ),
    )
    (change,) = diff_trees(tree, moved)
    assert "moved from initial to continuation" in (change.evidence or "")


def _bench():
    spec = importlib.util.spec_from_file_location(
        "criteria_trees_bench", Path(__file__).resolve().parents[1] / "bench" / "criteria_trees.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not REALDATA.exists(), reason=f"{REALDATA} absent")
def test_real_trees_no_context_leaves_and_floor_on_cigna() -> None:
    result = _bench().run()
    assert result["figures"]["context_leaves"] == 0
    cigna = result["per_document"]["cigna_infliximab"]
    # floors at the measured figures (not the targets; see the report)
    assert cigna["matched"] / cigna["expected"] >= 0.85
    assert cigna["matched"] / cigna["predicted"] >= 0.85
    assert cigna["attached"] / cigna["matched"] >= 0.9
    figures = result["figures"]
    # the targets (measured: 0.992 / 0.992 / 1.0)
    assert figures["leaf_precision"] >= 0.95 and figures["leaf_recall"] >= 0.95
    assert figures["attachment"] >= 0.95
    for name, document in result["per_document"].items():
        # no formulary row, legend or caption read as a criterion on the Ohio pages
        if name.startswith("ohio_"):
            assert document["false_positives"] == [], name


@pytest.mark.skipif(not REALDATA.exists(), reason=f"{REALDATA} absent")
def test_held_out_trees_no_context_leaves() -> None:
    bench = _bench()
    result = bench.run(bench.LABELS / "heldout")
    assert set(result["per_document"]) == {"ohio_osteoporosis", "uhc_infliximab"}
    assert result["figures"]["context_leaves"] == 0
    # floors well under the measured figures (0.957 / 0.938): the set is small
    assert result["figures"]["leaf_precision"] >= 0.9
    assert result["figures"]["leaf_recall"] >= 0.85


@pytest.mark.skipif(not REALDATA.exists(), reason=f"{REALDATA} absent")
def test_real_outlines_have_no_contradictory_ages() -> None:
    bench = _bench()
    for path in sorted(bench.LABELS.glob("*.json")):
        label = json.loads(path.read_text())
        source = REALDATA / label["source"]
        document = bench.parse_document(source.read_bytes(), label["content_type"])
        tree = build_tree(document)
        for block in tree.indications:
            for branch in block.branches:
                floors = [
                    leaf.number
                    for parent, leaf in branch.root.leaves()
                    if leaf.kind == "age" and parent.op == "all" and (leaf.op or "").startswith(">")
                ]
                ceilings = [
                    leaf.number
                    for parent, leaf in branch.root.leaves()
                    if leaf.kind == "age" and parent.op == "all" and (leaf.op or "").startswith("<")
                ]
                if floors and ceilings:
                    assert max(f or 0 for f in floors) <= min(c or 0 for c in ceilings), (
                        path.stem,
                        block.name,
                    )


def test_section_roles_of_a_document() -> None:
    from diffing.parse.sections import section_roles

    names = ["coverage policy", "applicable codes", "signatera", "kras", "references"]
    assert section_roles(names) == ("criteria", "codes", "context", "context", "context")
    assert section_roles(["preamble", "atopic dermatitis"]) == ("criteria", "criteria")


def _criteria(days: int = 28, extra: str = ""):
    from diffing.model import Criteria

    tree = _tree(days, extra)
    return Criteria(
        document_id="/p/dupixent.pdf",
        doc_type="payer_policy",
        title="Dupixent",
        version=None,
        status="active",
        payer="Acme Health",
        sections=(Section(name="coverage criteria", text=POLICY.format(days=days) + extra),),
        criteria_tree=tree,
    )


def test_tree_survives_the_json_round_trip() -> None:
    from diffing.serialize import criteria_from_json, criteria_to_json

    criteria = _criteria()
    again = criteria_from_json(criteria_to_json(criteria))
    assert tree_of(again) == tree_of(criteria)
    assert [p.leaf.evidence for p in tree_of(again).placed()] == [
        p.leaf.evidence for p in tree_of(criteria).placed()
    ]
    assert [p.leaf.path for p in tree_of(again).placed()] == [
        p.leaf.path for p in tree_of(criteria).placed()
    ]


def test_payer_diff_uses_the_tree_once_per_fact() -> None:
    import datetime as dt

    from diffing.diff import diff_criteria
    from diffing.model import ChangeKind
    from diffing.serialize import criteria_from_json, criteria_to_json

    old = criteria_from_json(criteria_to_json(_criteria(28)))  # as read back from the store
    new = _criteria(42)
    today = dt.date(2026, 1, 1)
    assert diff_criteria(old, old, today=today).is_empty
    (change,) = diff_criteria(old, new, today=today).changes
    assert change.kind is ChangeKind.STEP_THERAPY_CHANGED
    assert (change.before, change.after) == ("28 consecutive days", "42 consecutive days")
    assert change.field.startswith("atopic dermatitis, initial: ")
    assert change.severity.value == "high"
    (back,) = diff_criteria(new, old, today=today).changes
    assert (back.before, back.after, back.field) == (change.after, change.before, change.field)


def test_tree_diff_inverts() -> None:
    a = _tree(28)
    b = _tree(42, "Patient is not receiving Dupixent in combination with omalizumab.\n")
    forward, backward = diff_trees(a, b), diff_trees(b, a)
    assert len(forward) == len(backward)
    pairs = {(c.field, c.before, c.after) for c in forward}
    assert {(c.field, c.after, c.before) for c in backward} == pairs
    assert diff_trees(a, a) == () and diff_trees(b, b) == ()
