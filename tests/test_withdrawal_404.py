"""Withdrawal at once (issue 13 point 7): a payer document the listing dropped and whose own URL
answers 404 or 410 is reported `document_withdrawn` in that run; one whose URL still answers
keeps the two-listing rule. The fixture payer site drops Ilumya from its index in week 2."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def site() -> Iterator[PayerSiteFixture]:
    with PayerSiteFixture(scenario="week1") as fixture:
        yield fixture


@pytest.fixture(scope="module")
def week1_directory(site: PayerSiteFixture, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Week 1 (the baseline, no fault) checked once; each test starts from a copy of its
    directory: the database (closed, so one file) and the source's lock file."""
    directory = tmp_path_factory.mktemp("week1")
    site.set_scenario("week1")
    assert main(["--config", str(_config(directory, site)), "check"]) == 0
    assert sorted(p.name for p in directory.iterdir()) == [
        "monitor.store.db",
        "monitor.store.db.acme.lock",
        "monitor.toml",
    ]
    return directory


def _weeks(
    tmp_path: Path, site: PayerSiteFixture, week1_directory: Path, fault: Fault | None
) -> Path:
    site.clear_faults()
    for name in ("monitor.store.db", "monitor.store.db.acme.lock"):
        shutil.copyfile(week1_directory / name, tmp_path / name)
    config = _config(tmp_path, site)
    site.set_scenario("week2")
    if fault is not None:
        site.inject(ILUMYA_URL, fault, times=10)
    assert main(["--config", str(config), "check"]) == 0
    return config


@pytest.mark.parametrize("status", [404, 410])
def test_a_document_whose_url_is_gone_is_withdrawn_in_the_same_run(
    tmp_path: Path, site: PayerSiteFixture, week1_directory: Path, status: int
) -> None:
    # Week 2 serves 404 for Ilumya by itself; a fault makes it 410.
    config = _weeks(tmp_path, site, week1_directory, Fault(status=410) if status == 410 else None)
    assert _withdrawn(tmp_path) == [
        (ILUMYA_URL, f"no longer listed by the source, and its URL answers HTTP {status}")
    ]
    # A later run does not report it again, nor ask its URL again (it is not linked: only a
    # probe would ask, and a document reported withdrawn is not probed).
    site.set_scenario("week3")
    site.reset_counters()
    assert main(["--config", str(config), "check"]) == 0
    assert len(_withdrawn(tmp_path)) == 1
    asked = site.requests
    assert asked, "week 3 asked the site something"
    assert not [target for target in asked if target.split("?")[0] == ILUMYA_URL]


def test_a_dropped_document_that_still_answers_waits_for_a_second_listing(
    tmp_path: Path, site: PayerSiteFixture, week1_directory: Path
) -> None:
    still_there = Fault(status=200, body=b"%PDF-1.4 still served\n%%EOF\n")
    config = _weeks(tmp_path, site, week1_directory, still_there)
    assert _withdrawn(tmp_path) == []
    site.set_scenario("week3")
    assert main(["--config", str(config), "check"]) == 0
    assert _withdrawn(tmp_path) == [
        (ILUMYA_URL, "no longer listed by the source (2 runs in a row)")
    ]
