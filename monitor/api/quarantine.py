"""HTTP routes for versions held for review: included by `monitor.api.app`.

Every route needs scope ``review``: the list shows what the monitor refused to publish, and a
decision publishes (approve) or closes (reject) it. The reviewer recorded is the one named in
the body; the API key's name is logged with it.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from monitor.api.auth import Principal, ReviewAccess
from monitor.api.deps import MAX_ID, Id, PageLimit, StoreDep
from monitor.api.exports import paged
from monitor.api.schemas import ReviewerName, ReviewNote
from monitor.pipeline.quarantine import (
    STATUSES,
    QuarantineDecided,
    QuarantineError,
    QuarantineNotFound,
    QuarantineRecord,
    approve,
    list_quarantined,
    reject,
)
from monitor.store.core import Store

log = logging.getLogger("policy_monitor.api")

router = APIRouter(tags=["quarantine"])
StatusFilter = Literal["pending", "approved", "rejected", "superseded", "all"]
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or an unknown or revoked one"},
    403: {"description": "The key's scope does not allow this (needs review)"},
}
_DECISION_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    404: {"description": "No such quarantined version"},
    409: {"description": "Decided already (only pending versions can be decided)"},
}


assert set(get_args(StatusFilter)) == {*STATUSES, "all"}  # kept in step with the model


class _Model(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")


class QuarantineOut(_Model):
    id: int
    source: str
    document: str = Field(description="L33979, A57520, NCD 250.1 or a payer document's path")
    title: str
    url: str
    source_version: str
    version_number: int | None
    content_sha256: str
    reason: str = Field(description='Why it was held, e.g. "drops 412 of 430 codes (96 %)"')
    old_codes: int
    dropped_codes: int
    old_items: int
    dropped_items: int
    detected_at: dt.datetime
    status: str = Field(description="pending, approved, rejected or superseded")
    reviewer: str | None
    note: str | None
    decided_at: dt.datetime | None
    version_id: int | None = Field(description="The version approval published")
    previous_version_id: int | None
    run_id: int


class DecisionIn(_Model):
    reviewer: ReviewerName = Field(description="Who decided")
    note: ReviewNote = Field("", description="Why")


def _out(record: QuarantineRecord) -> QuarantineOut:
    return QuarantineOut.model_validate(record)


@router.get("/quarantine", response_model=list[QuarantineOut], responses=_ERRORS)
def list_held(
    store: StoreDep,
    _principal: ReviewAccess,
    status_: Annotated[StatusFilter, Query(alias="status")] = "pending",
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Cursor: the last id seen")] = 0,
    limit: PageLimit = 100,
) -> list[QuarantineOut]:
    """Versions held for review (scope `review`); `status=all` for every one. At most `limit`,
    ordered by id: the next page is `after` = the last id of this one."""
    chosen = None if status_ == "all" else status_
    held = list_quarantined(store, status=chosen, after=after, limit=limit)
    page, _more = paged(held, limit)
    return [_out(r) for r in page]


def _decide(
    store: Store, hold_id: int, body: DecisionIn, principal: Principal, verb: str
) -> QuarantineOut:
    decide = approve if verb == "approve" else reject
    try:
        record = decide(store, hold_id, reviewer=body.reviewer, note=body.note)
    except QuarantineNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except QuarantineDecided as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    except QuarantineError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    log.info(
        "quarantine #%d %s by %s (key %s)", hold_id, record.status, body.reviewer, principal.name
    )
    return _out(record)


@router.post(
    "/quarantine/{hold_id}/approve", response_model=QuarantineOut, responses=_DECISION_ERRORS
)
def approve_held(
    store: StoreDep, hold_id: Id, body: DecisionIn, principal: ReviewAccess
) -> QuarantineOut:
    """Publish the held version as the document's new version (scope `review`)."""
    return _decide(store, hold_id, body, principal, "approve")


@router.post(
    "/quarantine/{hold_id}/reject", response_model=QuarantineOut, responses=_DECISION_ERRORS
)
def reject_held(
    store: StoreDep, hold_id: Id, body: DecisionIn, principal: ReviewAccess
) -> QuarantineOut:
    """Keep the held version out; the document stays at its last version (scope `review`)."""
    return _decide(store, hold_id, body, principal, "reject")
