"""Withdrawal at once (issue 13 point 7): a payer document the listing dropped and whose own URL
answers 404 or 410 is reported `document_withdrawn` in that run; one whose URL still answers
keeps the two-listing rule. The fixture payer site drops Ilumya from its index in week 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.payer_site import AETNA_INDEX_PATH, UHC_INDEX_PATH, Fault, PayerSiteFixture
from fixtures.payer_site.uhc_psoriasis import ILUMYA_URL
from monitor.cli.main import main
from monitor.store.core import Store

pytestmark = pytest.mark.slow


def _config(directory: Path, site: PayerSiteFixture) -> Path:
    path = directory / "monitor.toml"
    path.write_text(f"""
[database]
url = "sqlite:///{directory / "monitor.store.db"}"

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


def _withdrawn(directory: Path) -> list[tuple[str, str | None]]:
    store = Store.open(f"sqlite:///{directory / 'monitor.store.db'}")
    try:
        return [
            (c.document_id, c.evidence)
            for c in store.changes(min_severity="noise")
            if c.kind == "document_withdrawn"
        ]
    finally:
        store.close()


def _weeks(tmp_path: Path, fault: Fault | None) -> tuple[Path, PayerSiteFixture]:
    site = PayerSiteFixture(scenario="week1")
    site.start()
    config = _config(tmp_path, site)
    assert main(["--config", str(config), "check"]) == 0
    site.set_scenario("week2")
    if fault is not None:
        site.inject(ILUMYA_URL, fault, times=10)
    assert main(["--config", str(config), "check"]) == 0
    return config, site


@pytest.mark.parametrize("status", [404, 410])
def test_a_document_whose_url_is_gone_is_withdrawn_in_the_same_run(
    tmp_path: Path, status: int
) -> None:
    # Week 2 serves 404 for Ilumya by itself; a fault makes it 410.
    config, site = _weeks(tmp_path, Fault(status=410) if status == 410 else None)
    try:
        assert _withdrawn(tmp_path) == [
            (ILUMYA_URL, f"no longer listed by the source, and its URL answers HTTP {status}")
        ]
        # A later run does not report it again.
        site.set_scenario("week3")
        assert main(["--config", str(config), "check"]) == 0
        assert len(_withdrawn(tmp_path)) == 1
    finally:
        site.stop()


def test_a_dropped_document_that_still_answers_waits_for_a_second_listing(
    tmp_path: Path,
) -> None:
    still_there = Fault(status=200, body=b"%PDF-1.4 still served\n%%EOF\n")
    config, site = _weeks(tmp_path, still_there)
    try:
        assert _withdrawn(tmp_path) == []
        site.set_scenario("week3")
        assert main(["--config", str(config), "check"]) == 0
        assert _withdrawn(tmp_path) == [
            (ILUMYA_URL, "no longer listed by the source (2 runs in a row)")
        ]
    finally:
        site.stop()
