"""The change page: signed links instead of keys, before/after with the evidence marked, the
effective date, escaping, and what headless Chromium renders from it."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import (
    THREE_VERSIONS,
    TODAY,
    Harness,
    publish_versions,
    serving,
)
from sqlite_support import migrated_sqlite

from monitor.api.change_page import effective_phrase, word_diff
from monitor.config import parse_config
from monitor.links import change_page_url
from monitor.store.core import ChangeRecord, Store
from monitor.store.models.core import ChangeRow

CONFIG = parse_config({})  # the app under test signs and verifies with the default settings


@pytest.fixture
def store(tmp_path: Path, migrated_sqlite_template: Path) -> Iterator[Store]:
    opened = Store.open(migrated_sqlite(migrated_sqlite_template, tmp_path / "monitor.store.db"))
    yield opened
    opened.close()


@pytest.fixture
def api(store: Store) -> Iterator[Harness]:
    publish_versions(store, THREE_VERSIONS)
    with serving(store, config=CONFIG) as harness:
        yield harness


def _step_change(store: Store) -> ChangeRecord:
    return next(c for c in store.changes() if c.kind == "step_therapy_changed")


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_a_signed_link_opens_the_page_and_nothing_else(api: Harness) -> None:
    change = _step_change(api.store)
    link = _path(change_page_url(CONFIG.api, change.id))
    with api.client(scope=None) as anonymous:
        page = anonymous.get(link)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in page.headers["content-security-policy"]
        query = link.split("?", 1)[1]
        # The signature is for this page of this change only.
        assert anonymous.get(f"/changes/{change.id}?{query}").status_code == 401
        assert anonymous.get(f"/changes/{change.id - 1}/page?{query}").status_code == 401
        tampered = link[:-1] + ("0" if link[-1] != "0" else "1")
        assert anonymous.get(tampered).status_code == 401
        expired = change_page_url(
            CONFIG.api, change.id, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=91)
        )
        refused = anonymous.get(_path(expired))
        assert refused.status_code == 401 and "expired" in refused.json()["detail"]
        assert anonymous.get(f"/changes/{change.id}/page").status_code == 401
        assert anonymous.get("/changes/999999/page?" + query).status_code == 401
    with api.client("read") as reader:
        assert reader.get(f"/changes/{change.id}/page").status_code == 200
        assert reader.get("/changes/999999/page").status_code == 404


def test_the_page_shows_before_and_after_with_the_changed_words_marked(api: Harness) -> None:
    change = _step_change(api.store)
    with api.client() as client:
        html = client.get(f"/changes/{change.id}/page").text
    before = html[html.index('id="before"') : html.index('id="after"')]
    after = html[html.index('id="after"') : html.index('id="evidence"')]
    # Durations as the policy wrote them (issue 15), not the stored days (56 -> 84).
    assert (
        '<div class="value">8 weeks</div>' in before
        and '<div class="value">12 weeks</div>' in after
    )
    assert re.search(r'<mark class="evidence"[^>]*>Patient has tried.*<del>8\s?</del>', before)
    assert re.search(r'<mark class="evidence"[^>]*>Patient has tried.*<ins>12\s?</ins>', after)
    assert "Effective in 45 days (2026-03-01)" in html
    assert 'class="badge severity-high"' in html
    assert 'href="https://payer.example/policies/drug/zentrava-examplumab.txt"' in html
    assert "/documents/acme/%2Fpolicies%2Fdrug%2Fzentrava-examplumab.txt/versions/2" in html
    assert "Not reviewed yet." in html


def test_the_page_shows_the_latest_review(api: Harness) -> None:
    change = _step_change(api.store)
    with api.client("review") as client:
        client.post(f"/changes/{change.id}/review", json={"reviewer": "Dana", "note": "PA form"})
        html = client.get(f"/changes/{change.id}/page").text
    assert "Reviewed by <strong>Dana</strong>" in html and "PA form" in html


def test_everything_from_a_document_is_escaped(store: Store) -> None:
    publish_versions(store, THREE_VERSIONS[:2])
    template = _step_change(store)
    # Markup as a source could deliver it, stored as a change (the parsers would strip most
    # tags before they reach the store; the page must not rely on that).
    with store.session() as session:
        stored = session.get_one(ChangeRow, template.id)
        hostile = ChangeRow(
            **{
                column.key: getattr(stored, column.key)
                for column in ChangeRow.__table__.columns
                if column.key != "id"
            }
        )
        hostile.kind = "section_changed"
        hostile.before = "BSA <10% & EASI >16"
        hostile.after = '<script>alert("x")</script><img src=x onerror=alert(1)>'
        hostile.evidence = '"><b>nursing</b>'
        session.add(hostile)
        session.flush()
        hostile_id = hostile.id
    with serving(store, config=CONFIG) as api, api.client() as client:
        html = client.get(f"/changes/{hostile_id}/page").text
    assert "<script>" not in html and "<img" not in html and "<b>nursing" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x" in html
    assert "BSA &lt;10% &amp; EASI &gt;16" in html and "&#34;&gt;&lt;b&gt;nursing" in html


def test_effective_phrases() -> None:
    assert effective_phrase(dt.date(2026, 3, 1), TODAY) == "effective in 45 days (2026-03-01)"
    assert effective_phrase(TODAY + dt.timedelta(days=1), TODAY).startswith("effective tomorrow")
    assert effective_phrase(TODAY, TODAY) == "effective today (2026-01-15)"
    assert effective_phrase(dt.date(2025, 7, 1), TODAY) == "effective since 2025-07-01"
    assert effective_phrase(None, TODAY) == "no effective date given"


def test_word_diff_marks_only_the_words_that_differ() -> None:
    old, new = word_diff("a minimum of 8 weeks", "a minimum of 12 weeks")
    assert [(s.op, s.text) for s in old if s.op != "equal"] == [("delete", "8 ")]
    assert [(s.op, s.text) for s in new if s.op != "equal"] == [("insert", "12 ")]
    assert "".join(s.text for s in old) == "a minimum of 8 weeks"
    old, new = word_diff("for at least 8 weeks", "for a minimum of 12 weeks")
    assert [s.text for s in old if s.op == "delete"] == ["at least 8 "]  # one run
    assert [s.text for s in new if s.op == "insert"] == ["a minimum of 12 "]


# -- headless Chromium -------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@needs_chromium
@pytest.mark.slow
def test_chromium_renders_the_signed_page(api: Harness, tmp_path: Path) -> None:
    change = _step_change(api.store)
    url = api.url + _path(change_page_url(CONFIG.api, change.id))
    dom = chromium("--dump-dom", url, profile=tmp_path / "profile").stdout
    # The DOM Chromium built (not our HTML text): the marks, deletions and insertions are
    # elements, and the page did not fall back to an error.
    before = dom[dom.index('id="before"') : dom.index('id="after"')]
    after = dom[dom.index('id="after"') : dom.index('id="evidence"')]
    assert re.search(r"<mark[^>]*>Patient has tried[^<]*<del>8\s?</del>", before)
    assert re.search(r"<mark[^>]*>Patient has tried[^<]*<ins>12\s?</ins>", after)
    assert "Effective in 45 days (2026-03-01)" in dom and ">HIGH<" in dom.upper()

    screenshot = tmp_path / "page.png"
    chromium(
        f"--screenshot={screenshot}",
        "--window-size=1200,900",
        url,
        profile=tmp_path / "profile",
    )
    assert png_size(screenshot) == (1200, 900)
    # A blank or error page compresses to a few kB; the rendered page is far richer.
    assert screenshot.stat().st_size > 40_000
