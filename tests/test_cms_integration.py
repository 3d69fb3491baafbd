"""The CMS Coverage API source end to end against the fixture server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from fixtures.cms_api import CmsApiFixture, Fault
from fixtures.cms_corpus.manifest import NOISE_ONLY_DOCUMENTS, WEEK2_EXPECTED
from fixtures.cms_corpus.model import scenario_named
from monitor.config import SourceConfig, parse_config
from monitor.pipeline.runner import RunSummary, run_source
from monitor.store.core import ChangeRecord, Store
from monitor.store.models.core import DocumentVersion


@pytest.fixture
def server() -> Iterator[CmsApiFixture]:
    with CmsApiFixture(scenario="week1") as fixture:
        yield fixture


def _source(server: CmsApiFixture) -> SourceConfig:
    config = parse_config(
        {
            "sources": [
                {
                    "name": "cms",
                    "kind": "cms_coverage",
                    "base_url": server.base_url,
                    "backoff_seconds": 0.01,
                    "max_retries": 2,
                    "max_retry_after_seconds": 0.2,
                    "timeout_seconds": 5.0,
                }
            ]
        }
    )
    return config.source("cms")


def _run(server: CmsApiFixture, store: Store, week: str) -> RunSummary:
    server.set_scenario(week)
    today = scenario_named(week).today
    return asyncio.run(run_source(_source(server), store, today=lambda: today))


def _matches(record: ChangeRecord, expected: object) -> bool:
    def same(attr: str) -> bool:
        wanted = getattr(expected, attr)
        return wanted is None or getattr(record, attr) == wanted

    return (
        record.document_id == expected.document_id
        and record.kind == expected.kind
        and record.field == expected.field
        and same("before")
        and same("after")
    )


def test_baseline_then_every_change_type_then_nothing(server: CmsApiFixture, store: Store) -> None:
    week1 = _run(server, store, "week1")
    assert week1.outcome == "success" and week1.baseline
    assert week1.counts.new_versions == week1.counts.listed > 10
    baseline = store.changes(run_id=week1.run_id)
    assert {c.kind for c in baseline} <= {"document_added", "upcoming_version"}
    assert all(c.baseline for c in baseline)

    week2 = _run(server, store, "week2")
    assert week2.outcome == "success" and not week2.baseline
    changes = store.changes(run_id=week2.run_id)
    for expected in WEEK2_EXPECTED:
        assert any(_matches(c, expected) for c in changes), f"missing {expected}"
    # Precision: every code change reported is one the scenario made.
    expected_codes = {
        (e.document_id, e.kind, e.field, e.before or e.after)
        for e in WEEK2_EXPECTED
        if e.kind.startswith("code_")
    }
    reported_codes = {
        (c.document_id, c.kind, c.field, c.before or c.after)
        for c in changes
        if c.kind in ("code_added", "code_removed")
    }
    assert reported_codes == expected_codes
    for quiet in NOISE_ONLY_DOCUMENTS:
        assert len(store.versions("cms", quiet)) == 2, f"{quiet} has a new stored version"
        noise = [c for c in changes if c.document_id == quiet]
        assert [(c.kind, c.severity) for c in noise] == [("noise_only", "noise")]
    severities = {(c.document_id, c.kind): c.severity for c in changes}
    assert severities[("A57520", "code_removed")] == "high"
    assert severities[("L34009", "document_retired")] == "high"
    section = next(c for c in changes if c.document_id == "L33979" and c.kind == "section_changed")
    assert section.after and not section.before  # one sentence added, nothing removed

    # Current and future-effective versions of the same LCD coexist.
    upcoming = next(c for c in changes if c.kind == "upcoming_version")
    assert upcoming.effective_date is not None
    assert upcoming.effective_date > scenario_named("week2").today
    assert len(store.versions("cms", upcoming.document_id)) == 2

    server.reset_counters()
    versions_before = store.count(DocumentVersion)
    week3 = _run(server, store, "week3")
    assert week3.outcome == "success"
    assert (week3.counts.fetched, week3.counts.new_versions, week3.counts.changes) == (0, 0, 0)
    assert store.count(DocumentVersion) == versions_before
    assert server.request_count <= 6
    assert week3.counts.requests == server.request_count


def test_expired_token_is_refreshed(store: Store) -> None:
    with CmsApiFixture(scenario="week1", token_ttl_seconds=3600) as server:
        _run(server, store, "week1")
        server.expire_tokens()
        server.reset_counters()
        week2 = _run(server, store, "week2")
    assert week2.outcome == "success" and week2.counts.errors == 0
    license_calls = [r for r in server.requests if "license-agreement" in r]
    assert len(license_calls) == 1  # this run's client had no token: exactly one fetch


def test_token_expiring_mid_run_is_refreshed_once(server: CmsApiFixture, store: Store) -> None:
    server.set_scenario("week1")
    source = _source(server)
    from sources.cms_coverage import CmsCoverageSource

    async def scenario() -> int:
        cms = CmsCoverageSource(name="cms", options=source.options)
        listed = [d for d in (await cms.list_documents({})).documents if d.doc_type == "LCD"]
        first = [r async for r in cms.fetch(listed[:1])]
        server.expire_tokens()  # the cached token is now refused with 401
        rest = [r async for r in cms.fetch(listed[1:3])]
        await cms.aclose()
        assert all(hasattr(r, "content") for r in first + rest), first + rest
        return sum("license-agreement" in r for r in server.requests)

    assert asyncio.run(scenario()) == 2


def test_429_and_500_are_retried(server: CmsApiFixture, store: Store) -> None:
    server.inject(
        "/v1/reports/local-coverage-final-lcds", Fault(status=429, retry_after=1), times=2
    )
    server.inject("/v1/data/article", Fault(status=500), times=2)
    server.inject("/v1/data/lcd", Fault(status=503), times=1)
    week1 = _run(server, store, "week1")
    assert week1.outcome == "success", week1.line()
    assert week1.counts.errors == 0
    assert week1.counts.requests > week1.counts.listed  # the retries were counted


def test_truncated_response_is_an_error_and_the_next_run_catches_up(
    server: CmsApiFixture, store: Store
) -> None:
    _run(server, store, "week1")
    server.inject("/v1/data/article/icd10-covered", Fault(truncate=True), times=1000)
    week2 = _run(server, store, "week2")
    assert week2.outcome == "partial"
    errors = store.run_errors(week2.run_id)
    assert errors and all("icd10-covered" in (e.url or "") for e in errors)
    assert all(
        "RemoteProtocolError" in e.message or "incomplete" in e.message.lower() for e in errors
    ), [e.message for e in errors]
    assert not any(
        c.document_id.startswith("A")
        for c in store.changes(run_id=week2.run_id)
        if c.kind.startswith("code_")
    )

    server.clear_faults()
    catch_up = _run(server, store, "week2")
    assert catch_up.outcome == "success"
    assert catch_up.counts.fetched == len(errors)
    caught = store.changes(run_id=catch_up.run_id)
    assert any(c.document_id == "A57520" and c.kind == "code_removed" for c in caught)


def test_a_document_the_baseline_could_not_fetch_arrives_later_as_baseline(
    server: CmsApiFixture, store: Store
) -> None:
    """Not news: it existed when the baseline ran, so it is neither medium nor announced."""
    server.inject("/v1/data/article/icd10-covered", Fault(truncate=True), times=1000)
    baseline = _run(server, store, "week1")
    assert baseline.outcome == "partial"
    failed = {e.document_key for e in store.run_errors(baseline.run_id)}
    assert failed

    server.clear_faults()
    later = _run(server, store, "week1")
    arrived = [c for c in store.changes(run_id=later.run_id) if c.document_id in failed]
    assert {c.document_id for c in arrived} == failed
    assert all(c.kind == "document_added" and c.baseline for c in arrived)
    assert all(c.severity == "low" for c in arrived)
    assert store.changes(run_id=later.run_id, include_baseline=False) == []


def test_failed_listing_publishes_nothing(server: CmsApiFixture, store: Store) -> None:
    _run(server, store, "week1")
    server.inject("/v1/reports/local-coverage-articles", Fault(status=500), times=100)
    versions = store.count(DocumentVersion)
    week2 = _run(server, store, "week2")
    assert week2.outcome == "failed"
    assert "listing failed" in (week2.error or "") and "500" in (week2.error or "")
    assert store.count(DocumentVersion) == versions
    assert store.changes(run_id=week2.run_id) == []


def _options_source(server: CmsApiFixture, **options: object) -> SourceConfig:
    config = parse_config(
        {
            "sources": [
                {
                    "name": "cms",
                    "kind": "cms_coverage",
                    "base_url": server.base_url,
                    "backoff_seconds": 0.01,
                    "max_retries": 1,
                    **options,
                }
            ]
        }
    )
    return config.source("cms")


def test_paged_reports_are_followed(store: Store) -> None:
    with CmsApiFixture(scenario="week1", page_size=3) as server:
        today = scenario_named("week1").today
        summary = asyncio.run(run_source(_options_source(server), store, today=lambda: today))
        report_calls = [r for r in server.requests if "/v1/reports/" in r]
    assert summary.outcome == "success"
    assert summary.counts.listed == 17
    assert any("next_token=" in r for r in report_calls)


def test_a_response_over_the_size_limit_is_refused(server: CmsApiFixture, store: Store) -> None:
    today = scenario_named("week1").today
    source = _options_source(server, max_response_bytes=4000)
    summary = asyncio.run(run_source(source, store, today=lambda: today))
    assert summary.outcome in ("partial", "failed")
    errors = store.run_errors(summary.run_id)
    assert errors and all("larger than 4000 bytes" in e.message for e in errors)
    assert store.count(DocumentVersion) == summary.counts.new_versions
    assert summary.counts.new_versions + len(errors) == summary.counts.listed


def test_a_timeout_is_retried_then_recorded(server: CmsApiFixture, store: Store) -> None:
    today = scenario_named("week1").today
    server.inject("/v1/data/ncd", Fault(delay=1.0), times=100)
    source = _options_source(server, timeout_seconds=0.2)
    summary = asyncio.run(run_source(source, store, today=lambda: today))
    assert summary.outcome == "partial"
    messages = [e.message for e in store.run_errors(summary.run_id)]
    assert messages and all("timed out" in m for m in messages)
    assert all(
        e.document_key and e.document_key.startswith("NCD")
        for e in store.run_errors(summary.run_id)
    )
    server.clear_faults()
    again = asyncio.run(run_source(source, store, today=lambda: today))
    assert again.outcome == "success" and again.counts.fetched == len(messages)
