"""Store and find the page edges a payer version hands its successor's parse
(`monitor.store.models.edges`)."""

from __future__ import annotations

import json

from sqlalchemy import select

from monitor.store.core import Store, compress, decompress
from monitor.store.inserts import insert_ignoring_duplicates
from monitor.store.models.core import Document, DocumentVersion
from monitor.store.models.edges import PageEdgesRow

PageEdges = tuple[tuple[str, ...], ...]  # diffing.parse.PageEdges


def save_page_edges(store: Store, content_sha256: str, edges: PageEdges) -> None:
    """Keep `edges` for the version with these bytes (the first kept stays)."""
    if not edges:
        return
    data = compress(json.dumps([list(page) for page in edges], ensure_ascii=False).encode())
    with store.session() as s:
        insert_ignoring_duplicates(
            s,
            PageEdgesRow,
            [{"content_sha256": content_sha256, "pages": len(edges), "data": data}],
            keys=["content_sha256"],
        )


def latest_page_edges(store: Store, source_id: int, key: str) -> PageEdges:
    """The page edges kept for the latest stored version of document `key`; () when none."""
    latest = (
        select(DocumentVersion.content_sha256)
        .join(Document, DocumentVersion.document_id == Document.id)
        .where(Document.source_id == source_id, Document.key == key)
        .order_by(DocumentVersion.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    with store.session() as s:
        data = s.scalar(select(PageEdgesRow.data).where(PageEdgesRow.content_sha256 == latest))
    if data is None:
        return ()
    return tuple(tuple(str(line) for line in page) for page in json.loads(decompress(data)))


def sibling_page_edges(store: Store, source_id: int, key: str) -> PageEdges:
    """For a document seen for the first time: the page edges kept for the latest version of
    another document of the same source that was printed on two pages or more (the same
    payer's running header and footer); () when none was kept."""
    latest = (
        select(PageEdgesRow.data)
        .join(DocumentVersion, DocumentVersion.content_sha256 == PageEdgesRow.content_sha256)
        .join(Document, DocumentVersion.document_id == Document.id)
        .where(Document.source_id == source_id, Document.key != key, PageEdgesRow.pages >= 2)
        .order_by(DocumentVersion.id.desc())
        .limit(1)
    )
    with store.session() as s:
        data = s.scalar(latest)
    if data is None:
        return ()
    return tuple(tuple(str(line) for line in page) for page in json.loads(decompress(data)))
