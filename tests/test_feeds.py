"""Atom feeds per recipient profile (``GET /feeds/{profile}.atom``) over real HTTP: what the
profile's digest would hold, newest first, parsed back with feedparser and checked against the
Atom namespace with lxml; a read key or a signed feed URL admits (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace as dc_replace
from urllib.parse import urlsplit

import feedparser
import httpx
import pytest
from api_support import Harness, serving
from lxml import etree
from notify_support import cms_doc, config_for, icd, payer_doc, publish_version

from monitor.config import Config
from monitor.store.core import ChangeRecord, Store

ATOM = "{http://www.w3.org/2005/Atom}"
RECIPIENTS = [
    {"name": "everyone", "addresses": ["all@example.org"]},
    {"name": "derm", "addresses": ["derm@example.org"], "drugs": ["dupilumab"]},
    {"name": "urgent", "addresses": ["urgent@example.org"], "min_severity": "high"},
]


@pytest.fixture
def store(migrated_database_url: str) -> Iterator[Store]:
    opened = Store.open(migrated_database_url)
    yield opened
    opened.close()


def _publish(store: Store) -> list[ChangeRecord]:
    """A CMS article loses a code (high), a payer policy gains a sentence (medium), after
    their baselines; returns the announced changes."""
    article = cms_doc("A1", "Lesion removal", codes=[icd("L10.0"), icd("L11.0")])
    policy = payer_doc("dupixent", "Dupixent (dupilumab)", drugs=("dupilumab",))
    publish_version(store, article, version=1, baseline=True)
    publish_version(store, policy, version=1, baseline=True, source="acme", kind="payer_policies")
    publish_version(store, dc_replace(article, codes=frozenset([icd("L10.0")])), version=2)
    changed = payer_doc(
        "dupixent",
        "Dupixent (dupilumab)",
        drugs=("dupilumab",),
        indication="Coverage criteria. Prior authorization is required for dupilumab.",
    )
    publish_version(store, changed, version=2, source="acme", kind="payer_policies")
    return store.changes(include_baseline=False, min_severity="low")


def _config(store: Store) -> Config:
    url = store.engine.url.render_as_string(hide_password=False)
    return config_for(url, 25, recipients=RECIPIENTS)


def _local(harness: Harness, url: str) -> str:
    """A URL made with the configured public_url, pointed at the test server."""
    parts = urlsplit(url)
    return f"{harness.url}{parts.path}?{parts.query}"


def _feed(body: bytes) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    # And against the namespace itself: a feed element with Atom's required children.
    root = etree.fromstring(body)
    assert root.tag == f"{ATOM}feed"
    for child in ("id", "title", "updated"):
        assert root.find(f"{ATOM}{child}") is not None
    for entry in root.iter(f"{ATOM}entry"):
        for child in ("id", "title", "updated", "link"):
            assert entry.find(f"{ATOM}{child}") is not None
    return parsed


def test_a_profile_feed_holds_what_its_digest_would_newest_first(store: Store) -> None:
    announced = _publish(store)
    assert len(announced) == 2
    article_change = next(c for c in announced if c.document_id == "A1")
    policy_change = next(c for c in announced if c.document_id == "dupixent")
    with serving(store, config=_config(store)) as harness, harness.client() as client:
        response = client.get("/feeds/everyone.atom")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
        feed = _feed(response.content)
        assert feed.feed.title == "Policy changes for everyone"
        assert feed.feed.id == "urn:policy-monitor:feed:everyone"
        # Newest first; baselines are not news and are left out.
        assert [e.id for e in feed.entries] == [
            f"urn:policy-monitor:change:{c.id}" for c in (policy_change, article_change)
        ]
        dupixent, lesion = feed.entries
        assert dupixent.title.startswith("MEDIUM · Dupixent (dupilumab) · ")
        assert dupixent.author == "Acme Health"
        assert "Prior authorization is required" in dupixent.summary
        assert lesion.title.startswith("HIGH · Lesion removal · ")
        assert lesion.author == "Novitas"
        assert "L11.0" in lesion.summary and "short notice" in lesion.summary.lower()
        assert {t.term for t in lesion.tags} == {"high", "short_notice"}
        # Each entry links to its change page, signed: a feed reader needs no key to open it.
        page = httpx.get(_local(harness, lesion.link), timeout=30.0)
        assert page.status_code == 200 and "Lesion removal" in page.text

        derm = _feed(client.get("/feeds/derm.atom").content)
        assert [e.id for e in derm.entries] == [dupixent.id]
        urgent = _feed(client.get("/feeds/urgent.atom").content)
        assert [e.id for e in urgent.entries] == [lesion.id]
        newest = _feed(client.get("/feeds/everyone.atom", params={"limit": 1}).content)
        assert [e.id for e in newest.entries] == [dupixent.id]
        assert client.get("/feeds/everyone.atom", params={"limit": 201}).status_code == 422

        # The bytes do not change between polls: a feed reader's If-None-Match gets a 304.
        again = client.get(
            "/feeds/everyone.atom", headers={"If-None-Match": response.headers["etag"]}
        )
        assert again.status_code == 304
        assert client.get("/feeds/nobody.atom").status_code == 404


def test_a_feed_needs_a_read_key_or_its_own_signed_url(store: Store) -> None:
    _publish(store)
    with (
        serving(store, config=_config(store)) as harness,
        harness.client() as keyed,
        harness.client(scope=None) as anonymous,
    ):
        refused = anonymous.get("/feeds/derm.atom")
        assert refused.status_code == 401
        assert "API key" in refused.json()["detail"]
        assert anonymous.get("/feeds/derm/link").status_code == 401

        link = keyed.get("/feeds/derm/link")
        assert link.status_code == 200
        signed = link.json()
        assert signed["profile"] == "derm"
        assert signed["url"].startswith("https://monitor.example.org/feeds/derm.atom?expires=")
        local = _local(harness, signed["url"])
        feed = _feed(anonymous.get(local).content)
        assert len(feed.entries) == 1 and "Dupixent" in feed.entries[0].title

        # The signature is the derm feed's: not another profile's, not a change page's.
        query = urlsplit(signed["url"]).query
        assert anonymous.get(f"/feeds/everyone.atom?{query}").status_code == 401
        assert anonymous.get(f"/changes/1/page?{query}").status_code == 401
        tampered = local[:-4] + ("0000" if not local.endswith("0000") else "1111")
        denied = anonymous.get(tampered)
        assert denied.status_code == 401 and "expired or is not valid" in denied.text
        assert keyed.get("/feeds/nobody/link").status_code == 404


def test_a_feed_without_changes_is_still_a_valid_feed(store: Store) -> None:
    with serving(store, config=_config(store)) as harness, harness.client() as client:
        response = client.get("/feeds/everyone.atom")
        assert response.status_code == 200
        assert _feed(response.content).entries == []
