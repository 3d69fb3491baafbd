"""A payer that takes a change back: the page returns to bytes it had before. Documents without
version ids are compared with their latest version, so the revert is a new version whose changes
are exactly the inverse of the change it undoes (and nothing is silently "already known")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.payer_site import AETNA_INDEX_PATH, UHC_INDEX_PATH, PayerSiteFixture
from monitor.cli.main import main

pytestmark = pytest.mark.slow


@pytest.fixture
def site() -> Iterator[PayerSiteFixture]:
    with PayerSiteFixture(scenario="week1") as fixture:
        yield fixture


def _config(tmp_path: Path, site: PayerSiteFixture, database_url: str) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(f"""
[database]
url = "{database_url}"

[[sources]]
name = "acme"
kind = "payer_policies"
payer = "Acme Health"
start_urls = ["{site.base_url}{UHC_INDEX_PATH}", "{site.base_url}{AETNA_INDEX_PATH}"]
allow = ["/policies/drug/", "/cpb/medical/data/"]
download_delay_seconds = 0.0
max_retries = 1
""")
    return path


def _run(
    config: Path, site: PayerSiteFixture, week: str, capsys: pytest.CaptureFixture[str]
) -> list[dict]:
    site.set_scenario(week)
    capsys.readouterr()
    assert main(["--config", str(config), "check"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "changes", "--format", "json", "--no-baseline"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def _inverse(kind: str) -> str:
    if kind.endswith("_added"):
        return kind.removesuffix("_added") + "_removed"
    if kind.endswith("_removed"):
        return kind.removesuffix("_removed") + "_added"
    return kind


def test_going_back_to_earlier_bytes_is_a_change(
    site: PayerSiteFixture,
    tmp_path: Path,
    migrated_database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _run(_config(tmp_path, site, migrated_database_url), site, "week1", capsys)
    config = tmp_path / "monitor.toml"
    after_week2 = _run(config, site, "week2", capsys)
    after_revert = _run(config, site, "week1", capsys)

    # Documents coming and going are checked apart: a document first listed in week 2 whose
    # URL answers 404 in week 1 is withdrawn at once on the revert, and one withdrawn in week 2
    # (its URL answered 404) is reported listed again when it reappears.
    presence = ("document_added", "document_withdrawn", "document_reinstated")
    forward = {
        (c["url"], c["kind"], c["field"], c["before"], c["after"])
        for c in after_week2
        if c["kind"] not in presence
    }
    seen = {c["id"] for c in after_week2}
    reverted = [c for c in after_revert if c["id"] not in seen]
    backward = {
        (c["url"], _inverse(c["kind"]), c["field"], c["after"], c["before"])
        for c in reverted
        if c["kind"] not in presence
    }
    assert forward, "week 2 changes something"
    assert backward == forward
    added_in_week2 = {c["url"] for c in after_week2 if c["kind"] == "document_added"}
    withdrawn_on_revert = {c["url"] for c in reverted if c["kind"] == "document_withdrawn"}
    assert added_in_week2 and withdrawn_on_revert == added_in_week2
    withdrawn_in_week2 = {c["url"] for c in after_week2 if c["kind"] == "document_withdrawn"}
    reinstated_on_revert = {c["url"] for c in reverted if c["kind"] == "document_reinstated"}
    assert withdrawn_in_week2 and reinstated_on_revert == withdrawn_in_week2
