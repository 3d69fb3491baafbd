"""Fault suite, payer side: every fault of `fixtures.faults` served by the fixture payer site,
one document per fault, in one run; the Scrapy crawl, the parse workers and the publisher must
survive it, record each failure against its document, publish nothing false, and catch up on
the next clean run so that the store ends exactly as a run without faults leaves it.

Runs (scale site, 30 documents, half PDF half HTML; two change in week 2):
  baseline (week 1) -> copy A: week 2 without faults (the reference)
                    -> copy B: week 2 with every fault, then week 2 without faults
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from fixtures.faults import FAULT_CASES, FaultCase, FaultContext, OtherHost
from fixtures.payer_site import AETNA_INDEX_PATH, UHC_INDEX_PATH, PayerSiteFixture
from fixtures.payer_site.scale import spec, week2_changes
from monitor.config import SourceConfig, parse_config
from monitor.pipeline.runner import RunSummary, run_source
from monitor.store.core import Store
from monitor.store.models.core import Document, DocumentVersion, SourceRow

pytestmark = pytest.mark.slow

DOCUMENTS = 30
TIMEOUT = 2.0
MAX_BYTES = 2_000_000  # above the 3,000-page PDF (1.3 MB), below the oversized bodies
SOURCE = "payer"
TODAY = dt.date(2026, 11, 12)
# Pinned targets, the two documents that really change in week 2: the PDF gets a fault that
# must not hide the change once the site recovers; the HTML page arrives with a wrong type and
# must publish in the faulted run itself (so that run also shows everything else publishing).
PINNED = {"wrong_content_type": 9, "corrupt_pdf": 22}
CONTROLS = {0}  # the 20-page benchmark PDF stays clean (and is slow to parse)

ChangeKey = tuple[str, str | None, str | None, str | None]


@dataclass(frozen=True, kw_only=True)
class DocState:
    versions: int
    changes: frozenset[ChangeKey]


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What the module's runs left behind, for the per-fault tests to examine."""

    targets: dict[str, str]  # case name -> document key
    faulted: RunSummary
    faulted_errors: dict[str, str]
    faulted_changes: dict[str, list[ChangeKey]]
    baseline_state: dict[str, DocState]
    after_fault_state: dict[str, DocState]
    caught_up: RunSummary
    caught_up_errors: dict[str, str]
    final_state: dict[str, DocState]
    reference_state: dict[str, DocState]
    other_host_requests: list[str]


def _assign_targets() -> dict[str, int]:
    """One document per fault: PDF-only faults on PDFs, the rest on HTML pages first."""
    free_pdf = [i for i in range(0, DOCUMENTS, 2) if i not in CONTROLS | set(PINNED.values())]
    free_html = [i for i in range(1, DOCUMENTS, 2) if i not in CONTROLS | set(PINNED.values())]
    targets = dict(PINNED)
    for case in FAULT_CASES:
        if case.name in targets or not ({"pdf", "html"} & case.kinds):
            continue
        if case.kinds == {"pdf"} or not free_html:
            targets[case.name] = free_pdf.pop(0)
        else:
            targets[case.name] = free_html.pop(0)
    return targets


def _source(site: PayerSiteFixture) -> SourceConfig:
    return parse_config(
        {
            "sources": [
                {
                    "name": SOURCE,
                    "kind": "payer_policies",
                    "payer": "Fault Health",
                    "start_urls": [
                        site.base_url + UHC_INDEX_PATH,
                        site.base_url + AETNA_INDEX_PATH,
                    ],
                    "allow": ["/policies/drug/", "/cpb/medical/data/"],
                    "download_delay_seconds": 0.0,
                    "concurrency_per_host": 8,
                    "max_retries": 1,
                    "timeout_seconds": TIMEOUT,
                    "max_document_bytes": MAX_BYTES,
                    "parse_timeout_seconds": 60.0,
                }
            ]
        }
    ).source(SOURCE)


def _run(site: PayerSiteFixture, db: Path, week: str) -> tuple[RunSummary, Store]:
    site.set_scenario(week)
    store = Store.open(f"sqlite:///{db}")
    summary = asyncio.run(run_source(_source(site), store, today=lambda: TODAY))
    return summary, store


def _errors(store: Store, run_id: int) -> dict[str, str]:
    return {e.document_key or "": e.message for e in store.run_errors(run_id)}


def _change_key(change: object) -> ChangeKey:
    return (change.kind, change.field, change.before, change.after)  # type: ignore[attr-defined]


def snapshot(store: Store) -> dict[str, DocState]:
    """Per document: how many versions, and every non-baseline change. (Not the bytes: CPB
    pages carry a per-request id.)"""
    with store.session() as session:
        rows = session.execute(
            select(Document.key, DocumentVersion.content_sha256)
            .join(DocumentVersion, DocumentVersion.document_id == Document.id)
            .join(SourceRow, Document.source_id == SourceRow.id)
            .where(SourceRow.name == SOURCE)
            .order_by(DocumentVersion.id)
        ).all()
    versions: dict[str, list[str]] = {}
    for key, sha in rows:
        versions.setdefault(key, []).append(sha)
    changes: dict[str, set[ChangeKey]] = {}
    for change in store.changes(source=SOURCE, include_baseline=False):
        changes.setdefault(change.document_id, set()).add(_change_key(change))
    return {
        key: DocState(
            versions=len(shas),
            changes=frozenset(changes.get(key, ())),
        )
        for key, shas in versions.items()
    }


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    scratch = tmp_path_factory.mktemp("payer-faults")
    with (
        PayerSiteFixture(scenario="week1", documents=DOCUMENTS, conditional=False) as site,
        OtherHost() as other,
    ):
        site.warm()
        baseline_db = scratch / "baseline.db"
        summary, store = _run(site, baseline_db, "week1")
        assert summary.outcome == "success", summary.line()
        baseline_state = snapshot(store)
        store.close()
        reference_db, faulted_db = scratch / "reference.db", scratch / "faulted.db"
        shutil.copy(baseline_db, reference_db)
        shutil.copy(baseline_db, faulted_db)

        summary, store = _run(site, reference_db, "week2")
        assert summary.outcome == "success", summary.line()
        reference_state = snapshot(store)
        store.close()

        targets = {name: spec(i).url_path for name, i in _assign_targets().items()}
        by_name = {case.name: case for case in FAULT_CASES}
        for name, path in targets.items():
            case = by_name[name]
            context = FaultContext(
                path=path,
                url=site.base_url + path,
                other_host=other.base_url,
                max_bytes=MAX_BYTES,
                timeout_seconds=TIMEOUT,
            )
            site.inject(path, case.make(context), times=case.times)
        faulted, store = _run(site, faulted_db, "week2")
        faulted_errors = _errors(store, faulted.run_id)
        faulted_changes: dict[str, list[ChangeKey]] = {}
        for change in store.changes(run_id=faulted.run_id):
            faulted_changes.setdefault(change.document_id, []).append(_change_key(change))
        after_fault_state = snapshot(store)
        store.close()

        site.clear_faults()
        caught_up, store = _run(site, faulted_db, "week2")
        yield Outcome(
            targets=targets,
            faulted=faulted,
            faulted_errors=faulted_errors,
            faulted_changes=faulted_changes,
            baseline_state=baseline_state,
            after_fault_state=after_fault_state,
            caught_up=caught_up,
            caught_up_errors=_errors(store, caught_up.run_id),
            final_state=snapshot(store),
            reference_state=reference_state,
            other_host_requests=other.requests,
        )
        store.close()


PAYER_CASES = [c for c in FAULT_CASES if {"pdf", "html"} & c.kinds]


def test_every_fault_has_its_own_document() -> None:
    targets = _assign_targets()
    assert set(targets) == {c.name for c in PAYER_CASES}
    assert len(set(targets.values())) == len(targets)  # one fault per document
    changed = set(week2_changes(DOCUMENTS))
    assert changed == set(PINNED.values())  # the pinned targets are the changed documents
    for name, index in targets.items():
        kind = "pdf" if spec(index).is_pdf else "html"
        assert next(c for c in PAYER_CASES if c.name == name).applies_to(kind), name


def test_the_faulted_run_finished_and_nothing_reached_another_host(outcome: Outcome) -> None:
    assert outcome.faulted.outcome == "partial", outcome.faulted.line()
    assert outcome.faulted.counts.listed == DOCUMENTS
    expected_errors = {outcome.targets[c.name] for c in PAYER_CASES if c.expect_error}
    assert set(outcome.faulted_errors) == expected_errors
    assert outcome.other_host_requests == []


def test_the_clean_run_leaves_the_store_as_a_run_without_faults(outcome: Outcome) -> None:
    assert outcome.caught_up.outcome == "success", outcome.caught_up.line()
    assert outcome.caught_up_errors == {}
    assert outcome.final_state == outcome.reference_state
    assert not any(
        kind == "document_withdrawn"
        for state in outcome.final_state.values()
        for kind, *_ in state.changes
    )


@pytest.mark.parametrize("case", PAYER_CASES, ids=lambda c: c.name)
def test_payer_fault(
    case: FaultCase, outcome: Outcome, record_property: pytest.RecordProperty
) -> None:
    key = outcome.targets[case.name]
    before = outcome.baseline_state[key]
    after_fault = outcome.after_fault_state[key]
    final, reference = outcome.final_state[key], outcome.reference_state[key]
    message = outcome.faulted_errors.get(key, "")
    published_in_fault = len(outcome.faulted_changes.get(key, ())) + (after_fault != before)
    false_changes = published_in_fault if case.expect_error else 0
    if not case.expect_error:  # whatever the faulted run published must be the real thing
        false_changes = len(after_fault.changes - reference.changes)
    for name, value in (
        ("fault", case.name),
        ("source", "payer"),
        ("description", case.description),
        ("message", message),
        ("data_lost", int(final != reference)),
        ("false_changes", false_changes),
    ):
        record_property(name, value)

    # (a) the service survived: the run finished with an outcome
    assert outcome.faulted.outcome in ("success", "partial"), outcome.faulted.line()
    if case.expect_error:
        # (b) the failure is recorded against the document, with a message that says what
        assert any(word in message.lower() for word in case.message), (key, message)
        # (c) nothing of it was published: no new version, no change rows
        assert after_fault == before
        assert key not in outcome.faulted_changes
    else:
        # absorbed (retried, or the content sniffed): published as if nothing happened
        assert not message
        assert after_fault == reference
    # (d) the next clean run catches up: the document ends as a run without faults leaves it
    assert key not in outcome.caught_up_errors
    assert final == reference
