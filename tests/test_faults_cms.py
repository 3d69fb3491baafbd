"""Fault suite, CMS side: each fault of `fixtures.faults` that a JSON API can produce, served on
one request of Article A57520 (whose covered ICD-10 table changes in week 2). The run must finish,
record A57520's failure with a clear message, publish nothing for it and everything else, and the
next clean run must leave the store exactly as a run without the fault does.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from fixtures.cms_api import CmsApiFixture
from fixtures.cms_corpus.model import scenario_named
from fixtures.faults import FAULT_CASES, FaultCase, FaultContext, OtherHost, oversized_body
from fixtures.loopback import Fault
from monitor.config import SourceConfig, parse_config
from monitor.pipeline.runner import RunSummary, run_source
from monitor.store.core import Store
from monitor.store.models.core import Document, DocumentVersion, SourceRow

SOURCE = "cms"
TARGET = "A57520"
TARGET_PATH = "/v1/data/article/icd10-covered?articleid=57520"
# The source's timeout for every request of a whole run: generous, so that no ordinary request
# of a busy 2-core CI machine comes near it (it was 0.5 s, which a loaded machine can miss).
TIMEOUT = 2.0
# What the stalls the server controls (no answer, a trickled body) are scaled by: twice the
# source's timeout, so a stall outlasts every limit of the client (the per-read timeout and the
# whole-response deadline of 4x) by a wide margin, whatever the machine's speed.
STALL_BASIS = 2 * TIMEOUT
MAX_BYTES = 1_000_000
CMS_CASES = [c for c in FAULT_CASES if "cms" in c.kinds]

ChangeKey = tuple[str, str, str | None, str | None, str | None]


@dataclass(frozen=True, kw_only=True)
class Baseline:
    db: Path
    reference: dict[str, object]  # the store's state after a clean week 2


def _source(server: CmsApiFixture) -> SourceConfig:
    return parse_config(
        {
            "sources": [
                {
                    "name": SOURCE,
                    "kind": "cms_coverage",
                    "base_url": server.base_url,
                    "backoff_seconds": 0.01,
                    "max_retries": 1,
                    "max_retry_after_seconds": 1.0,
                    "timeout_seconds": TIMEOUT,
                    "max_response_bytes": MAX_BYTES,
                }
            ]
        }
    ).source(SOURCE)


def _run(server: CmsApiFixture, store: Store, week: str) -> RunSummary:
    server.set_scenario(week)
    today = scenario_named(week).today
    return asyncio.run(run_source(_source(server), store, today=lambda: today))


def snapshot(store: Store) -> dict[str, object]:
    """Versions per document (number and bytes) and every non-baseline change."""
    with store.session() as session:
        versions = sorted(
            session.execute(
                select(Document.key, DocumentVersion.source_version, DocumentVersion.content_sha256)
                .join(DocumentVersion, DocumentVersion.document_id == Document.id)
                .join(SourceRow, Document.source_id == SourceRow.id)
                .where(SourceRow.name == SOURCE)
            ).all()
        )
    changes = sorted(
        (c.document_id, c.kind, c.field, c.before, c.after)
        for c in store.changes(source=SOURCE, include_baseline=False)
    )
    return {"versions": [tuple(v) for v in versions], "changes": changes}


def _changes_of(state: dict[str, object], key: str) -> list[object]:
    return [c for c in state["changes"] if c[0] == key]  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def server() -> Iterator[CmsApiFixture]:
    with CmsApiFixture(scenario="week1") as fixture:
        yield fixture


@pytest.fixture(scope="module")
def other_host() -> Iterator[OtherHost]:
    with OtherHost() as fixture:
        yield fixture


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, server: CmsApiFixture) -> Baseline:
    scratch = tmp_path_factory.mktemp("cms-faults")
    db = scratch / "baseline.db"
    store = Store.open(f"sqlite:///{db}")
    assert _run(server, store, "week1").outcome == "success"
    store.close()
    reference_db = scratch / "reference.db"
    shutil.copy(db, reference_db)
    store = Store.open(f"sqlite:///{reference_db}")
    week2 = _run(server, store, "week2")
    assert week2.outcome == "success", week2.line()
    reference = snapshot(store)
    store.close()
    assert _changes_of(reference, TARGET)  # the target really changes in week 2
    return Baseline(db=db, reference=reference)


@pytest.fixture
def store(baseline: Baseline, tmp_path: Path) -> Iterator[Store]:
    copy = tmp_path / "monitor.store.db"
    shutil.copy(baseline.db, copy)
    opened = Store.open(f"sqlite:///{copy}")
    yield opened
    opened.close()


@pytest.fixture(autouse=True)
def _clean_server(server: CmsApiFixture, other_host: OtherHost) -> None:
    server.clear_faults()
    server.reset_counters()
    other_host.reset_counters()


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=[pytest.mark.slow] if c.slow else []) for c in CMS_CASES],
    ids=lambda c: c.name,
)
def test_cms_fault(
    case: FaultCase,
    server: CmsApiFixture,
    other_host: OtherHost,
    baseline: Baseline,
    store: Store,
    record_property: pytest.RecordProperty,
) -> None:
    before = snapshot(store)
    context = FaultContext(
        path=TARGET_PATH,
        url=server.base_url + TARGET_PATH + "&ver=32",
        other_host=other_host.base_url,
        max_bytes=MAX_BYTES,
        # The cases scale their stalls from this: longer than the source's own timeout, so a
        # stall is never a near thing (a trickle of 4x it against a deadline of 4x TIMEOUT).
        timeout_seconds=STALL_BASIS,
    )
    server.inject(TARGET_PATH, case.make(context), times=case.times)
    faulted = _run(server, store, "week2")
    errors = {e.document_key: e.message for e in store.run_errors(faulted.run_id)}
    after_fault = snapshot(store)
    server.clear_faults()
    caught_up = _run(server, store, "week2")
    final = snapshot(store)
    message = errors.get(TARGET, "")
    target_versions = [v for v in after_fault["versions"] if v[0] == TARGET]  # type: ignore[attr-defined]
    new_for_target = len(target_versions) - len(
        [v for v in before["versions"] if v[0] == TARGET]  # type: ignore[attr-defined]
    )
    false_changes = (
        len(_changes_of(after_fault, TARGET)) + new_for_target if case.expect_error else 0
    )
    for name, value in (
        ("fault", case.name),
        ("source", "cms"),
        ("description", case.description),
        ("message", message),
        ("data_lost", int(final != baseline.reference)),
        ("false_changes", false_changes),
    ):
        record_property(name, value)

    # (a) the service survived: the run finished, every other document was published
    assert faulted.outcome in ("partial", "success"), faulted.line()
    others = [c for c in after_fault["changes"] if c[0] != TARGET]  # type: ignore[attr-defined]
    assert others == [c for c in baseline.reference["changes"] if c[0] != TARGET]  # type: ignore[attr-defined]
    if case.expect_error:
        # (b) recorded against the document, with a clear message
        assert set(errors) == {TARGET}, errors
        assert any(word in message.lower() for word in case.message), message
        # (c) nothing false: no new version, no change for it
        assert new_for_target == 0
        assert _changes_of(after_fault, TARGET) == []
    else:
        assert errors == {}
        assert after_fault == baseline.reference
    # (d) the clean run catches up: the store is as if the fault never happened
    assert caught_up.outcome == "success", caught_up.line()
    assert final == baseline.reference
    assert other_host.request_count == 0


def test_a_listing_replaced_by_a_challenge_page_fails_the_run_and_withdraws_nothing(
    server: CmsApiFixture, baseline: Baseline, store: Store
) -> None:
    """The worst case: the report list itself is an error page. Nothing may be published or
    taken as withdrawn; the next run carries on."""
    from fixtures.faults import CLOUDFLARE_CHALLENGE

    server.inject(
        "/v1/reports/local-coverage-articles", Fault.served(CLOUDFLARE_CHALLENGE), times=5
    )
    before = snapshot(store)
    faulted = _run(server, store, "week2")
    assert faulted.outcome == "failed"
    assert "just a moment" in (faulted.error or "").lower()
    assert snapshot(store) == before
    server.clear_faults()
    assert _run(server, store, "week2").outcome == "success"
    assert snapshot(store) == baseline.reference


def test_an_oversized_listing_fails_the_run(
    server: CmsApiFixture, baseline: Baseline, store: Store
) -> None:
    body = oversized_body(MAX_BYTES, pdf=False)
    server.inject("/v1/reports/local-coverage-articles", Fault.served(body, "application/json"))
    before = snapshot(store)
    faulted = _run(server, store, "week2")
    assert faulted.outcome == "failed"
    assert f"larger than {MAX_BYTES} bytes" in (faulted.error or "")
    assert snapshot(store) == before
