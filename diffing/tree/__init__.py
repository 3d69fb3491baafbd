"""Criteria trees: indication blocks, initial/continuation branches, AND/OR groups, typed leaves."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    # The builder (and the extraction vocabulary behind it) loads on first use: the store reads
    # stored trees through `diffing.tree.codec` and must not import the parsers.
    if name == "build_tree":
        from diffing.tree.build import build_tree

        return build_tree
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
