"""The HTTP API (FastAPI): documents and versions, the change feed, reviews, the change page,
health and metrics. Rule tables and PA checklists are in `monitor.api.rules`.

Every endpoint but ``/healthz`` needs an API key (`monitor.api.auth`: scopes read < review <
admin). Reads answer with an ETag and honour ``If-None-Match``; lists page with ``limit`` and a
cursor. The OpenAPI document is at ``/openapi.json``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor.api import quarantine as api_quarantine
from monitor.api import rules as api_rules
from monitor.api.auth import (
    BearerCredentials,
    HeaderKey,
    Principal,
    Scope,
    check_access,
    presented_key,
    require_scope,
    unauthorized,
)
from monitor.api.change_page import PageLinks, render_change_page
from monitor.api.metrics import metrics_registry
from monitor.api.schemas import (
    ChangeDetailOut,
    ChangeFeed,
    ChangeLinks,
    ChangeOut,
    DocumentLinks,
    DocumentOut,
    DocumentPage,
    DocumentVersionsOut,
    ErrorOut,
    HealthOut,
    ReviewIn,
    ReviewOut,
    SectionOut,
    SeverityName,
    VersionDetailOut,
    VersionLinks,
    VersionOut,
)
from monitor.api.server import ETagMiddleware
from monitor.config import Config
from monitor.errors import StoreError
from monitor.links import verify_change_link
from monitor.store.core import ChangeRecord, Store
from monitor.store.reads import (
    DocumentInfo,
    Review,
    VersionInfo,
    change_versions,
    database_answers,
    document_versions,
    latest_reviews,
    list_documents,
    raw_payload,
    record_review,
    reviews_of,
    version_content,
    version_numbers,
)

log = logging.getLogger("policy_monitor.api")

HealthCheck = Callable[[], tuple[bool, str]]
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL; larger ones cannot exist
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No API key, or an unknown or revoked one"},
    403: {"model": ErrorOut, "description": "The key's scope does not allow this"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "No such"}}
_JSON_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
# Routes answering HTML or bytes still answer errors in JSON; FastAPI would document them with
# the route's own media type unless told.
_PAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"content": _JSON_ERROR, "description": "No key and no valid signed link"},
    403: {"content": _JSON_ERROR, "description": "The key's scope does not allow this"},
    404: {"content": _JSON_ERROR, "description": "No such change"},
}
_RAW_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"content": _JSON_ERROR, "description": "No API key, or an unknown or revoked one"},
    403: {"content": _JSON_ERROR, "description": "The key's scope does not allow this"},
    404: {"content": _JSON_ERROR, "description": "No such document or version"},
}
_PAGE_HEADERS = {
    # The page is reached through signed links: keep the signature out of Referer headers sent
    # to the payer's site, and let nothing on the page run or load from elsewhere.
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-cache",
}

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Text = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]
Read = Annotated[Principal, Depends(require_scope(Scope.READ))]
ReviewScope = Annotated[Principal, Depends(require_scope(Scope.REVIEW))]
OptionalText = Annotated[str | None, Query(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]


def document_href(root: str, source: str, key: str) -> str:
    # Payer keys are URL paths ("/policies/drug/x.pdf"): every "/" is escaped, so the link has
    # no "//" a proxy might merge; the server decodes %2F back and the route takes the rest.
    return f"{root}/documents/{quote(source, safe='')}/{quote(key, safe='')}"


def _document_out(root: str, document: DocumentInfo) -> DocumentOut:
    return DocumentOut(
        id=document.id,
        source=document.source,
        key=document.key,
        doc_type=document.doc_type,
        title=document.title,
        url=document.url,
        first_seen_at=document.first_seen_at,
        withdrawn_at=document.withdrawn_at,
        versions=document.versions,
        latest_version=document.latest_version,
        links=DocumentLinks(self=document_href(root, document.source, document.key)),
    )


def _version_out(root: str, document: DocumentInfo, version: VersionInfo) -> VersionOut:
    href = f"{document_href(root, document.source, document.key)}/versions/"
    number = version.version_number if version.version_number is not None else 0
    return VersionOut(
        version_id=version.id,
        version_number=version.version_number,
        source_version=version.source_version,
        title=version.title,
        status=version.status,
        effective_date=version.effective_date,
        retirement_date=version.retirement_date,
        url=version.url,
        content_type=version.content_type,
        content_sha256=version.content_sha256,
        size=version.size,
        fetched_at=version.fetched_at,
        published_at=version.published_at,
        links=VersionLinks(self=f"{href}{number}", raw=f"{href}{number}/raw"),
    )


def _review_out(review: Review) -> ReviewOut:
    return ReviewOut(
        id=review.id,
        change_id=review.change_id,
        reviewer=review.reviewer,
        note=review.note,
        reviewed_at=review.reviewed_at,
    )


def _change_fields(
    root: str, change: ChangeRecord, review: Review | None, number: int | None
) -> dict[str, Any]:
    href = f"{root}/changes/{change.id}"
    version = f"{document_href(root, change.source, change.document_id)}/versions/"
    return dict(
        **{name: getattr(change, name) for name in ChangeRecord.__dataclass_fields__},
        review=_review_out(review) if review else None,
        links=ChangeLinks(
            self=href,
            page=f"{href}/page",
            version=f"{version}{number if number is not None else 0}",
            review=f"{href}/review",
        ),
    )


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} not found")


def _routes(
    store: Store, config: Config, health: HealthCheck | None, today: Callable[[], dt.date]
) -> APIRouter:
    router = APIRouter()
    registry = metrics_registry(store)

    @router.get(
        "/healthz",
        response_model=HealthOut,
        responses={503: {"model": HealthOut, "description": "Database or scheduler down"}},
        tags=["operations"],
    )
    def healthz() -> JSONResponse:
        """Healthy when the database answers and (under `run`) the scheduler is alive. No key."""
        reason = database_answers(store)
        if reason is None and health is not None:
            try:
                alive, why = health()
            except Exception as exc:  # a broken probe is an unhealthy service, not a 500
                alive, why = False, f"health check failed: {exc}"
            if not alive:
                reason = why or "unhealthy"
        body = HealthOut(status="ok" if reason is None else "unavailable", reason=reason)
        return JSONResponse(
            body.model_dump(mode="json"),
            status_code=200 if reason is None else 503,
            headers={"Cache-Control": "no-store"},
        )

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **_ERRORS},
        tags=["operations"],
    )
    def metrics(_key: Read) -> Response:
        """Prometheus text format, read from the database at scrape time. Scope `read`: the
        figures are counts only, and a scraper should hold the least powerful key."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/documents", response_model=DocumentPage, responses=_ERRORS, tags=["documents"])
    def documents(
        request: Request,
        _key: Read,
        source: OptionalText = None,
        after: Annotated[int, Query(ge=0, le=MAX_ID, description="Cursor: a document id")] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> DocumentPage:
        """Stored documents in id order; pass `next` as `after` for the next page."""
        found = list_documents(store, source=source, after=after, limit=limit + 1)
        page = found[:limit]
        root = _root(request)
        return DocumentPage(
            items=[_document_out(root, d) for d in page],
            next=page[-1].id if len(found) > limit else None,
        )

    @router.get(
        "/documents/{source}/{key:path}/versions/{number:int}/raw",
        response_class=Response,
        responses={
            200: {
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                "description": "The stored bytes, with the content type they were fetched with",
            },
            **_RAW_ERRORS,
        },
        tags=["documents"],
    )
    def raw(
        _key: Read, source: Text, key: Text, number: Annotated[int, Path(ge=0, le=MAX_ID)]
    ) -> Response:
        """The bytes as fetched, with the stored content type; the ETag is their sha256."""
        payload = raw_payload(store, source, key, number)
        if payload is None:
            raise _not_found(f"version {number} of {source} {key}")
        # Only safe characters: the key comes from a source and ends up in a header.
        filename = re.sub(r"[^A-Za-z0-9._-]", "_", key.rstrip("/").rsplit("/", 1)[-1]) or "document"
        return Response(
            payload.content,
            media_type=payload.content_type,
            headers={
                "ETag": f'"{payload.sha256}"',
                "Cache-Control": "private, max-age=31536000, immutable",
                "Content-Disposition": f'inline; filename="{filename}"',
                # Stored HTML from a payer site must not run with this origin's rights.
                "Content-Security-Policy": "sandbox; default-src 'none'",
                "X-Content-Type-Options": "nosniff",
            },
        )

    @router.get(
        "/documents/{source}/{key:path}/versions/{number:int}",
        response_model=VersionDetailOut,
        responses={**_ERRORS, **_NOT_FOUND},
        tags=["documents"],
    )
    def version(
        request: Request,
        _key: Read,
        source: Text,
        key: Text,
        number: Annotated[int, Path(ge=0, le=MAX_ID)],
    ) -> VersionDetailOut:
        """One version: metadata, the extracted criteria and the clean text by section."""
        content = version_content(store, source, key, number)
        if content is None:
            raise _not_found(f"version {number} of {source} {key}")
        criteria = dict(content.criteria)
        sections = criteria.pop("sections", [])
        root = _root(request)
        return VersionDetailOut(
            document=_document_out(root, content.document),
            version=_version_out(root, content.document, content.version),
            criteria=criteria,
            sections=[SectionOut(name=s["name"], text=s["text"]) for s in sections],
        )

    @router.get(
        "/documents/{source}/{key:path}",
        response_model=DocumentVersionsOut,
        responses={**_ERRORS, **_NOT_FOUND},
        tags=["documents"],
    )
    def document(request: Request, _key: Read, source: Text, key: Text) -> DocumentVersionsOut:
        """A document and its stored versions. Keys may contain "/" (payer URL paths)."""
        found = document_versions(store, source, key)
        if found is None:
            raise _not_found(f"document {key!r} of source {source!r}")
        info, versions = found
        root = _root(request)
        return DocumentVersionsOut(
            document=_document_out(root, info),
            versions=[_version_out(root, info, v) for v in versions],
        )

    @router.get("/changes", response_model=ChangeFeed, responses=_ERRORS, tags=["changes"])
    def changes(
        request: Request,
        _key: Read,
        since: Annotated[
            int, Query(ge=0, le=MAX_ID, description="Cursor: the `next` of the last poll")
        ] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        min_severity: SeverityName = "low",
        source: OptionalText = None,
        document: OptionalText = None,
        unreviewed: bool = False,
        include_baseline: bool = True,
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
        )
        page = found[:limit]
        ids = [c.id for c in page]
        reviews = latest_reviews(store, ids)
        numbers = version_numbers(store, ids)
        root = _root(request)
        return ChangeFeed(
            items=[
                ChangeOut(**_change_fields(root, c, reviews.get(c.id), numbers.get(c.id)))
                for c in page
            ],
            next=page[-1].id if page else since,
            has_more=len(found) > limit,
        )

    def one_change(change_id: int) -> ChangeRecord:
        found = store.changes(ids=[change_id])
        if not found:
            raise _not_found(f"change {change_id}")
        return found[0]

    @router.get(
        "/changes/{change_id}",
        response_model=ChangeDetailOut,
        responses={**_ERRORS, **_NOT_FOUND},
        tags=["changes"],
    )
    def change(request: Request, _key: Read, change_id: Id) -> ChangeDetailOut:
        """One change with every review of it."""
        record = one_change(change_id)
        reviews = reviews_of(store, change_id)
        number = version_numbers(store, [change_id]).get(change_id)
        return ChangeDetailOut(
            **_change_fields(_root(request), record, reviews[-1] if reviews else None, number),
            reviews=[_review_out(r) for r in reviews],
        )

    @router.post(
        "/changes/{change_id}/review",
        response_model=ReviewOut,
        status_code=status.HTTP_201_CREATED,
        responses={
            **_ERRORS,
            **_NOT_FOUND,
            400: {"model": ErrorOut, "description": "The body is not JSON"},
        },
        tags=["changes"],
    )
    def review(change_id: Id, body: ReviewIn, principal: ReviewScope) -> ReviewOut:
        """Acknowledge a change (scope `review`). Reviews are never changed; reviewing again
        adds one, and listings show the latest."""
        added = record_review(
            store, change_id, reviewer=body.reviewer, note=body.note, api_key_id=principal.key_id
        )
        if added is None:
            raise _not_found(f"change {change_id}")
        log.info("change %d reviewed by %s (key %s)", change_id, body.reviewer, principal.name)
        return _review_out(added)

    @router.get(
        "/changes/{change_id}/page",
        response_class=HTMLResponse,
        responses={200: {"content": {"text/html": {}}}, **_PAGE_ERRORS},
        tags=["changes"],
    )
    def page(
        request: Request,
        change_id: Id,
        bearer: BearerCredentials = None,
        header: HeaderKey = None,
        expires: Annotated[int | None, Query(description="Signed link: expiry (Unix time)")] = None,
        sig: Annotated[
            str | None, Query(max_length=128, description="Signed link: signature")
        ] = None,
    ) -> HTMLResponse:
        """The change as a readable page. A signed link (`expires` and `sig`, as the emails
        carry) admits without a key, for this page only; otherwise a `read` key is needed."""
        signed = (
            expires is not None
            and sig is not None
            and verify_change_link(config.api, change_id, expires, sig)
        )
        if not signed:
            key = presented_key(bearer, header)
            if key is None and (expires is not None or sig is not None):
                raise unauthorized("this link has expired or is not valid; ask for a new one")
            check_access(request, key, Scope.READ)
        record = one_change(change_id)
        versions = change_versions(store, change_id)
        if versions is None:
            raise _not_found(f"change {change_id}")
        reviews = latest_reviews(store, [change_id])
        root = _root(request)
        base = f"{document_href(root, record.source, record.document_id)}/versions/"
        number = versions.version.version_number
        previous = versions.previous
        html = render_change_page(
            record,
            versions,
            reviews.get(change_id),
            links=PageLinks(
                source=record.url if record.url.startswith(("https://", "http://")) else None,
                version=f"{base}{number}",
                previous_version=(
                    f"{base}{previous.version_number}" if previous is not None else None
                ),
                raw=f"{base}{number}/raw",
            ),
            today=today(),
        )
        return HTMLResponse(html, headers=_PAGE_HEADERS)

    return router


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def create_app(
    store: Store,
    config: Config,
    *,
    health: HealthCheck | None = None,
    today: Callable[[], dt.date] = _utc_today,
) -> FastAPI:
    """The API over `store`. `health` reports whether the caller's machinery (the daemon's
    scheduler) lives, as (ok, reason); `today` is injected so tests fix "effective in N days"."""
    app = FastAPI(
        title="Payer Policy Monitor API",
        version="1",
        description=(
            "Documents, their versions and criteria, the change feed, reviews and the change "
            "page; rule tables and PA checklists. Every endpoint but `/healthz` needs an API "
            "key (`policy-monitor apikey create`), sent as `Authorization: Bearer KEY` or "
            "`X-API-Key: KEY`. Scopes: `read` < `review` < `admin`; a key holds its scope and "
            "every lower one. GET answers carry an ETag; send `If-None-Match` to get 304."
        ),
    )
    app.state.store = store
    app.state.config = config
    app.add_middleware(ETagMiddleware)

    @app.exception_handler(StoreError)
    def database_error(_request: Request, exc: StoreError) -> JSONResponse:
        log.error("database error in the API: %s", exc)
        return JSONResponse(
            {"detail": "the database is unavailable; try again later"}, status_code=503
        )

    # The rule routes first: this module's /documents/{source}/{key:path} takes any path below
    # it, and would shadow a more specific rule route added there later.
    app.include_router(api_rules.router)
    app.include_router(api_quarantine.router)
    app.include_router(_routes(store, config, health, today))
    return app
