"""MAC bulletins end to end: the fixture MAC sites (RSS site, paginated table, PDF site) week 1
-> week 2 through `policy-monitor check` and `changes --format json`, mentions linked to the CMS
fixture corpus, a layout change that fails the run without deleting anything, and a malformed
feed that loses none of its good entries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from fixtures.cms_api import CmsApiFixture
from fixtures.mac_sites import (
    CMS_LINKED,
    MALFORMED_FEED_EXPECTED,
    MENTIONS,
    WEEK2,
    WEEK2_EXPECTED,
    MacSitesFixture,
)
from monitor.cli.main import main
from monitor.store.bulletins import mentions_for_document, mentions_in_bulletin
from monitor.store.core import Store
from monitor.store.models.core import Document, SourceRow, SourceRun

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sites() -> Iterator[MacSitesFixture]:
    with MacSitesFixture(scenario="week1") as fixture:
        yield fixture


@pytest.fixture(scope="module")
def cms() -> Iterator[CmsApiFixture]:
    with CmsApiFixture(scenario="week1") as api:
        yield api


def _config(directory: Path, sites: MacSitesFixture, extra: str = "") -> Path:
    path = directory / "monitor.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{directory / "monitor.store.db"}"\n'
        + sites.config_sources()
        + extra
    )
    return path


def _check(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["--config", str(config), "check", *extra])
    return code, capsys.readouterr().out


def _changes(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict]:
    capsys.readouterr()
    assert main(["--config", str(config), "changes", "--format", "json", *extra]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def _store(config: Path) -> Store:
    return Store.open(f"sqlite:///{config.parent / 'monitor.store.db'}")


def test_week1_to_week2_then_a_layout_change(
    tmp_path: Path,
    sites: MacSitesFixture,
    cms: CmsApiFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cms_source = (
        f'\n[[sources]]\nname = "cms"\nkind = "cms_coverage"\nbase_url = "{cms.base_url}"\n'
        "backoff_seconds = 0.01\nmax_retries = 1\n"
    )
    config = _config(tmp_path, sites, cms_source)
    sites.set_scenario("week1")
    for name in ("novitas", "novitas-listing", "noridian"):
        code, out = _check(config, capsys, "--source", name)
        assert code == 0 and f"{name}: success (baseline)" in out, out
    baseline = _changes(config, capsys, "--source", "noridian")
    assert {c["kind"] for c in baseline} == {"bulletin_published"}
    assert all(c["baseline"] and c["severity"] == "low" for c in baseline)

    sites.set_scenario("week2")
    code, out = _check(config, capsys)
    assert code == 0, out
    week2 = [c for c in _changes(config, capsys, "--no-baseline") if c["source"] != "cms"]
    assert {(c["source"], c["document_id"], c["kind"], c["severity"]) for c in week2} == {
        (e.source, e.key, e.kind, e.severity) for e in WEEK2_EXPECTED
    }
    benign = next(c for c in week2 if c["source"] == "novitas" and "00284601" in c["document_id"])
    assert benign["after"].startswith("Novitas bulletin of 2026-02-03 mentions L33979, A57520")
    assert benign["effective_date"] == "2026-02-03"
    pdf = next(c for c in week2 if c["document_id"].endswith("2026-02.pdf"))
    assert "L35041" in pdf["after"] and "Q4186" in pdf["after"] and "L97.411" in pdf["after"]
    edited = next(c for c in week2 if c["kind"] == "section_changed")
    assert "every 4 weeks" in edited["before"] and "every 2 weeks" in edited["after"]

    store = _store(config)
    try:
        for bulletin in WEEK2:
            source = "novitas" if bulletin.site == "novitas" else "noridian"
            found = {m.value for m in mentions_in_bulletin(store, source, bulletin.path)}
            assert found == MENTIONS[bulletin.path], bulletin.path
        # Linked to the CMS fixture corpus: the digest line and the monitored document.
        for key, bulletin in CMS_LINKED.items():
            lines = {m.line() for m in mentions_for_document(store, key)}
            assert f"Novitas bulletin of 2026-02-03 mentions {key}" in lines
            (mention, *_) = [m for m in mentions_for_document(store, key) if m.source == "novitas"]
            assert mention.bulletin_key == bulletin.path
            assert [(d.source, d.key) for d in mention.linked] == [("cms", key)]
        with store.session() as session:
            documents_before = session.scalar(select(Document.id).order_by(Document.id.desc()))
    finally:
        store.close()

    # Unchanged week: every bulletin answers 304, nothing is published.
    code, out = _check(config, capsys, "--source", "noridian")
    assert code == 0 and "0 fetched, 0 new versions, 0 changes" in out, out

    last_id = max(c["id"] for c in _changes(config, capsys, "--min-severity", "noise"))
    sites.set_scenario("layout_changed")
    for name, selector in (
        ("novitas-listing", "table.news-table tr.news-row"),
        ("noridian", "//div[@class='news-item']"),
    ):
        code, out = _check(config, capsys, "--source", name)
        assert code == 1, out  # a failed run
        line = next(line for line in out.splitlines() if line.startswith(f"{name}:"))
        assert line.startswith(f"{name}: failed"), line
        assert "matched 0 items with selector" in line and selector in line, line
        assert "the site layout may have changed" in line, line
    after = _changes(config, capsys, "--min-severity", "noise")
    assert [c for c in after if c["id"] > last_id] == []  # nothing deleted, withdrawn or new
    store = _store(config)
    try:
        with store.session() as session:
            assert session.scalar(select(Document.id).order_by(Document.id.desc())) == (
                documents_before
            )
            assert session.scalars(select(Document.withdrawn_at)).all() == [None] * len(
                session.scalars(select(Document.id)).all()
            )
            failed = session.scalars(
                select(SourceRun.outcome)
                .join(SourceRow, SourceRun.source_id == SourceRow.id)
                .where(SourceRow.name == "noridian")
                .order_by(SourceRun.id.desc())
            ).first()
            assert failed == "failed"
    finally:
        store.close()


def test_malformed_feed_keeps_the_good_entries(
    tmp_path: Path, sites: MacSitesFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, sites)
    sites.set_scenario("week1")
    code, out = _check(config, capsys, "--source", "novitas")
    assert code == 0, out
    sites.set_scenario("malformed_feed")
    code, out = _check(config, capsys, "--source", "novitas")
    assert code == 0 and "novitas: partial" in out and "2 errors" in out, out
    changes = _changes(config, capsys, "--no-baseline")
    assert {(c["document_id"], c["kind"], c["severity"]) for c in changes} == {
        (e.key, e.kind, e.severity) for e in MALFORMED_FEED_EXPECTED
    }
    undated = next(c for c in changes if c["severity"] == "low")
    assert undated["effective_date"] is None
    capsys.readouterr()
    assert main(["--config", str(config), "sources"]) == 0
    store = _store(config)
    try:
        with store.session() as session:
            run_id = session.scalars(select(SourceRun.id).order_by(SourceRun.id.desc())).first()
        messages = " | ".join(e.message for e in store.run_errors(run_id))
    finally:
        store.close()
    assert "entry 2 ('Webinar slides posted'): no link; skipped" in messages
    assert "date 'sometime soon' not understood" in messages
