"""Criteria trees: indication blocks, initial/continuation branches, AND/OR groups, typed leaves."""

from diffing.tree.build import build_tree
from diffing.tree.nodes import (
    CriteriaBranch,
    CriteriaGroup,
    CriteriaTree,
    CriterionLeaf,
    IndicationBlock,
    PlacedLeaf,
    tree_of,
)

__all__ = [
    "CriteriaBranch",
    "CriteriaGroup",
    "CriteriaTree",
    "CriterionLeaf",
    "IndicationBlock",
    "PlacedLeaf",
    "build_tree",
    "tree_of",
]
