"""HTTP routes for changes: the feed, one change with its reviews, recording a review, and the
change page (HTML, also reached through the signed links emails carry). Included by
`monitor.api.app`."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse

from monitor.api.auth import (
    BearerCredentials,
    HeaderKey,
    ReadAccess,
    ReviewAccess,
    Scope,
    check_access,
    presented_key,
    unauthorized,
)
from monitor.api.change_page import PageLinks, render_change_page
from monitor.api.deps import MAX_ID, Id, OptionalText, StoreDep, Today, not_found, root_of
from monitor.api.documents import document_href, fields_of
from monitor.api.schemas import (
    JSON_ERROR,
    KEY_ERRORS,
    NOT_FOUND,
    ChangeDetailOut,
    ChangeFeed,
    ChangeLinks,
    ChangeOut,
    ErrorOut,
    NoticeFlag,
    ReviewIn,
    ReviewOut,
    SeverityName,
)
from monitor.config import Config
from monitor.links import verify_change_link
from monitor.store.core import ChangeRecord, Store
from monitor.store.reads import (
    Review,
    change_versions,
    latest_reviews,
    record_review,
    reviews_of,
    version_numbers,
)

log = logging.getLogger("policy_monitor.api")

router = APIRouter(tags=["changes"])
_PAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"content": JSON_ERROR, "description": "No key and no valid signed link"},
    403: {"content": JSON_ERROR, "description": "The key's scope does not allow this"},
    404: {"content": JSON_ERROR, "description": "No such change"},
}
_PAGE_HEADERS = {
    # The page is reached through signed links: keep the signature out of Referer headers sent
    # to the payer's site, and let nothing on the page run or load from elsewhere.
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-cache",
}


def notice_days_of(request: Request, store: Store) -> dict[str, int]:
    """Each source's notice period: the served config's over the store's own."""
    config: Config = request.app.state.config
    return {**store.notice_days, **config.notice_days()}


def _review_out(review: Review) -> ReviewOut:
    return ReviewOut(**fields_of(review))


def _change_fields(
    root: str, change: ChangeRecord, review: Review | None, number: int | None
) -> dict[str, Any]:
    href = f"{root}/changes/{change.id}"
    version = f"{document_href(root, change.source, change.document_id)}/versions/"
    return dict(
        **fields_of(change),
        flags=list(change.flags),
        notice_days=change.notice_days,
        review=_review_out(review) if review else None,
        links=ChangeLinks(
            self=href,
            page=f"{href}/page",
            version=f"{version}{number if number is not None else 0}",
            review=f"{href}/review",
        ),
    )


def _one_change(request: Request, store: Store, change_id: int) -> ChangeRecord:
    found = store.changes(ids=[change_id], notice_days=notice_days_of(request, store))
    if not found:
        raise not_found(f"change {change_id}")
    return found[0]


@router.get("/changes", response_model=ChangeFeed, responses=KEY_ERRORS)
def changes(
    request: Request,
    store: StoreDep,
    _key: ReadAccess,
    since: Annotated[
        int, Query(ge=0, le=MAX_ID, description="Cursor: the `next` of the last poll")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    min_severity: SeverityName = "low",
    source: OptionalText = None,
    document: OptionalText = None,
    unreviewed: bool = False,
    include_baseline: bool = True,
    flag: Annotated[
        NoticeFlag | None,
        Query(description="Only changes with this notice flag (see `flags`)"),
    ] = None,
) -> ChangeFeed:
    """Changes with an id above `since`, oldest first. Poll with the returned `next`: no
    change is skipped or repeated, however publishing interleaves (see
    `monitor.store.publishing.lock_change_feed`). `min_severity=noise` includes noise-only
    re-publications, which the default leaves out."""
    found = store.changes(
        after_id=since,
        limit=limit + 1,
        min_severity=min_severity,
        source=source,
        document=document,
        unreviewed=unreviewed,
        include_baseline=include_baseline,
        flag=flag,
        notice_days=notice_days_of(request, store),
    )
    page = found[:limit]
    ids = [c.id for c in page]
    reviews = latest_reviews(store, ids)
    numbers = version_numbers(store, ids)
    root = root_of(request)
    return ChangeFeed(
        items=[
            ChangeOut(**_change_fields(root, c, reviews.get(c.id), numbers.get(c.id))) for c in page
        ],
        next=page[-1].id if page else since,
        has_more=len(found) > limit,
    )


@router.get(
    "/changes/{change_id}",
    response_model=ChangeDetailOut,
    responses={**KEY_ERRORS, **NOT_FOUND},
)
def change(request: Request, store: StoreDep, _key: ReadAccess, change_id: Id) -> ChangeDetailOut:
    """One change with every review of it."""
    record = _one_change(request, store, change_id)
    reviews = reviews_of(store, change_id)
    number = version_numbers(store, [change_id]).get(change_id)
    return ChangeDetailOut(
        **_change_fields(root_of(request), record, reviews[-1] if reviews else None, number),
        reviews=[_review_out(r) for r in reviews],
    )


@router.post(
    "/changes/{change_id}/review",
    response_model=ReviewOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        **KEY_ERRORS,
        **NOT_FOUND,
        400: {"model": ErrorOut, "description": "The body is not JSON"},
    },
)
def review(store: StoreDep, change_id: Id, body: ReviewIn, principal: ReviewAccess) -> ReviewOut:
    """Acknowledge a change (scope `review`). Reviews are never changed; reviewing again
    adds one, and listings show the latest."""
    added = record_review(
        store, change_id, reviewer=body.reviewer, note=body.note, api_key_id=principal.key_id
    )
    if added is None:
        raise not_found(f"change {change_id}")
    log.info("change %d reviewed by %s (key %s)", change_id, body.reviewer, principal.name)
    return _review_out(added)


@router.get(
    "/changes/{change_id}/page",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}}, **_PAGE_ERRORS},
)
def page(
    request: Request,
    store: StoreDep,
    change_id: Id,
    bearer: BearerCredentials = None,
    header: HeaderKey = None,
    expires: Annotated[int | None, Query(description="Signed link: expiry (Unix time)")] = None,
    sig: Annotated[str | None, Query(max_length=128, description="Signed link: signature")] = None,
) -> HTMLResponse:
    """The change as a readable page. A signed link (`expires` and `sig`, as the emails
    carry) admits without a key, for this page only; otherwise a `read` key is needed."""
    config: Config = request.app.state.config
    today: Today = request.app.state.today
    signed = (
        expires is not None
        and sig is not None
        and verify_change_link(config.api, change_id, expires, sig)
    )
    if not signed:
        key = presented_key(bearer, header)
        if key is None and (expires is not None or sig is not None):
            raise unauthorized("this link has expired or is not valid; ask for a new one")
        check_access(request, store, key, Scope.READ)
    record = _one_change(request, store, change_id)
    versions = change_versions(store, change_id)
    if versions is None:
        raise not_found(f"change {change_id}")
    reviews = latest_reviews(store, [change_id])
    base = f"{document_href(root_of(request), record.source, record.document_id)}/versions/"
    number = versions.version.version_number
    previous = versions.previous
    html = render_change_page(
        record,
        versions,
        reviews.get(change_id),
        links=PageLinks(
            source=record.url if record.url.startswith(("https://", "http://")) else None,
            version=f"{base}{number}",
            previous_version=f"{base}{previous.version_number}" if previous is not None else None,
            raw=f"{base}{number}/raw",
        ),
        today=today(),
    )
    return HTMLResponse(html, headers=_PAGE_HEADERS)
