"""The store's side of reconciling two sources: which kind a stored source is, the latest
published version of each of its documents, and the criteria of many versions at once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select

from diffing.model import Criteria
from diffing.serialize import criteria_from_json
from monitor.errors import StoreError
from monitor.store.core import Store, decompress
from monitor.store.models.core import CriteriaRow, Document, DocumentVersion, SourceRow

_CHUNK = 500  # version ids per IN (…)


@dataclass(frozen=True, slots=True)
class LatestVersion:
    version_id: int
    source_version: str
    version_number: int | None


def source_kind(store: Store, name: str) -> str:
    """The kind source `name` was stored as; StoreError when it has never run."""
    with store.session() as txn:
        kind = txn.scalar(select(SourceRow.kind).where(SourceRow.name == name))
    if kind is None:
        raise StoreError(f"source {name!r} has no data in this database (run it first)")
    return kind


def latest_versions(store: Store, source: str) -> dict[str, LatestVersion]:
    """The highest version of each document of `source` that is not withdrawn, by key."""
    with store.session() as txn:
        ranked = (
            select(
                Document.key,
                DocumentVersion.id,
                DocumentVersion.source_version,
                DocumentVersion.version_number,
                func.row_number()
                .over(
                    partition_by=Document.id,
                    order_by=(DocumentVersion.version_number.desc(), DocumentVersion.id.desc()),
                )
                .label("rank"),
            )
            .join(Document, DocumentVersion.document_id == Document.id)
            .join(SourceRow, Document.source_id == SourceRow.id)
            .where(SourceRow.name == source, Document.withdrawn_at.is_(None))
            .subquery()
        )
        rows = txn.execute(
            select(
                ranked.c.key, ranked.c.id, ranked.c.source_version, ranked.c.version_number
            ).where(ranked.c.rank == 1)
        )
        return {key: LatestVersion(id_, version, number) for key, id_, version, number in rows}


def criteria_of_versions(store: Store, version_ids: Iterable[int]) -> dict[int, Criteria]:
    ids = list(version_ids)
    out: dict[int, Criteria] = {}
    with store.session() as txn:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            rows = txn.execute(
                select(CriteriaRow.version_id, CriteriaRow.data).where(
                    CriteriaRow.version_id.in_(chunk)
                )
            )
            for version_id, data in rows:
                out[version_id] = criteria_from_json(decompress(data))
    return out
