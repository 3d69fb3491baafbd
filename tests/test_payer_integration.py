"""Payer policies end to end: the fixture payer site, week 1 -> 2 -> 3, through the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.payer_site import (
    AETNA_INDEX_PATH,
    NOISE_ONLY_URLS,
    PRIVATE_PATH,
    UHC_INDEX_PATH,
    WEEK2_EXPECTED,
    WEEK3_EXPECTED,
    PayerSiteFixture,
)
from monitor.cli.main import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site() -> Iterator[PayerSiteFixture]:
    with PayerSiteFixture(scenario="week1") as fixture:
        yield fixture


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory, site: PayerSiteFixture) -> Path:
    directory = tmp_path_factory.mktemp("payer")
    path = directory / "monitor.toml"
    path.write_text(f"""
[database]
url = "sqlite:///{directory / "monitor.store.db"}"

[[sources]]
name = "acme"
kind = "payer_policies"
payer = "Acme Health"
start_urls = ["{site.base_url}{UHC_INDEX_PATH}", "{site.base_url}{AETNA_INDEX_PATH}"]
allow = ["/policies/drug/", "/cpb/medical/data/", "/private/"]
download_delay_seconds = 0.0
max_retries = 1
""")
    return path


def _changes(config_file: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict]:
    capsys.readouterr()
    assert (
        main(["--config", str(config_file), "changes", "--format", "json", "--no-baseline", *extra])
        == 0
    )
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def _check(
    config_file: Path, site: PayerSiteFixture, week: str, capsys: pytest.CaptureFixture[str]
) -> str:
    site.set_scenario(week)
    capsys.readouterr()
    assert main(["--config", str(config_file), "check"]) == 0
    return capsys.readouterr().out


def _key(change: object) -> tuple[object, ...]:
    return (change.document_url_path, change.kind, change.field, change.before, change.after)


def test_week1_to_week3_gives_exactly_the_scenario(
    site: PayerSiteFixture, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _check(config_file, site, "week1", capsys)
    assert "acme: success (baseline)" in line
    assert not any(PRIVATE_PATH in r for r in site.requests)  # robots.txt obeyed

    _check(config_file, site, "week2", capsys)
    week2 = _changes(config_file, capsys)
    criteria = [c for c in week2 if c["kind"] != "checklist_changed"]
    reported = {
        (c["document_id"], c["kind"], c["field"], c["before"], c["after"]) for c in criteria
    }
    assert reported == {_key(e) for e in WEEK2_EXPECTED}
    # The PA checklists derived from those criteria changed too, and say how, item by item.
    checklist = [c for c in week2 if c["kind"] == "checklist_changed"]
    assert any(
        "8 weeks" in (c["before"] or "") and "12 weeks" in (c["after"] or "") for c in checklist
    ), checklist
    step = next(c for c in week2 if c["kind"] == "step_therapy_changed")
    assert step["severity"] == "high" and step["effective_date"] == "2026-03-01"
    assert "12 weeks" in (step["evidence"] or "")

    noise = [
        c
        for c in _changes(config_file, capsys, "--min-severity", "noise")
        if c["document_id"] in NOISE_ONLY_URLS
    ]
    assert noise and {c["kind"] for c in noise} == {"noise_only"}

    site.reset_counters()
    week3_line = _check(config_file, site, "week3", capsys)
    # Nothing changed in week 3: every document answered 304 to a conditional GET.
    assert "0 fetched, 0 new versions" in week3_line, week3_line
    week3_new = [c for c in _changes(config_file, capsys) if c["id"] > max(c["id"] for c in week2)]
    assert {(c["document_id"], c["kind"]) for c in week3_new} == {
        (e.document_url_path, e.kind) for e in WEEK3_EXPECTED
    }
