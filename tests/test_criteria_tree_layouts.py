# ruff: noqa: E501  (the example policies keep their long criteria lines)
"""Criteria trees on the layouts the real-data bench found wrong: Ohio formulary pages (drug
tables, superscript legends, link captions, "a OR - For X: b", a policy-wide authorization
length, "<Drug> Criteria") and UHC text whose bullets were lost (reference numbers after the
lead-in, therapy lists, dose limits, "Reauthorization will be for …")."""

from __future__ import annotations

from diffing.model import PolicyDocument, Section
from diffing.tree import CriteriaTree, build_tree


def _tree(*sections: tuple[str, str]) -> CriteriaTree:
    return build_tree(
        PolicyDocument(
            title="Example",
            content_type="text/markdown",
            sections=tuple(Section(name=name, text=text) for name, text in sections),
        )
    )


def _leaves(tree: CriteriaTree) -> list[tuple[str, str, str, str, str]]:
    return [(p.indication, p.phase, p.parent_op, p.leaf.kind, p.leaf.value) for p in tree.placed()]


OHIO = (
    (
        "preferred",
        "Preferred | Generic Name | Quantity | Time (Days)\nAndroderm AR PA\nDepo-Testosterone AR PA",
    ),
    (
        "non-preferred",
        "Non-Preferred | Generic Name | Quantity | Time (Days)\nJatenzo AR\nTlando AR\nXyosted AR",
    ),
    (
        "authorizations",
        "Length of Authorizations: 365 Days\nAll Authorizations: Must be prescribed in accordance with FDA approved labeling",
    ),
    (
        "clinical pa",
        "Clinical PA Criteria\n- Must provide documentation of lab work to support the need for testosterone supplementation",
    ),
    (
        "non-preferred (2)",
        "Non-Preferred Criteria\n"
        "- Must provide documentation of medical necessity beyond convenience for why the patient cannot be changed to a preferred drug OR"
        " - For any nonsolid oral dosage formulation: must provide documentation of medical necessity for why patient cannot be changed to a solid oral dosage formulation\n"
        "- Must have had an inadequate clinical response of at least 90 days with ALL preferred drugs\n"
        "- For non-preferred extended-release formulations: must provide documentation of an inadequate clinical response with its immediate release formulation (if available)",
    ),
    (
        "teriparatide (forteo tm )",
        "Teriparatide (Forteo TM ) Criteria\n- Must have had an inadequate clinical response of at least 365 days with one bisphosphonate",
    ),
    (
        "subsequent authorization",
        "Subsequent Authorization Criteria\n"
        "- Must provide documentation of patient's clinical response to treatment and ongoing safety monitoring\n"
        "AR - All drugs: a PA is required for patients younger than 18 years",
    ),
    ("criteria (2)", "Preferred Drug List\nQuantity Limit List"),
)


def test_ohio_formulary_rows_legends_and_captions_are_not_criteria() -> None:
    leaves = _leaves(_tree(*OHIO))
    values = " ".join(value for *_, value in leaves)
    for drug in ("jatenzo", "tlando", "xyosted", "androderm"):
        assert drug not in values  # formulary table rows
    assert "preferred drug list" not in values and "quantity limit list" not in values
    assert not [leaf for leaf in leaves if leaf[3] == "age"]  # the "AR" legend
    # the qualifier of a requirement stays a note, not a criterion
    assert not [leaf for leaf in leaves if "immediate release" in leaf[4]]


def test_ohio_or_pair_drug_block_and_page_wide_length() -> None:
    tree = _tree(*OHIO)
    leaves = _leaves(tree)
    either = [leaf for leaf in leaves if leaf[0] == "non-preferred agents" and leaf[2] == "any"]
    assert [leaf[3] for leaf in either] == ["documentation", "documentation"]
    assert "solid oral dosage formulation" in either[1][4]
    step = next(
        leaf for leaf in leaves if leaf[0] == "non-preferred agents" and leaf[3] == "step_therapy"
    )
    assert step[2] == "all"
    assert (
        "teriparatide",
        "initial",
        "all",
        "step_therapy",
        "bisphosphonate for 365 days",
    ) in leaves
    # the continuation list is the page's, not the last drug block's
    assert [leaf[0] for leaf in leaves if leaf[1] == "continuation"] == ["general"]
    approvals = {
        (block.name, branch.phase): branch.approval_text
        for block in tree.indications
        for branch in block.branches
        if branch.approval_text
    }
    # "Length of Authorizations: 365 Days" is one page-wide fact, kept once
    assert approvals == {("general", "initial"): "365 days"}


UHC = """\
Infliximab is proven and medically necessary for the treatment of Crohn’s disease when all of the following
criteria is met:1,3-5,41,57, 62
For initial therapy, all of the following:
Diagnosis of moderately to severely active Crohn’s disease; and
One of the following:
Disease is considered high risk (e.g., fistulizing, stricturing, luminal, perianal, extensive disease, growth delay)
History of failure to one of the following conventional therapies at up to maximally indicated doses, unless contraindicated or clinically significant adverse effects are experienced:
Corticosteroids (e.g., prednisone, methylprednisolone, budesonide)
Azathioprine (Imuran)
Patient has been previously treated with a targeted immunomodulator FDA-approved for the treatment of Crohn’s disease [e.g., adalimumab]
Patient is currently on Infliximab and
Infliximab is dosed no higher than 10 mg/kg, administered every 8 weeks; and
Prescribed by or in consultation with a gastroenterologist; and
Initial authorization is for no more than 12 months
For continuation of therapy, all of the following:
Documentation of positive clinical response to infliximab; and
Reauthorization will be for no more than 12 months
"""


def test_uhc_text_without_bullets() -> None:
    tree = _tree(("coverage rationale", UHC))
    (block,) = tree.indications
    assert block.name == "crohn’s disease"  # the lead-in despite its reference numbers
    initial, continuation = block.branch("initial"), block.branch("continuation")
    assert initial is not None and continuation is not None
    assert (initial.approval_text, continuation.approval_text) == ("12 months", "12 months")
    leaves = {(leaf[3], leaf[4]): leaf[2] for leaf in _leaves(tree)}
    assert leaves[("step_therapy", "corticosteroids")] == "any"  # a therapy, not a condition
    assert leaves[("step_therapy", "azathioprine")] == "any"  # a capitalised item, not a caption
    assert ("step_therapy", "a targeted immunomodulator fda-approved") in leaves
    # the any-of list ended at "… and": the dose limit and prescriber are required again
    assert leaves[("dosing", "10 mg/kg")] == "all"
    assert leaves[("prescriber", "gastroenterologist")] == "all"
    assert not [key for key in leaves if "authorization" in key[1]]


def test_inline_list_is_one_criterion_and_and_splits_two() -> None:
    text = """\
1. Uveitis. Approve for the duration noted if the patient meets ONE of the following (A or B):
A) Initial Therapy. Approve for 6 months if the patient meets ALL of the following (i, ii, and iii):
i. Patient has tried one of the following therapies: periocular, intraocular, or systemic corticosteroids, or immunosuppressives; AND
ii. Patient has arthritis primarily in the knees, ankles and/or feet AND has tried at least ONE conventional synthetic disease-modifying antirheumatic drug (DMARD); AND
iii. The medication is prescribed by or in consultation with an ophthalmologist.
"""
    leaves = _leaves(_tree(("coverage policy", text)))
    kinds = [(leaf[3], leaf[2]) for leaf in leaves]
    assert kinds == [
        ("step_therapy", "all"),
        ("diagnosis", "all"),
        ("step_therapy", "all"),
        ("prescriber", "all"),
    ]
    assert "immunosuppressives" in leaves[0][4]


def test_plain_indication_line_heads_its_block_and_disclaimer_is_skipped() -> None:
    text = """\
Psoriatic Arthritis
Skyrizi is proven and medically necessary for active psoriatic arthritis in adults when it is prescribed by or in consultation with a dermatologist or rheumatologist, and the patient has had an inadequate response after at least 3 months of a conventional disease-modifying drug such as methotrexate.
"""
    disclaimer = (
        "Benefit coverage for health services is determined by the member specific benefit plan "
        "document and applicable laws that may require coverage for a specific service."
    )
    tree = _tree(("coverage rationale", text), ("medical records documentation", disclaimer))
    leaves = _leaves(tree)
    assert {leaf[0] for leaf in leaves} == {"psoriatic arthritis"}
    assert {leaf[3] for leaf in leaves} == {"prescriber", "step_therapy"}
