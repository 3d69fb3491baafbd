"""Storing a payer version's checklists (monitor.store.checklists.publish_checklists), on SQLite
and on PostgreSQL: the JSON kept is `checklist_to_dict`'s to the byte, and a batch that writes
its checklist rows at its end stores the rows, ids included, that publishing the same versions
one by one stores: numbers counted per checklist, a drug dropped recorded as removed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlite_support import migrated_sqlite

from diffing.checklist import (
    CHECKLIST_FORMAT,
    Checklist,
    ChecklistItem,
    build_checklists,
    checklist_to_dict,
)
from diffing.model import (
    ApprovalPeriod,
    CodeRef,
    CodeSystem,
    CoverageFlag,
    Criteria,
    Evidence,
    PriorAuth,
    RawDocument,
    StepTherapy,
    Threshold,
)
from diffing.payer import payer_criteria
from fixtures.payer_site.site import PayerSite, body
from monitor.pipeline.publish import Outcome, Pending, PublishContext, publish, publish_batch
from monitor.store.checklists import _json
from monitor.store.core import Store
from sources.base import ListedDocument

PAYER = "Acme Health"


def _criteria(
    key: str, drugs: tuple[str, ...], *, weeks: int = 8, effective: dt.date | None = None
) -> Criteria:
    return Criteria(
        document_id=key,
        doc_type="payer_policy",
        title="Dupixent® (Dupilumab) — “atopic” dermatitis",
        version=None,
        status="active",
        effective_date=effective,
        payer=PAYER,
        codes=frozenset(
            {CodeRef(system=CodeSystem.ICD10, flag=CoverageFlag.COVERED, code="L20.9")}
        ),
        step_therapy=tuple(
            StepTherapy(
                prerequisite="topical corticosteroid",
                drug=drug,
                indication="atopic dermatitis",
                min_duration_days=weeks * 7,
                evidence=Evidence(
                    sentence=f"TCS for at least {weeks} weeks ≥ twice.", page=2, section="1.a"
                ),
            )
            for drug in drugs
        ),
        prior_auth=tuple(PriorAuth(required=True, drug=drug) for drug in drugs),
        approval_periods=tuple(
            ApprovalPeriod(phase="initial", days=183, drug=drug) for drug in drugs
        ),
        thresholds=(
            Threshold(measure="BSA", op=">=", value=10.5, unit="%", indication="atopic dermatitis"),
        ),
        prescriber_specialties=("dermatologist",),
    )


def _asdict_form(checklist: Checklist) -> dict[str, Any]:
    """`checklist_to_dict` as it was written, by `dataclasses.asdict`."""
    body = dataclasses.asdict(checklist)
    body["format"] = CHECKLIST_FORMAT
    body["effective_date"] = (
        checklist.effective_date.isoformat() if checklist.effective_date else None
    )
    for item in body["items"]:
        item["codes"] = list(item["codes"])
        item["alternatives"] = list(item["alternatives"])
    body["outline"] = list(checklist.outline)
    return body


def _reference_json(checklist: Checklist) -> str:
    assert checklist_to_dict(checklist) == _asdict_form(checklist)
    return json.dumps(_asdict_form(checklist), sort_keys=True, ensure_ascii=False)


def test_the_stored_json_is_checklist_to_dict_to_the_byte() -> None:
    checklists = [
        *build_checklists(_criteria("/a", ("dupilumab", "tralokinumab"))),
        *build_checklists(_criteria("/b", ("dupilumab",), effective=dt.date(2026, 3, 1))),
    ]
    # The fixture payer site's CPB pages: criteria trees, outlines, "one of" alternatives.
    site = PayerSite(documents=40, html_only=True)
    resources = site.resources("week1")
    for path in sorted(site.document_paths("week1"))[:12]:
        raw = RawDocument(
            source="payers",
            key=path,
            url=f"https://payer.test{path}",
            content=body(resources[path]).data,
            content_type=resources[path].content_type,
            fetched_at=dt.datetime(2026, 11, 12, tzinfo=dt.UTC),
            source_version="",
            doc_type="payer_policy",
            source_meta=(("payer", PAYER),),
        )
        checklists.extend(build_checklists(payer_criteria(raw)))
    assert len(checklists) >= 10
    assert any(item.evidence is not None for c in checklists for item in c.items)
    assert any(c.outline for c in checklists)
    for checklist in checklists:
        assert _json(checklist) == _reference_json(checklist)


def test_only_evidence_and_items_nest_dataclasses() -> None:
    """`_json` copies one level of fields by hand: a new nested dataclass field needs it too."""
    nested = {
        (owner.__name__, name)
        for owner in (Checklist, ChecklistItem, Evidence)
        for name, hint in typing.get_type_hints(owner).items()
        if any(
            dataclasses.is_dataclass(arg)
            for arg in (hint, *typing.get_args(hint), *_inner_args(hint))
        )
    }
    assert nested == {("Checklist", "items"), ("ChecklistItem", "evidence")}


def _inner_args(hint: Any) -> tuple[Any, ...]:
    return tuple(inner for arg in typing.get_args(hint) for inner in typing.get_args(arg))


# -- batched and one by one --------------------------------------------------------------------

# (document, drugs, weeks) per version, in publishing order, in batches.
BATCHES: list[list[tuple[str, tuple[str, ...], int]]] = [
    [("/a", ("dupilumab", "tralokinumab"), 8), ("/b", ("dupilumab",), 8)],
    # /a drops tralokinumab and changes a duration; /b adds a drug; /c is new.
    [("/a", ("dupilumab",), 12), ("/b", ("dupilumab", "lebrikizumab"), 8), ("/c", ("x",), 4)],
    # /a twice in one batch (its second version reads the first's checklists back).
    [("/a", ("dupilumab", "tralokinumab"), 12), ("/a", ("tralokinumab",), 12)],
]


def _version(key: str, drugs: tuple[str, ...], weeks: int) -> tuple[RawDocument, Criteria]:
    content = f"{key} {' '.join(drugs)} {weeks}".encode()
    raw = RawDocument(
        source="payers",
        key=key,
        url=f"https://payer.test{key}",
        content=content,
        content_type="text/plain",
        fetched_at=dt.datetime(2026, 11, 12, tzinfo=dt.UTC),
        source_version="",
        doc_type="payer_policy",
        title=key,
    )
    return raw, _criteria(key, drugs, weeks=weeks)


def _listed(raw: RawDocument) -> ListedDocument:
    return ListedDocument(
        key=raw.key,
        source_version="",
        version_number=None,
        fingerprint=hashlib.sha256(raw.content).hexdigest()[:16],
        doc_type="payer_policy",
        title=raw.key,
        url=raw.url,
    )


def _context(store: Store, *, baseline: bool) -> PublishContext:
    source_id = store.ensure_source("payers", "payer_policies").id
    return PublishContext(
        source_id=source_id,
        run_id=store.start_run(source_id, baseline=baseline),
        baseline=baseline,
        today=dt.date(2026, 11, 12),
        extract=lambda raw: pytest.fail(f"{raw.key} extracted in publishing"),
        extractor_name="payer/1",
    )


def _checklist_rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        "checklists": "SELECT id, document_id, subject, subject_kind, payer, label "
        "FROM checklists ORDER BY id",
        "versions": "SELECT id, checklist_id, version_id, number, effective_date, removed, "
        "items, sha256, data FROM checklist_versions ORDER BY id",
        "changes": "SELECT id, version_id, field, before, after, severity FROM changes "
        "WHERE kind = 'checklist_changed' ORDER BY id",
    }
    with store.session() as session:
        return {
            name: [tuple(row) for row in session.execute(text(sql))]
            for name, sql in queries.items()
        }


@pytest.fixture
def stores(
    migrated_database_url: str, migrated_sqlite_template: Path, tmp_path: Path
) -> Iterator[tuple[Store, Store]]:
    """The store published in batches and, on SQLite, one published one version at a time."""
    batched = Store.open(migrated_database_url)
    alone = Store.open(migrated_sqlite(migrated_sqlite_template, tmp_path / "alone.db"))
    yield batched, alone
    batched.close()
    alone.close()


def test_a_batch_stores_the_checklist_rows_of_one_by_one(
    stores: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    batched, alone = stores

    def no_fallback(*args: Any) -> None:
        raise AssertionError("the batch failed and was published one by one")

    # Each batch is written as one (a failed batch falls back to one-by-one publishing, which
    # would hide a batch that wrote its rows wrongly).
    monkeypatch.setattr("monitor.pipeline.publish._publish_alone", no_fallback)
    for n, batch in enumerate(BATCHES):
        versions = [_version(*version) for version in batch]
        ctx = _context(batched, baseline=n == 0)
        results = publish_batch(
            batched,
            ctx,
            [
                Pending(raw=raw, listed=_listed(raw), criteria=criteria)
                for raw, criteria in versions
            ],
        )
        assert [result.outcome for _raw, result, _error in results if result] == [
            Outcome.NEW if n == 0 or raw.key == "/c" else Outcome.CHANGED for raw, _c in versions
        ]
        ctx = _context(alone, baseline=n == 0)
        for raw, criteria in versions:
            publish(alone, ctx, raw, _listed(raw), criteria=criteria)
    rows = _checklist_rows(batched)
    assert rows == _checklist_rows(alone)
    by_id = {row[0]: row[2] for row in rows["checklists"]}
    assert [by_id[row[0]] for row in rows["checklists"]] == [
        "dupilumab",
        "tralokinumab",
        "dupilumab",
        "lebrikizumab",
        "x",
    ]
    # (subject, number, removed) of /a's checklists, in publishing order.
    a_ids = {row[0] for row in rows["checklists"] if row[1] == rows["checklists"][0][1]}
    assert [(by_id[row[1]], row[3], row[5]) for row in rows["versions"] if row[1] in a_ids] == [
        ("dupilumab", 1, False),
        ("tralokinumab", 1, False),
        ("dupilumab", 2, False),
        ("tralokinumab", 2, True),
        ("dupilumab", 3, False),
        ("tralokinumab", 3, False),
        ("tralokinumab", 4, False),
        ("dupilumab", 4, True),
    ]
    assert [row[0] for row in rows["versions"]] == sorted(row[0] for row in rows["versions"])
    assert rows["changes"], "the duration change and the dropped drug are reported"
