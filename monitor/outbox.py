"""The outbox: rows written in the same transaction as the changes they announce (issue 6)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session


def enqueue_changes(session: Session, change_ids: Sequence[int]) -> None:
    """Record, inside the publishing transaction, that `change_ids` are to be announced.

    Not written yet: notifications are issue 6. Nothing is announced until then.
    """
