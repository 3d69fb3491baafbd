"""MAC bulletins in the store: index what each published bulletin mentions, and answer
"which bulletins mention L39902?" and "what does this bulletin mention?".

LCD and Article ids are linked to monitored documents by key at query time (so a bulletin that
names an LCD before the CMS source has stored it links as soon as it has); CPT/HCPCS, ICD-10
codes and drugs are stored as values only (the criteria that hold code tables are compressed
JSON; searching them per mention would cost a scan of every stored version).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Select, func, insert, or_, select

from diffing.mentions import BULLETIN_DOC_TYPE, mentions_in_criteria
from diffing.model import Criteria
from monitor.store.core import Store, utcnow
from monitor.store.models.bulletins import BulletinMentionRow, BulletinRow
from monitor.store.models.core import Document, DocumentVersion, SourceRow
from monitor.store.types import Transaction


@dataclass(frozen=True, kw_only=True)
class LinkedDocument:
    """A monitored document (of another source) that a bulletin's LCD/Article id names."""

    source: str
    key: str
    title: str


@dataclass(frozen=True, kw_only=True)
class BulletinMention:
    """One mention in the latest version of one bulletin."""

    source: str
    mac: str
    bulletin_key: str
    title: str
    url: str
    bulletin_date: dt.date | None
    version: int | None
    kind: str  # lcd, article, hcpcs, icd10, drug
    value: str
    document_key: str | None
    sentence: str
    linked: tuple[LinkedDocument, ...] = ()

    def line(self) -> str:
        """ "Novitas bulletin of 2026-02-03 mentions L39902" (for digests)."""
        when = f" of {self.bulletin_date.isoformat()}" if self.bulletin_date else ""
        return f"{self.mac} bulletin{when} mentions {self.value}"


def index_bulletin(
    txn: Transaction, criteria: Criteria, *, version_id: int, source_id: int, document_id: int
) -> None:
    """Record the MAC, date and mentions of a bulletin version, in the transaction that
    publishes it."""
    txn.execute(
        insert(BulletinRow).values(
            version_id=version_id,
            source_id=source_id,
            document_id=document_id,
            mac=criteria.payer or "",
            bulletin_date=criteria.effective_date,
            indexed_at=utcnow(),
        )
    )
    mentions = mentions_in_criteria(criteria)
    if mentions:
        txn.execute(
            insert(BulletinMentionRow),
            [
                {
                    "version_id": version_id,
                    "kind": m.kind.value,
                    "value": m.value,
                    "document_key": m.document_key,
                    "sentence": m.sentence[:2000],
                }
                for m in mentions
            ],
        )


def index_bulletins(store: Store, source_id: int) -> int:
    """Index the versions of `source_id` that have no bulletin row yet (published before
    publishing indexed them itself); returns how many. Each version is one transaction."""
    with store.session() as txn:
        pending = txn.execute(
            select(DocumentVersion.id, DocumentVersion.document_id)
            .join(Document, DocumentVersion.document_id == Document.id)
            .outerjoin(BulletinRow, BulletinRow.version_id == DocumentVersion.id)
            .where(Document.source_id == source_id, BulletinRow.version_id.is_(None))
            .order_by(DocumentVersion.id)
        ).all()
    for version_id, document_id in pending:
        criteria = store.criteria_of(version_id)
        with store.session() as txn:
            index_bulletin(
                txn, criteria, version_id=version_id, source_id=source_id, document_id=document_id
            )
    return len(pending)


def _latest_versions() -> Select[tuple[int]]:
    return select(func.max(BulletinRow.version_id)).group_by(BulletinRow.document_id)


def _query() -> Select[tuple[BulletinMentionRow, BulletinRow, Document, DocumentVersion, str]]:
    return (
        select(BulletinMentionRow, BulletinRow, Document, DocumentVersion, SourceRow.name)
        .join(BulletinRow, BulletinMentionRow.version_id == BulletinRow.version_id)
        .join(Document, BulletinRow.document_id == Document.id)
        .join(DocumentVersion, BulletinRow.version_id == DocumentVersion.id)
        .join(SourceRow, BulletinRow.source_id == SourceRow.id)
        .where(BulletinRow.version_id.in_(_latest_versions()))
    )


def _records(store: Store, query: Select) -> list[BulletinMention]:  # type: ignore[type-arg]
    with store.session() as session:
        rows = session.execute(query).all()
        keys = {m.document_key for m, *_ in rows if m.document_key}
        linked: dict[str, list[LinkedDocument]] = {}
        if keys:
            for name, key, title in session.execute(
                select(SourceRow.name, Document.key, Document.title)
                .join(SourceRow, Document.source_id == SourceRow.id)
                .where(Document.key.in_(keys), Document.doc_type != BULLETIN_DOC_TYPE)
                .order_by(SourceRow.name)
            ):
                linked.setdefault(key, []).append(LinkedDocument(source=name, key=key, title=title))
    return [
        BulletinMention(
            source=source,
            mac=bulletin.mac,
            bulletin_key=document.key,
            title=version.title,
            url=version.url,
            bulletin_date=bulletin.bulletin_date,
            version=version.version_number,
            kind=mention.kind,
            value=mention.value,
            document_key=mention.document_key,
            sentence=mention.sentence,
            linked=tuple(linked.get(mention.document_key or "", ())),
        )
        for mention, bulletin, document, version, source in rows
    ]


def mentions_for_document(store: Store, key: str) -> list[BulletinMention]:
    """Bulletins (their latest versions) that mention document `key` ("L39902", also found
    as the proposed "DL39902") or code `key` ("J3245", "L20.9"), newest bulletin first."""
    query = _query().where(
        or_(BulletinMentionRow.document_key == key, BulletinMentionRow.value == key)
    )
    return sorted(
        _records(store, query),
        key=lambda r: (r.bulletin_date or dt.date.min, r.bulletin_key),
        reverse=True,
    )


def mentions_in_bulletin(store: Store, source: str, key: str) -> list[BulletinMention]:
    """What the latest version of bulletin `key` of source `source` mentions, each LCD/Article
    id with the monitored documents it names (`linked`)."""
    query = _query().where(SourceRow.name == source, Document.key == key)
    return sorted(_records(store, query), key=lambda r: (r.kind, r.value))
