"""The quarantine review: a reviewer approves a held version (it is published) or rejects it.

A version the guard (`monitor.pipeline.guard`) objects to is held in the store
(`monitor.store.quarantine`) with its payload and extracted criteria, so approval needs no
refetch. While a row is pending the document stays at its last published version (rules,
checklists, feed unchanged), and the same bytes fetched again find the row rather than writing
another. `approve` publishes the held version through the normal publish path, only without
the guard; `reject` closes it, and the same bytes are then ignored (counted unchanged). A
version of the document published normally later closes the older pending rows as
`superseded`: approving them then would publish stale content over newer.
"""

from __future__ import annotations

import datetime as dt

from diffing.model import Criteria, RawDocument
from monitor.pipeline.publish import PublishContext, publish_in_transaction
from monitor.store.core import Store, utcnow
from monitor.store.publishing import lock_change_feed
from monitor.store.quarantine import (
    APPROVED,
    PENDING,
    REJECTED,
    STATUSES,
    SUPERSEDED,
    QuarantineDecided,
    QuarantineError,
    QuarantineNotFound,
    QuarantineRecord,
    claim,
    get_quarantined,
    held_criteria,
    list_quarantined,
    load_held,
    mark_alerted,
    record_published,
    unalerted,
)
from sources import SOURCE_KINDS

# The store's reading side is re-exported: the CLI and the API review through this module.
__all__ = [
    "APPROVED",
    "PENDING",
    "REJECTED",
    "STATUSES",
    "SUPERSEDED",
    "QuarantineDecided",
    "QuarantineError",
    "QuarantineNotFound",
    "QuarantineRecord",
    "approve",
    "get_quarantined",
    "held_criteria",
    "list_quarantined",
    "mark_alerted",
    "reject",
    "unalerted",
]


def _check_reviewer(reviewer: str, note: str) -> tuple[str, str]:
    reviewer = reviewer.strip()
    if not reviewer or len(reviewer) > 200 or "\x00" in reviewer:
        raise QuarantineError("reviewer must be 1-200 characters (no NUL)")
    if len(note) > 10_000 or "\x00" in note:
        raise QuarantineError("note must be at most 10,000 characters (no NUL)")
    return reviewer, note


def reject(store: Store, hold_id: int, *, reviewer: str, note: str = "") -> QuarantineRecord:
    """Keep the version out: the document stays at its last published version, and these
    bytes are not held or published again."""
    reviewer, note = _check_reviewer(reviewer, note)
    with store.session() as txn:
        claim(txn, hold_id, REJECTED, reviewer=reviewer, note=note)
    return get_quarantined(store, hold_id)


def approve(
    store: Store,
    hold_id: int,
    *,
    reviewer: str,
    note: str = "",
    today: dt.date | None = None,
) -> QuarantineRecord:
    """Publish the held version through the normal publish path (version, criteria, rules,
    checklists, changes and outbox rows in one transaction, with the decision), bypassing
    only the guard."""
    reviewer, note = _check_reviewer(reviewer, note)
    with store.session() as txn:
        lock_change_feed(txn)  # first, before the row lock of the decision
        claim(txn, hold_id, APPROVED, reviewer=reviewer, note=note)
        held = load_held(txn, hold_id)
        kind = SOURCE_KINDS.get(held.source_kind)
        ctx = PublishContext(
            source_id=held.source_id,
            run_id=held.run_id,
            baseline=held.baseline,
            today=today or utcnow().date(),
            extract=_never,
            extractor_name=held.extractor,
            diff=kind.diff if kind is not None else None,
            quarantine=None,  # the reviewer decided: no guard
        )
        result = publish_in_transaction(txn, ctx, held.raw, held.listed, held.criteria)
        record_published(txn, hold_id, result.version_id)
    return get_quarantined(store, hold_id)


def _never(raw: RawDocument) -> Criteria:
    raise QuarantineError(f"{raw.key}: a held version is published from its stored criteria")
