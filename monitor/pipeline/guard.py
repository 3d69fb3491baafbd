"""The quarantine's guard: should a new version that drops most of what its predecessor said be
held for a reviewer instead of published?

Why: a payer site that answers with an error page, or a CMS Article whose code table comes
back nearly empty, still parses; published, it would "detect" that hundreds of codes were
dropped and alert everybody. `assess` is pure; `monitor.pipeline.publish` calls it for every
version that has a predecessor and holds the version when it objects.
"""

from __future__ import annotations

from dataclasses import dataclass

from diffing.model import Criteria
from monitor.config import QuarantineConfig


@dataclass(frozen=True, kw_only=True)
class Assessment:
    """Why a version is held: how much of its predecessor it drops."""

    old_codes: int
    dropped_codes: int
    old_items: int
    dropped_items: int
    reason: str


def _code_keys(criteria: Criteria) -> set[tuple[str, str]]:
    # (system, code), not the table: a code moved from covered to non-covered is a change the
    # diff reports, not a loss of content.
    return {(code.system.value, code.code.upper()) for code in criteria.codes}


def _item_keys(criteria: Criteria) -> set[tuple[object, ...]]:
    """The payer criteria items, each by its type and the `key` the diff matches items by."""
    groups = (
        criteria.drugs,
        criteria.step_therapy,
        criteria.prior_auth,
        criteria.thresholds,
        criteria.approval_periods,
        criteria.age_limits,
    )
    return {(type(item).__name__, *item.key) for group in groups for item in group}


def _share(dropped: int, of: int) -> str:
    return f"{dropped} of {of} {{}} ({round(100 * dropped / of)} %)"


def assess(old: Criteria, new: Criteria, config: QuarantineConfig) -> Assessment | None:
    """None when `new` may be published after `old`; else why it should be held."""
    old_codes, new_codes = _code_keys(old), _code_keys(new)
    old_items, new_items = _item_keys(old), _item_keys(new)
    dropped_codes = len(old_codes - new_codes)
    dropped_items = len(old_items - new_items)
    reasons = []
    if len(old_codes) >= config.min_items and dropped_codes > config.max_dropped_share * len(
        old_codes
    ):
        reasons.append("drops " + _share(dropped_codes, len(old_codes)).format("codes"))
    if len(old_items) >= config.min_items and dropped_items > config.max_dropped_share * len(
        old_items
    ):
        reasons.append("drops " + _share(dropped_items, len(old_items)).format("criteria items"))
    if not reasons:
        return None
    if new.status != old.status:
        # A retirement that empties the tables is real more often than not: say so up front.
        reasons.append(f"status {old.status} -> {new.status}")
    return Assessment(
        old_codes=len(old_codes),
        dropped_codes=dropped_codes,
        old_items=len(old_items),
        dropped_items=dropped_items,
        reason="; ".join(reasons),
    )
