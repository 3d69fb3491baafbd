"""Pydantic models of the HTTP API's requests and responses (they make the OpenAPI document)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

SeverityName = Literal["noise", "unverified", "low", "medium", "high"]
NoticeFlag = Literal["short_notice", "retroactive"]


def _not_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("reviewer must not be blank")
    return value


# Who reviewed or decided, as a request names them. No NUL characters: PostgreSQL text cannot
# hold them.
ReviewerName = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$"), AfterValidator(_not_blank)
]
ReviewNote = Annotated[str, Field(max_length=10_000, pattern=r"^[^\x00]*$")]


# Written as datetime.isoformat() ("+00:00"), exactly as `policy-monitor changes --format json`
# writes it, rather than pydantic's "Z".
Timestamp = Annotated[
    dt.datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorOut(_Model):
    detail: str = Field(description="What went wrong, for a person")


# The error answers routes document (FastAPI documents only the success answer by itself).
KEY_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No API key, or an unknown or revoked one"},
    403: {"model": ErrorOut, "description": "The key's scope does not allow this"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "No such"}}
# Routes answering HTML or bytes still answer errors in JSON; FastAPI would document them with
# the route's own media type unless told.
JSON_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}


class HealthOut(_Model):
    status: Literal["ok", "unavailable"]
    reason: str | None = Field(None, description="Why the service is unavailable")


class DocumentLinks(_Model):
    self: str = Field(description="This document's versions: GET it with a read key")


class DocumentOut(_Model):
    id: int = Field(description="Numeric id; the cursor of `GET /documents?after=`")
    source: str = Field(description="Source name from the config")
    key: str = Field(description="The document's id at its source: L33979, A57520, or a URL path")
    doc_type: str
    title: str
    url: str = Field(description="Where the source publishes it")
    first_seen_at: Timestamp
    withdrawn_at: Timestamp | None
    versions: int = Field(description="Stored versions")
    latest_version: int | None = Field(description="Highest stored version number")
    links: DocumentLinks


class DocumentPage(_Model):
    items: list[DocumentOut]
    next: int | None = Field(
        description="Pass as `after` for the next page; null when this is the last page"
    )


class VersionLinks(_Model):
    self: str
    raw: str = Field(description="The fetched bytes, with their content type")


class VersionOut(_Model):
    version_id: int = Field(description="Row id of this stored version")
    version_number: int | None = Field(
        description="The source's version number (payer documents: 1, 2, 3 … in fetch order)"
    )
    source_version: str = Field(description="The source's own version id, empty when none")
    title: str
    status: str
    effective_date: dt.date | None
    retirement_date: dt.date | None
    url: str
    content_type: str
    content_sha256: str = Field(description="sha256 of the raw bytes (also the raw ETag)")
    size: int = Field(description="Raw size in bytes")
    fetched_at: Timestamp
    published_at: Timestamp
    links: VersionLinks


class DocumentVersionsOut(_Model):
    document: DocumentOut
    versions: list[VersionOut]
    next: int | None = Field(None, description="Pass as `after` for the next page (a version id)")


class SectionOut(_Model):
    name: str
    text: str


class VersionDetailOut(_Model):
    document: DocumentOut
    version: VersionOut
    criteria: dict[str, Any] = Field(
        description="The extracted criteria as stored (canonical JSON), without the text "
        "sections, which are in `sections`"
    )
    sections: list[SectionOut] = Field(description="Clean text of the document, by section")


class ReviewIn(_Model):
    reviewer: ReviewerName = Field(description="Who reviewed the change")
    note: ReviewNote = Field("", description="What they concluded")


class ReviewOut(_Model):
    id: int
    change_id: int
    reviewer: str
    note: str
    reviewed_at: Timestamp


class ChangeLinks(_Model):
    self: str
    page: str = Field(description="The change page (HTML), before and after side by side")
    version: str = Field(description="The document version the change was found in")
    review: str = Field(description="POST a review here (scope review)")


class ChangeOut(_Model):
    """The fields of `policy-monitor changes --format json`, plus the latest review and links."""

    id: int = Field(description="Increasing; the feed cursor")
    source: str
    document_id: str = Field(description="The document's key at its source")
    title: str
    kind: str = Field(description="code_added, step_therapy_changed, … (see the README)")
    field: str | None
    before: str | None
    after: str | None
    severity: SeverityName
    effective_date: dt.date | None
    detected_at: Timestamp
    url: str = Field(description="The document at its source")
    version: str
    previous_version: str | None
    evidence: str | None = Field(description="The sentence the change was found in")
    baseline: bool = Field(description="Listed by the source's first run; never alerted")
    claimed_severity: SeverityName | None = Field(
        None,
        description="For an `unverified` change (a claim the two versions' texts contradict: "
        "an extraction error, never alerted), the severity it claimed; null otherwise",
    )
    contradiction: str | None = Field(
        None,
        description="For an `unverified` change, why the texts contradict it, with the "
        "evidence from each text; null otherwise",
    )
    flags: list[NoticeFlag] = Field(
        description="`short_notice`: takes effect fewer than the source's `notice_days` after "
        "it was first seen (`detected_at`); `retroactive`: took effect before it was first seen"
    )
    notice_days: int = Field(description="The source's notice period the flags are judged by")
    review: ReviewOut | None = Field(description="The latest review, when there is one")
    links: ChangeLinks


class ChangeFeed(_Model):
    items: list[ChangeOut]
    next: int = Field(
        description="The cursor to poll with next (`since=`): the last id returned, or the "
        "`since` given when nothing is new. Ids below it never appear later."
    )
    has_more: bool = Field(description="More changes match now: poll again at once")


class ChangeDetailOut(ChangeOut):
    reviews: list[ReviewOut] = Field(description="Every review, oldest first")
