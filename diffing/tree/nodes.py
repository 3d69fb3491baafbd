"""The criteria tree of a payer policy: indication blocks, their initial / continuation / dosing
branches, AND/OR groups from the policy's own connectors, and typed leaves with evidence."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from diffing.model import Criteria, Evidence

ALL = "all"
ANY = "any"
GENERAL = "general"  # criteria that belong to no indication block

# Leaf kinds. Values are what a person reads and what the diff compares.
AGE = "age"
PRESCRIBER = "prescriber"
STEP_THERAPY = "step_therapy"
THRESHOLD = "threshold"
DIAGNOSIS = "diagnosis"
EXCLUSION = "exclusion"
DOCUMENTATION = "documentation"
RESPONSE = "response"
ON_THERAPY = "on_therapy"
DOSING = "dosing"

INITIAL = "initial"
CONTINUATION = "continuation"
DOSING_BRANCH = "dosing"
EXCLUSION_BRANCH = "exclusion"


@dataclass(frozen=True, kw_only=True, slots=True)
class CriterionLeaf:
    """One typed criterion: "age >= 18 years", "trial of methotrexate for 3 months".

    `value` is the comparable value as shown; `subject` says which criterion it is across
    versions (the prerequisite, the measure, the age bound's direction); `duration_text` keeps
    a duration as written ("28 consecutive days") next to `days`.
    """

    kind: str
    value: str
    subject: str = ""
    text: str = field(default="", compare=False)
    op: str | None = None
    number: float | None = None
    unit: str = ""
    days: int | None = None
    duration_text: str | None = None
    count: int | None = None
    note: str = field(default="", compare=False)
    path: tuple[str, ...] = field(default=(), compare=False)
    evidence: Evidence | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        return f"{self.kind}: {self.value}"


@dataclass(frozen=True, kw_only=True, slots=True)
class CriteriaGroup:
    """All or any of `children` (leaves and nested groups); `text` is the item that opened it."""

    op: str  # ALL or ANY
    children: tuple[CriteriaGroup | CriterionLeaf, ...] = ()
    text: str = field(default="", compare=False)

    def leaves(self) -> Iterator[tuple[CriteriaGroup, CriterionLeaf]]:
        """Every leaf with its direct parent group, depth first."""
        for child in self.children:
            if isinstance(child, CriterionLeaf):
                yield self, child
            else:
                yield from child.leaves()


@dataclass(frozen=True, kw_only=True, slots=True)
class CriteriaBranch:
    phase: str  # initial, continuation, dosing, exclusion
    root: CriteriaGroup
    approval_text: str | None = None  # as written: "6 months", "1 year", "365 days"
    approval_days: int | None = None
    evidence: Evidence | None = field(default=None, compare=False)
    # where the approval duration was stated, when not on the branch's own opening line
    approval_evidence: Evidence | None = field(default=None, compare=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class IndicationBlock:
    name: str  # lower case: "atopic dermatitis", GENERAL for policy-wide criteria
    branches: tuple[CriteriaBranch, ...] = ()
    evidence: Evidence | None = field(default=None, compare=False)

    def branch(self, phase: str) -> CriteriaBranch | None:
        return next((b for b in self.branches if b.phase == phase), None)


@dataclass(frozen=True, kw_only=True, slots=True)
class PlacedLeaf:
    indication: str
    phase: str
    parent_op: str
    leaf: CriterionLeaf


@dataclass(frozen=True, kw_only=True, slots=True)
class CriteriaTree:
    indications: tuple[IndicationBlock, ...] = ()

    def placed(self) -> Iterator[PlacedLeaf]:
        for block in self.indications:
            for branch in block.branches:
                for parent, leaf in branch.root.leaves():
                    yield PlacedLeaf(
                        indication=block.name, phase=branch.phase, parent_op=parent.op, leaf=leaf
                    )

    @property
    def is_empty(self) -> bool:
        return not any(True for _ in self.placed())


def tree_of(criteria: Criteria) -> CriteriaTree | None:
    """The criteria tree of payer criteria (None for CMS documents and older stored criteria)."""
    tree = criteria.criteria_tree
    return tree if isinstance(tree, CriteriaTree) else None
