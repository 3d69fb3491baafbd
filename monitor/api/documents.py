"""HTTP routes for stored documents: the list, a document's versions, one version with its
criteria and text, and the bytes as fetched. Included by `monitor.api.app`."""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from monitor.api.auth import ReadAccess
from monitor.api.deps import MAX_ID, OptionalText, PageLimit, StoreDep, Text, not_found, root_of
from monitor.api.exports import paged
from monitor.api.schemas import (
    JSON_ERROR,
    KEY_ERRORS,
    NOT_FOUND,
    DocumentLinks,
    DocumentOut,
    DocumentPage,
    DocumentVersionsOut,
    SectionOut,
    VersionDetailOut,
    VersionLinks,
    VersionOut,
)
from monitor.store.reads import (
    DocumentInfo,
    VersionInfo,
    document_versions,
    list_documents,
    raw_payload,
    version_content,
)

router = APIRouter(tags=["documents"])
VersionNumber = Annotated[int, Path(ge=0, le=MAX_ID)]
_RAW_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"content": JSON_ERROR, "description": "No API key, or an unknown or revoked one"},
    403: {"content": JSON_ERROR, "description": "The key's scope does not allow this"},
    404: {"content": JSON_ERROR, "description": "No such document or version"},
}


def document_href(root: str, source: str, key: str) -> str:
    # Payer keys are URL paths ("/policies/drug/x.pdf"): every "/" is escaped, so the link has
    # no "//" a proxy might merge; the server decodes %2F back and the route takes the rest.
    return f"{root}/documents/{quote(source, safe='')}/{quote(key, safe='')}"


def fields_of(record: Any) -> dict[str, Any]:
    """A record dataclass's fields by name, for the answer model that repeats them."""
    return {field.name: getattr(record, field.name) for field in dataclasses.fields(record)}


def _document_out(root: str, document: DocumentInfo) -> DocumentOut:
    return DocumentOut(
        **fields_of(document),
        links=DocumentLinks(self=document_href(root, document.source, document.key)),
    )


def _version_out(root: str, document: DocumentInfo, version: VersionInfo) -> VersionOut:
    href = f"{document_href(root, document.source, document.key)}/versions/"
    number = version.version_number if version.version_number is not None else 0
    fields = fields_of(version)
    return VersionOut(
        version_id=fields.pop("id"),
        **fields,
        links=VersionLinks(self=f"{href}{number}", raw=f"{href}{number}/raw"),
    )


@router.get("/documents", response_model=DocumentPage, responses=KEY_ERRORS)
def documents(
    request: Request,
    store: StoreDep,
    _key: ReadAccess,
    source: OptionalText = None,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Cursor: a document id")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DocumentPage:
    """Stored documents in id order; pass `next` as `after` for the next page."""
    found = list_documents(store, source=source, after=after, limit=limit + 1)
    page = found[:limit]
    root = root_of(request)
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
)
def raw(
    store: StoreDep, _key: ReadAccess, source: Text, key: Text, number: VersionNumber
) -> Response:
    """The bytes as fetched, with the stored content type; the ETag is their sha256."""
    payload = raw_payload(store, source, key, number)
    if payload is None:
        raise not_found(f"version {number} of {source} {key}")
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
    responses={**KEY_ERRORS, **NOT_FOUND},
)
def version(
    request: Request,
    store: StoreDep,
    _key: ReadAccess,
    source: Text,
    key: Text,
    number: VersionNumber,
) -> VersionDetailOut:
    """One version: metadata, the extracted criteria and the clean text by section."""
    content = version_content(store, source, key, number)
    if content is None:
        raise not_found(f"version {number} of {source} {key}")
    criteria = dict(content.criteria)
    sections = criteria.pop("sections", [])
    root = root_of(request)
    return VersionDetailOut(
        document=_document_out(root, content.document),
        version=_version_out(root, content.document, content.version),
        criteria=criteria,
        sections=[SectionOut(name=s["name"], text=s["text"]) for s in sections],
    )


@router.get(
    "/documents/{source}/{key:path}",
    response_model=DocumentVersionsOut,
    responses={**KEY_ERRORS, **NOT_FOUND},
)
def document(
    request: Request,
    store: StoreDep,
    _key: ReadAccess,
    source: Text,
    key: Text,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Cursor: a version id")] = 0,
    limit: PageLimit = 100,
) -> DocumentVersionsOut:
    """A document and its stored versions, oldest first, a page at a time. Keys may contain
    "/" (payer URL paths)."""
    found = document_versions(store, source, key, after=after, limit=limit + 1)
    if found is None:
        raise not_found(f"document {key!r} of source {source!r}")
    info, versions = found
    root = root_of(request)
    page, more = paged(versions, limit)
    return DocumentVersionsOut(
        document=_document_out(root, info),
        versions=[_version_out(root, info, v) for v in page],
        next=page[-1].id if more and page else None,
    )
