"""Bulletin mentions in the store, on SQLite and PostgreSQL: migration 0006, indexing after
publish, the two queries, write-once rows."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from diffing.mentions import BULLETIN_DOC_TYPE, bulletin_criteria, diff_bulletin
from diffing.model import RawDocument
from monitor.errors import StoreError
from monitor.pipeline.publish import PublishContext, publish
from monitor.store.bulletins import index_bulletins, mentions_for_document, mentions_in_bulletin
from monitor.store.core import Store
from sources.base import ListedDocument

BODY = (
    "<p>The LCD L33979 and the article A57520 were revised for dates of service on or after "
    "March 15, 2026. Destruction reported with CPT 17110 requires a documented symptom, and "
    "seborrheic keratoses coded L82.0 must be described. Call 1-877-555-0142.</p>"
)


@pytest.fixture
def store(migrated_database_url: str) -> Iterator[Store]:
    opened = Store.open(migrated_database_url)
    yield opened
    opened.close()


def _publish(store: Store, key: str, title: str, body: str, *, baseline: bool) -> None:
    source = store.ensure_source("novitas", "mac_bulletins")
    run_id = store.start_run(source.id, baseline=baseline)
    html = f"<html><head><title>{title}</title></head><body><article>{body}</article></body>"
    raw = RawDocument(
        source="novitas",
        key=key,
        url=f"https://mac.example{key}",
        content=html.encode(),
        content_type="text/html; charset=utf-8",
        fetched_at=dt.datetime(2026, 2, 3, tzinfo=dt.UTC),
        title=title,
        doc_type=BULLETIN_DOC_TYPE,
        source_meta=(("mac", "Novitas"), ("bulletin_date", "2026-02-03")),
    )
    listed = ListedDocument(
        key=key,
        source_version="",
        version_number=None,
        fingerprint=hashlib.sha256(html.encode()).hexdigest(),
        doc_type=BULLETIN_DOC_TYPE,
        title=title,
        url=raw.url,
    )
    ctx = PublishContext(
        source_id=source.id,
        run_id=run_id,
        baseline=baseline,
        today=dt.date(2026, 2, 10),
        extract=bulletin_criteria,
        extractor_name="bulletin/1",
        diff=diff_bulletin,
    )
    publish(store, ctx, raw, listed)
    index_bulletins(store, source.id)


def test_mentions_are_indexed_linked_and_write_once(store: Store) -> None:
    cms = store.ensure_source("cms", "cms_coverage")
    with store.session() as session:
        session.execute(
            text(
                "INSERT INTO documents (source_id, key, doc_type, title, url, first_seen_at, "
                "missing_runs) VALUES (:s, 'L33979', 'lcd', 'Removal of Benign Skin Lesions', "
                "'https://cms.example/L33979', CURRENT_TIMESTAMP, 0)"
            ),
            {"s": cms.id},
        )
    _publish(store, "/news?id=1", "Revised LCD", BODY, baseline=True)
    _publish(store, "/news?id=1", "Revised LCD", BODY + "<p>Also LCD L35041.</p>", baseline=False)

    found = mentions_in_bulletin(store, "novitas", "/news?id=1")
    assert {m.value for m in found} == {"L33979", "A57520", "17110", "L82.0", "L35041"}
    assert {m.version for m in found} == {2}  # the latest version only
    lcd = next(m for m in found if m.value == "L33979")
    assert [(d.source, d.key) for d in lcd.linked] == [("cms", "L33979")]
    assert next(m for m in found if m.value == "A57520").linked == ()  # not monitored

    (mention,) = mentions_for_document(store, "L33979")
    assert mention.line() == "Novitas bulletin of 2026-02-03 mentions L33979"
    assert [m.value for m in mentions_for_document(store, "17110")] == ["17110"]
    assert mentions_for_document(store, "17099") == []
    assert index_bulletins(store, cms.id) == 0  # nothing left to index

    changes = store.changes(source="novitas")
    assert [c.kind for c in changes] == ["bulletin_published", "section_changed"]
    assert changes[0].baseline and changes[0].severity == "low"
    assert "now also mentions L35041" in (changes[1].evidence or "")

    with pytest.raises(StoreError), store.session() as session:
        session.execute(text("UPDATE bulletin_mentions SET value = 'L00000'"))
    with pytest.raises(StoreError), store.session() as session:
        session.execute(text("DELETE FROM bulletins"))
