"""HTTP routes for rule tables and PA checklists: included by `monitor.api.app`.

Every route needs an API key with scope ``read``. Rule lists page by id: ``after`` is the
``next`` of the previous page. Dates are ISO (``as_of=2026-03-01``); ``known_at`` is an ISO
date-time (UTC when it has no offset).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import typing
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, create_model

from diffing.checklist import ChecklistChange, ChecklistItem
from diffing.rules import RuleKind
from monitor.api.auth import require_scope
from monitor.api.deps import MAX_ID, After, AsOf, Id, KnownAt, OptionalText, PageLimit, StoreDep
from monitor.api.exports import EXPORT_HEADERS, markdown_safe, paged
from monitor.fhir import FHIR_JSON, fhir_json, questionnaire_for
from monitor.report import render_checklist
from monitor.store.checklists import (
    ChecklistNotFound,
    ChecklistRecord,
    ChecklistVersionRecord,
    checklist_versions,
    diff_checklist_versions,
    find_checklists,
    get_checklist,
)
from monitor.store.rules import MAX_LIMIT, RuleRecord, query_rule_rows, rule_row_json

router = APIRouter(dependencies=[Depends(require_scope("read"))])
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such checklist"}}


class _Model(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")


# The rule row's fields are `RuleRecord`'s, declared once there; the API adds the kind's
# allowed values and what a field means where its name does not say.
_RULE_FIELD_DESCRIPTIONS = {
    "payer": "The payer, or the CMS contractors of a local document",
    "document": "L33979, A57520, NCD 250.1 or a payer document's path",
    "effective_to": "Derived: the next known version's effective date, or the retirement date",
    "code_group": "The code's group; for a code_pair, the ICD-10 covered group whose codes "
    "support `code`",
    "subject": "Prerequisite (step therapy), measure (threshold), phase (approval period) or "
    "specialty",
    "indication": "The indication the row is about (a criteria tree's indication block)",
    "branch": "The criteria tree's branch: initial, continuation, dosing or exclusion; null "
    "for rows outside a tree (codes) and rows published before trees existed",
    "tree_path": "The leaf's place in the policy's logic, e.g. "
    "`atopic dermatitis/initial/all[2]/any[1]`",
}


def _rule_fields() -> dict[str, Any]:
    types = typing.get_type_hints(RuleRecord) | {"kind": RuleKind}
    return {
        field.name: (types[field.name], Field(description=_RULE_FIELD_DESCRIPTIONS.get(field.name)))
        for field in dataclasses.fields(RuleRecord)
    }


RuleOut = create_model("RuleOut", __base__=_Model, **_rule_fields())


class RulePage(_Model):
    items: list[RuleOut]  # type: ignore[valid-type]  # a model made from RuleRecord
    next: int | None = Field(description="Pass as `after` for the next page; null at the end")


class EvidenceOut(_Model):
    sentence: str
    page: int | None
    section: str | None


class ChecklistItemOut(_Model):
    number: int
    key: str = Field(description="Identifies the item across versions")
    category: str
    text: str
    requirement: str
    indication: str | None
    days: int | None
    count: int | None
    op: str | None
    value: float | None
    codes: list[str]
    evidence: EvidenceOut | None


class ChecklistVersionOut(_Model):
    number: int
    version_id: int = Field(description="The document version it was derived from")
    document_version: str
    effective_date: dt.date | None
    published_at: dt.datetime
    removed: bool = Field(description="This version records that the checklist was withdrawn")
    items: int
    sha256: str


class ChecklistOut(_Model):
    id: int
    source: str
    url: str
    payer: str | None
    subject: str | None
    subject_kind: str | None
    label: str | None
    document: str | None
    title: str | None
    prior_auth_required: bool | None
    version: ChecklistVersionOut
    items: list[ChecklistItemOut]


class ChecklistList(_Model):
    items: list[ChecklistOut]
    next: int | None = Field(None, description="Pass as `after` for the next page")


class ChecklistVersionsOut(_Model):
    id: int
    versions: list[ChecklistVersionOut]
    next: int | None = Field(None, description="Pass as `after` for the next page")


class ChecklistChangeOut(_Model):
    action: Literal["added", "removed", "changed"]
    position: int
    summary: str
    stricter: bool | None
    before: ChecklistItemOut | None
    after: ChecklistItemOut | None


class ChecklistDiffOut(_Model):
    id: int
    from_version: int
    to_version: int
    changes: list[ChecklistChangeOut]


def _item(number: int, item: ChecklistItem) -> ChecklistItemOut:
    evidence = item.evidence
    return ChecklistItemOut(
        number=number,
        key=item.key,
        category=item.category,
        text=item.text,
        requirement=item.requirement,
        indication=item.indication,
        days=item.days,
        count=item.count,
        op=item.op,
        value=item.value,
        codes=list(item.codes),
        evidence=EvidenceOut(
            sentence=evidence.sentence, page=evidence.page, section=evidence.section
        )
        if evidence
        else None,
    )


def _version(version: ChecklistVersionRecord) -> ChecklistVersionOut:
    return ChecklistVersionOut.model_validate(version)


def _checklist(record: ChecklistRecord) -> ChecklistOut:
    checklist = record.checklist
    return ChecklistOut(
        id=record.id,
        source=record.source,
        url=record.url,
        payer=checklist.payer if checklist else None,
        subject=checklist.subject if checklist else None,
        subject_kind=checklist.subject_kind if checklist else None,
        label=checklist.label if checklist else None,
        document=checklist.document if checklist else None,
        title=checklist.title if checklist else None,
        prior_auth_required=checklist.prior_auth_required if checklist else None,
        version=_version(record.version),
        items=[_item(n, item) for n, item in enumerate(checklist.items, 1)] if checklist else [],
    )


def _change(change: ChecklistChange) -> ChecklistChangeOut:
    return ChecklistChangeOut(
        action=change.action,  # type: ignore[arg-type]
        position=change.position,
        summary=change.summary,
        stricter=change.stricter,
        before=_item(change.position, change.before) if change.before else None,
        after=_item(change.position, change.after) if change.after else None,
    )


def _not_found(exc: ChecklistNotFound) -> HTTPException:
    return HTTPException(404, detail=str(exc))


@router.get("/rules", response_model=RulePage, summary="Rule rows, as of a date and/or a moment")
async def list_rules(
    store: StoreDep,
    code: OptionalText = None,
    drug: OptionalText = None,
    payer: OptionalText = None,
    document: OptionalText = None,
    kind: RuleKind | None = None,
    branch: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=30,
            pattern=r"^[^\x00]+$",
            description="Criteria tree branch: initial, continuation …",
        ),
    ] = None,
    as_of: AsOf = None,
    known_at: KnownAt = None,
    after: After = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> Response:
    # In the thread pool, not on the event loop: an indexed lookup takes about a millisecond,
    # but a broad one (no filter, a large limit) or a slow database would stall every other
    # request, /healthz included, for as long. The hand-off costs ~0.1 ms (bench/api.py).
    found = await run_in_threadpool(
        query_rule_rows,
        store,
        code=code,
        drug=drug,
        payer=payer,
        document=document,
        kind=kind.value if kind else None,
        branch=branch or None,
        as_of=as_of,
        known_at=known_at,
        after_id=after or None,
        limit=limit + 1,  # one more than shown: tells whether a next page exists
    )
    page = found[:limit]
    more = len(found) > limit
    # Written straight from the driver's rows rather than validated into RulePage: the hot
    # path of claim scrubbers, where a record and a model per row cost a fifth of the request
    # (bench/api.py). RulePage stays the documented schema; a test compares both renderings.
    body = {
        "items": [rule_row_json(row) for row in page],
        "next": page[-1][0] if more and page else None,  # the row's id
    }
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


@router.get("/checklists", response_model=ChecklistList, summary="PA checklists that apply")
def list_checklists(
    store: StoreDep,
    payer: OptionalText = None,
    drug: OptionalText = None,
    as_of: AsOf = None,
    known_at: KnownAt = None,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Cursor: a checklist id")] = 0,
    limit: PageLimit = 100,
) -> ChecklistList:
    """Ordered by checklist id; `next` is the `after` of the next page."""
    found = find_checklists(
        store, payer=payer, drug=drug, as_of=as_of, known_at=known_at, after=after, limit=limit + 1
    )
    page, more = paged(found, limit)
    return ChecklistList(
        items=[_checklist(r) for r in page], next=page[-1].id if more and page else None
    )


@router.get(
    "/checklists/{checklist_id}",
    response_model=ChecklistOut,
    responses={
        **_NOT_FOUND,
        200: {
            "content": {"text/markdown": {}, "text/html": {}, FHIR_JSON: {}},
            "description": "JSON, or Markdown / HTML / a FHIR R4 Questionnaire with `format`",
        },
    },
    summary="One checklist (a version, as of a date, or the newest)",
)
def one_checklist(
    request: Request,
    store: StoreDep,
    checklist_id: Id,
    version: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    as_of: AsOf = None,
    known_at: KnownAt = None,
    format: Literal["json", "markdown", "html", "fhir"] = "json",
) -> Any:
    try:
        record = get_checklist(store, checklist_id, number=version, as_of=as_of, known_at=known_at)
    except ChecklistNotFound as exc:
        raise _not_found(exc) from None
    if format == "fhir":
        if record.checklist is None:  # this version records the checklist's withdrawal
            raise HTTPException(404, detail=f"checklist {checklist_id} was withdrawn")
        public_url = request.app.state.config.api.public_url
        questionnaire = questionnaire_for(store, record, public_url=public_url)
        return Response(fhir_json(questionnaire), media_type=FHIR_JSON)
    if format == "markdown":
        return PlainTextResponse(
            render_checklist(markdown_safe(record), "markdown"),
            media_type="text/markdown; charset=utf-8",
            headers={"X-Content-Type-Options": "nosniff"},
        )
    if format == "html":
        return HTMLResponse(render_checklist(record, "html"), headers=EXPORT_HEADERS)
    return _checklist(record)


@router.get(
    "/checklists/{checklist_id}/versions",
    response_model=ChecklistVersionsOut,
    responses=_NOT_FOUND,
    summary="Every version of a checklist",
)
def versions_of_checklist(
    store: StoreDep,
    checklist_id: Id,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Cursor: a version number")] = 0,
    limit: PageLimit = 100,
) -> ChecklistVersionsOut:
    """Oldest first; `next` is the `after` of the next page."""
    try:
        versions = checklist_versions(store, checklist_id, after=after, limit=limit + 1)
    except ChecklistNotFound as exc:
        raise _not_found(exc) from None
    page, more = paged(versions, limit)
    return ChecklistVersionsOut(
        id=checklist_id,
        versions=[_version(v) for v in page],
        next=page[-1].number if more and page else None,
    )


@router.get(
    "/checklists/{checklist_id}/diff",
    response_model=ChecklistDiffOut,
    responses=_NOT_FOUND,
    summary="What changed between two versions of a checklist",
)
def diff_of_checklist(
    store: StoreDep,
    checklist_id: Id,
    from_: Annotated[int, Query(alias="from", ge=1, le=MAX_ID)],
    to: Annotated[int, Query(ge=1, le=MAX_ID)],
) -> ChecklistDiffOut:
    try:
        diff = diff_checklist_versions(store, checklist_id, from_, to)
    except ChecklistNotFound as exc:
        raise _not_found(exc) from None
    return ChecklistDiffOut(
        id=checklist_id,
        from_version=diff.from_number,
        to_version=diff.to_number,
        changes=[_change(c) for c in diff.changes],
    )
