"""The in-process re-check of a payer source (`sources.payer_recheck`): used when the index
pages link exactly the stored documents, and only then; it catches every change the site plants
and leaves discovery (new links) to the Scrapy crawl."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.payer_site import AETNA_INDEX_PATH, Fault, PayerSiteFixture
from fixtures.payer_site.scale import html_week2_changes, spec
from monitor.config import SourceConfig, parse_config
from monitor.pipeline.runner import RunSummary, run_source
from monitor.store.core import Store
from sources.base import Source
from sources.payer_policies import PayerPoliciesSource

DOCUMENTS = 8  # one of them changes in week 2
TODAY = dt.date(2026, 11, 12)


def _source(site: PayerSiteFixture, deny: tuple[str, ...] = (), **options: object) -> SourceConfig:
    return parse_config(
        {
            "sources": [
                {
                    "name": "payer",
                    "kind": "payer_policies",
                    "payer": "Recheck Health",
                    "start_urls": [site.base_url + AETNA_INDEX_PATH],
                    "allow": ["/cpb/medical/data/"],
                    "deny": list(deny),
                    "download_delay_seconds": 0.0,
                    "max_retries": 1,
                    **options,
                }
            ]
        }
    ).source("payer")


def _run(config: SourceConfig, store: Store) -> tuple[RunSummary, PayerPoliciesSource]:
    made: list[PayerPoliciesSource] = []

    def factory(config: SourceConfig) -> Source:
        source = config.source_kind.create(name=config.name, options=config.options)
        assert isinstance(source, PayerPoliciesSource)
        made.append(source)
        return source

    summary = asyncio.run(run_source(config, store, factory=factory, today=lambda: TODAY))
    return summary, made[0]


@pytest.fixture
def site() -> Iterator[PayerSiteFixture]:
    fixture = PayerSiteFixture(scenario="week1", documents=DOCUMENTS, html_only=True)
    fixture.start()
    yield fixture
    fixture.stop()


@pytest.mark.slow
def test_recheck_catches_the_planted_changes_without_a_crawl(
    site: PayerSiteFixture, tmp_path: Path
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    baseline, source = _run(_source(site), store)
    assert baseline.outcome == "success", baseline.line()
    assert source.discovered  # a first fetch discovers

    site.set_scenario("week2")
    site.reset_counters()
    changed, source = _run(_source(site), store)
    assert changed.outcome == "success", changed.line()
    assert not source.discovered
    planted = {spec(i).url_path for i in html_week2_changes(DOCUMENTS)}
    assert len(planted) == 1
    assert changed.counts.listed == DOCUMENTS
    assert changed.counts.fetched == changed.counts.new_versions == len(planted)
    reported = {c.document_id for c in store.changes(run_id=changed.run_id)}
    assert reported == planted
    # One request per index page, robots.txt, and one conditional GET per document.
    assert site.request_count == 1 + 1 + DOCUMENTS

    site.set_scenario("week3")  # week 2 republished: every document answers 304
    same, source = _run(_source(site), store)
    assert not source.discovered
    assert same.outcome == "success", same.line()
    assert same.counts.fetched == same.counts.new_versions == same.counts.changes == 0
    store.close()


@pytest.mark.slow
def test_a_new_link_runs_discovery(site: PayerSiteFixture, tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    hidden = spec(1).url_path
    first, source = _run(_source(site, deny=(hidden,)), store)
    assert first.outcome == "success" and first.counts.listed == DOCUMENTS - 1
    again, source = _run(_source(site), store)  # the index now offers one more document
    assert source.discovered
    assert again.counts.listed == DOCUMENTS and again.counts.new_versions == 1
    assert again.outcome == "success", again.line()
    store.close()


@pytest.mark.slow
def test_a_dropped_link_is_probed_and_withdrawn_when_gone(
    site: PayerSiteFixture, tmp_path: Path
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    dropped = spec(3).url_path
    baseline, _ = _run(_source(site), store)
    assert baseline.outcome == "success", baseline.line()
    # The index no longer links it but its URL still answers: no discovery, no withdrawal yet.
    site.reset_counters()
    first, source = _run(_source(site, deny=(dropped,)), store)
    assert not source.discovered
    assert first.outcome == "success", first.line()
    assert first.counts.listed == DOCUMENTS - 1 and first.counts.changes == 0
    assert any(dropped in target for target in site.requests)  # probed
    # Now its URL answers 404: withdrawn in this run, as the crawl's probe would have it.
    site.inject(dropped, Fault(status=404), times=5)
    second, source = _run(_source(site, deny=(dropped,)), store)
    assert not source.discovered
    withdrawn = [
        c.document_id
        for c in store.changes(run_id=second.run_id, min_severity="noise")
        if c.kind == "document_withdrawn"
    ]
    assert withdrawn == [dropped]
    store.close()


def test_an_in_process_fetch_past_the_crawl_timeout_fails_the_listing_as_the_crawl_does(
    site: PayerSiteFixture, tmp_path: Path
) -> None:
    # The index page answers after 3 s; the source allows 0.5 s for its whole crawl.
    site.inject(AETNA_INDEX_PATH, Fault.delayed(3.0))
    config = _source(site, crawl_timeout_seconds=0.5)
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        summary, source = _run(config, store)
    finally:
        store.close()
    assert not source.crawled  # the in-process path, not the Scrapy child
    assert summary.outcome == "failed"
    assert summary.error == "listing failed: source 'payer': crawl did not finish within 0.5 s"
