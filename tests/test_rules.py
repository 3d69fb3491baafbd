"""Rule tables: flattening (pure), as-of answers across three published versions (SQLite and
PostgreSQL), immutability, and code pairs from the CMS fixture through `policy-monitor check`."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from diffing.cms import cms_criteria, make_bundle
from diffing.model import (
    AgeLimit,
    ApprovalPeriod,
    CodeRef,
    CodeSystem,
    CoverageFlag,
    Criteria,
    Evidence,
    PriorAuth,
    StepTherapy,
    Threshold,
)
from diffing.rules import NATIONAL, RuleKind, days_text, flatten, governed_drugs
from diffing.serialize import criteria_from_json, criteria_to_json
from fixtures.cms_api import CmsApiFixture
from monitor.cli.main import main
from monitor.errors import StoreError
from monitor.pipeline.publish import PublishContext, publish
from monitor.store.core import Store, utcnow
from monitor.store.models.rules import RuleRowModel
from monitor.store.rules import criteria_rule_parts, query_rules, rule_rows_of, rule_values
from sources.base import ListedDocument

PARAGRAPH = (
    "&lt;p&gt;The following ICD-10-CM codes support medical necessity and provide coverage for "
    "CPT codes: 11200, 11201 and 11300-11302.&lt;/p&gt;"
)


def _article_bundle(
    version: int, effective: str, icd10: list[str], *, retired: str = "N/A"
) -> bytes:
    row = {
        "document_id": 57520,
        "document_version": version,
        "document_display_id": "A57520",
        "document_type": "Article",
        "note": "",
        "title": "Billing and Coding: Removal of Benign Skin Lesions",
        "contractor_name_type": "Novitas Solutions, Inc.\r\nA and B MAC\r\n",
        "effective_date": effective,
        "retirement_date": retired,
        "url": f"https://www.cms.gov/x?articleid=57520&ver={version}",
    }
    tables = {
        "hcpc_code": [
            {"hcpc_code_id": "11200", "hcpc_code_group": 1, "long_description": "Removal tags"}
        ],
        "icd10_covered": [
            {"icd10_code_id": code, "icd10_covered_group": 1, "description": f"dx {code}"}
            for code in icd10
        ],
        "icd10_covered_group": [{"icd10_covered_group": 1, "paragraph": PARAGRAPH}],
        "icd10_noncovered": [
            {"icd10_code_id": "L57.0", "icd10_noncovered_group": 1, "description": "AK"}
        ],
    }
    return make_bundle(
        doc_type="Article", report=row, detail={"article_id": 57520, "title": "x"}, tables=tables
    )


# -- flattening (pure) ---------------------------------------------------------------------------


def test_a_cms_article_flattens_into_codes_and_code_pairs() -> None:
    criteria = cms_criteria(_article_bundle(31, "01/01/2026", ["L82.0", "L82.1"]))
    rows = flatten(criteria)
    by_kind: dict[RuleKind, list[Any]] = {}
    for row in rows:
        by_kind.setdefault(row.kind, []).append(row)
    covered = {(r.code_system, r.code, r.code_group) for r in by_kind[RuleKind.COVERED_CODE]}
    assert covered == {("icd10", "L82.0", 1), ("icd10", "L82.1", 1), ("hcpcs", "11200", 1)}
    assert [r.code for r in by_kind[RuleKind.NONCOVERED_CODE]] == ["L57.0"]
    pairs = by_kind[RuleKind.CODE_PAIR]
    assert sorted(r.code for r in pairs) == ["11200", "11201", "11300", "11301", "11302"]
    assert {r.code_group for r in pairs} == {1}
    assert "CPT codes: 11200" in (pairs[0].evidence or "")
    assert all(r.payer == "Novitas Solutions, Inc." for r in rows)
    assert all(r.document == "A57520" and r.version == "31" for r in rows)
    assert all(r.effective_from == dt.date(2026, 1, 1) and r.retired_on is None for r in rows)
    # Code pairs survive the store's JSON round trip, paragraph and all.
    assert criteria_from_json(criteria_to_json(criteria)).code_pairs == criteria.code_pairs


def test_a_group_paragraph_without_codes_pairs_nothing() -> None:
    bundle = json.loads(_article_bundle(1, "01/01/2026", ["L82.0"]))
    bundle["tables"]["icd10_covered_group"] = [{"icd10_covered_group": 1, "paragraph": "N/A"}]
    criteria = cms_criteria(json.dumps(bundle).encode())
    assert not criteria.code_pairs
    assert not [r for r in flatten(criteria) if r.kind is RuleKind.CODE_PAIR]


def _payer_criteria(**overrides: Any) -> Criteria:
    evidence = Evidence(sentence="Patient has tried a TCS for at least 8 weeks.", page=2)
    fields: dict[str, Any] = dict(
        document_id="/policies/drug/dupixent.pdf",
        doc_type="payer_policy",
        title="Dupixent® (Dupilumab)",
        version=None,
        status="active",
        effective_date=dt.date(2026, 1, 1),
        payer="Acme Health",
        codes=frozenset(
            {CodeRef(system=CodeSystem.ICD10, flag=CoverageFlag.COVERED, code="L20.9")}
        ),
        step_therapy=(
            StepTherapy(
                prerequisite="topical corticosteroid",
                drug="dupilumab",
                indication="atopic dermatitis",
                min_duration_days=56,
                evidence=evidence,
            ),
        ),
        prior_auth=(PriorAuth(required=True, drug="dupilumab"),),
        approval_periods=(ApprovalPeriod(phase="initial", days=183, drug="dupilumab"),),
        thresholds=(
            Threshold(measure="BSA", op=">=", value=10, unit="%", indication="atopic dermatitis"),
        ),
        age_limits=(AgeLimit(op=">=", years=18),),
        prescriber_specialties=("dermatologist",),
    )
    fields.update(overrides)
    return Criteria(**fields)


def test_payer_criteria_flatten_into_one_row_per_fact_with_evidence() -> None:
    rows = flatten(_payer_criteria())
    kinds = [r.kind for r in rows]
    assert kinds == [
        RuleKind.COVERED_CODE,
        RuleKind.STEP_THERAPY,
        RuleKind.PRIOR_AUTH,
        RuleKind.APPROVAL_PERIOD,
        RuleKind.THRESHOLD,
        RuleKind.AGE_LIMIT,
        RuleKind.PRESCRIBER_SPECIALTY,
    ]
    step = rows[1]
    assert (step.subject, step.days, step.count, step.drug) == (
        "topical corticosteroid",
        56,
        1,
        "dupilumab",
    )
    assert step.text == "trial of topical corticosteroid for at least 8 weeks"
    assert (step.evidence, step.evidence_page) == (
        "Patient has tried a TCS for at least 8 weeks.",
        2,
    )
    threshold = rows[4]
    assert (threshold.subject, threshold.op, threshold.value, threshold.unit) == (
        "BSA",
        ">=",
        10,
        "%",
    )
    # Facts without a drug of their own belong to the policy's only governed drug.
    assert threshold.drug == "dupilumab" and rows[0].drug == "dupilumab"
    assert all(r.payer == "Acme Health" for r in rows)


def test_governed_drugs_leave_out_drugs_only_mentioned() -> None:
    assert governed_drugs(_payer_criteria()) == ("dupilumab",)
    assert (
        governed_drugs(_payer_criteria(step_therapy=(), prior_auth=(), approval_periods=())) == ()
    )


def test_durations_read_as_people_write_them() -> None:
    assert [days_text(d) for d in (56, 84, 91, 183, 365, 30, 10, 7)] == [
        "8 weeks",
        "12 weeks",
        "3 months",
        "6 months",
        "12 months",
        "1 month",
        "10 days",
        "1 week",
    ]


def test_an_ncd_is_national() -> None:
    criteria = Criteria(document_id="NCD 250.1", doc_type="NCD", title="t", version="1",
                        status="active")  # fmt: skip
    assert flatten(criteria) == ()
    from diffing.rules import rule_payer

    assert rule_payer(criteria) == NATIONAL


# -- as of, on SQLite and PostgreSQL -------------------------------------------------------------


def _publish_article(store: Store, version: int, bundle: bytes) -> dt.datetime:
    """Publish one Article version; returns a moment after it was published."""
    source = store.ensure_source("cms", "cms_coverage")
    run_id = store.start_run(source.id, baseline=version == 1)
    ctx = PublishContext(
        source_id=source.id,
        run_id=run_id,
        baseline=version == 1,
        today=dt.date(2026, 1, 1),
        extract=lambda raw: cms_criteria(raw.content),
        extractor_name="cms/1",
    )
    from diffing.model import RawDocument

    url = f"https://www.cms.gov/x?articleid=57520&ver={version}"
    raw = RawDocument(
        source="cms",
        key="A57520",
        url=url,
        content=bundle,
        content_type="application/json",
        fetched_at=utcnow(),
        source_version=str(version),
        doc_type="Article",
    )
    listed = ListedDocument(
        key="A57520",
        source_version=str(version),
        version_number=version,
        fingerprint=f"fp{version}",
        doc_type="Article",
        title="t",
        url=url,
        row={},
    )
    assert publish(store, ctx, raw, listed).version_id is not None
    time.sleep(0.01)  # distinct publication moments even at microsecond resolution
    moment = utcnow()
    time.sleep(0.01)
    return moment


@pytest.fixture
def three_versions(store: Store) -> dict[str, dt.datetime]:
    """v31 effective 2026-01-01 covers L82.0 and L82.1; v32 (effective 2026-03-01) drops L82.0;
    v33 (effective 2026-06-01, published ahead of time) covers it again."""
    both = ["L82.0", "L82.1"]
    return {
        "after_v31": _publish_article(store, 31, _article_bundle(31, "01/01/2026", both)),
        "after_v32": _publish_article(store, 32, _article_bundle(32, "03/01/2026", ["L82.1"])),
        "after_v33": _publish_article(store, 33, _article_bundle(33, "06/01/2026", both)),
    }


@pytest.mark.parametrize(
    "criteria",
    [
        cms_criteria(_article_bundle(31, "01/01/2026", ["L82.0", "L82.1"], retired="06/30/2026")),
        _payer_criteria(
            codes=frozenset(
                {
                    CodeRef(system=CodeSystem.ICD10, flag=CoverageFlag.COVERED, code="L20.9"),
                    CodeRef(system=CodeSystem.ICD10, flag=CoverageFlag.NONCOVERED, code="L20.8"),
                    CodeRef(system=CodeSystem.HCPCS, flag=CoverageFlag.COVERED, code="J3590"),
                    CodeRef(
                        system=CodeSystem.HCPCS_MODIFIER,
                        flag=CoverageFlag.COVERED,
                        code="JW",
                        description="drug wasted",
                    ),
                }
            )
        ),
        _payer_criteria(codes=frozenset(), effective_date=None),
    ],
    ids=["cms-article", "payer-codes-of-every-shape", "payer-no-codes"],
)
def test_rule_values_from_criteria_are_those_of_the_flattened_rows(
    store: Store, criteria: Criteria
) -> None:
    """The publishing path's tuples (codes without a RuleRow each) are flatten's, row by row."""
    ids = {
        "version_id": 7,
        "document_id": 5,
        "source_id": 3,
        "version_number": 31,
        "published_at": dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
    }
    with store.session() as txn:
        fast = rule_rows_of(criteria_rule_parts(txn, criteria, **ids))
        plain = rule_values(txn, flatten(criteria), **ids)
    assert fast == plain
    assert len(fast) == len(flatten(criteria)) > 0


def _versions(records: list[Any]) -> list[tuple[str, dt.date | None, dt.date | None]]:
    return [(r.version, r.effective_from, r.effective_to) for r in records]


def test_as_of_a_date_of_service(store: Store, three_versions: dict[str, dt.datetime]) -> None:
    def l820(on: dt.date) -> list[Any]:
        return query_rules(store, code="L82.0", as_of=on)

    assert _versions(l820(dt.date(2026, 2, 1))) == [
        ("31", dt.date(2026, 1, 1), dt.date(2026, 3, 1))
    ]
    assert l820(dt.date(2026, 4, 1)) == []  # v32 applies and does not cover it
    assert _versions(l820(dt.date(2026, 7, 1))) == [("33", dt.date(2026, 6, 1), None)]
    assert l820(dt.date(2025, 12, 31)) == []  # before any version took effect
    assert _versions(query_rules(store, code="l82.1", as_of=dt.date(2026, 4, 1))) == [
        ("32", dt.date(2026, 3, 1), dt.date(2026, 6, 1))
    ]
    record = l820(dt.date(2026, 2, 1))[0]
    assert (record.kind, record.code_group, record.document, record.source) == (
        "covered_code",
        1,
        "A57520",
        "cms",
    )
    assert record.payer == "Novitas Solutions, Inc." and record.text == "dx L82.0"
    # Without as_of: every version's rows, each with its derived span.
    assert _versions(query_rules(store, code="L82.0")) == [
        ("31", dt.date(2026, 1, 1), dt.date(2026, 3, 1)),
        ("33", dt.date(2026, 6, 1), None),
    ]


def test_as_known_at_a_moment(store: Store, three_versions: dict[str, dt.datetime]) -> None:
    july = dt.date(2026, 7, 1)
    # Before v33 was published we knew only v31 and v32: on 1 July v32 applies, no L82.0.
    assert query_rules(store, code="L82.0", as_of=july, known_at=three_versions["after_v32"]) == []
    # Before v32 was published, v31 applied with no end in sight.
    assert _versions(
        query_rules(store, code="L82.0", as_of=july, known_at=three_versions["after_v31"])
    ) == [("31", dt.date(2026, 1, 1), None)]
    # known_at alone: the rows of the versions known then.
    assert _versions(query_rules(store, code="L82.0", known_at=three_versions["after_v32"])) == [
        ("31", dt.date(2026, 1, 1), dt.date(2026, 3, 1))
    ]
    before_anything = three_versions["after_v31"] - dt.timedelta(days=1)
    assert query_rules(store, code="L82.0", known_at=before_anything) == []


def test_filters_and_cursor(store: Store, three_versions: dict[str, dt.datetime]) -> None:
    pairs = query_rules(store, kind="code_pair", document="A57520", as_of=dt.date(2026, 7, 1))
    assert sorted(r.code for r in pairs) == ["11200", "11201", "11300", "11301", "11302"]
    assert {r.version for r in pairs} == {"33"}
    assert query_rules(store, payer="novitas", code="L57.0", as_of=dt.date(2026, 7, 1))
    assert query_rules(store, payer="Palmetto", code="L57.0") == []
    every = query_rules(store, document="A57520", limit=1000)
    pages: list[Any] = []
    after = None
    while True:
        page = query_rules(store, document="A57520", after_id=after, limit=4)
        if not page:
            break
        pages.extend(page)
        after = page[-1].id
    # v31 and v33: 4 codes and 5 pairs each; v32: 3 codes and 5 pairs.
    assert [r.id for r in pages] == [r.id for r in every] and len(every) == 9 + 8 + 9


def test_retirement_ends_a_version(store: Store) -> None:
    _publish_article(store, 31, _article_bundle(31, "01/01/2026", ["L82.0"]))
    _publish_article(store, 32, _article_bundle(32, "01/01/2026", ["L82.0"], retired="05/01/2026"))
    assert _versions(query_rules(store, code="L82.0", as_of=dt.date(2026, 4, 30))) == [
        ("32", dt.date(2026, 1, 1), dt.date(2026, 5, 1))
    ]
    assert query_rules(store, code="L82.0", as_of=dt.date(2026, 5, 1)) == []


def test_rule_rows_are_immutable(store: Store, three_versions: dict[str, dt.datetime]) -> None:
    with pytest.raises(StoreError), store.session() as session:
        row = session.get_one(RuleRowModel, query_rules(store, code="L82.0")[0].id)
        row.text = "changed"
    for statement in ("UPDATE rule_rows SET text = 'x'", "DELETE FROM rule_rows"):
        with pytest.raises(StoreError), store.session() as session:
            session.execute(text(statement))
    assert query_rules(store, code="L82.0")[0].text == "dx L82.0"


# -- code pairs from the CMS fixture, through the CLI ---------------------------------------------


def test_code_pairs_from_the_cms_fixture_through_check(tmp_path: Path) -> None:
    database = tmp_path / "monitor.store.db"
    with CmsApiFixture(scenario="week1") as server:
        config = tmp_path / "monitor.toml"
        config.write_text(
            f'[database]\nurl = "sqlite:///{database}"\n\n[[sources]]\nname = "cms"\n'
            f'kind = "cms_coverage"\nbase_url = "{server.base_url}"\n'
        )
        assert main(["--config", str(config), "check"]) == 0
    store = Store.open(f"sqlite:///{database}")
    try:
        today = dt.date(2026, 11, 5)
        pairs = query_rules(store, code="11200", kind="code_pair", as_of=today)
        assert [(r.document, r.code_group) for r in pairs] == [("A57520", 1)]
        assert "11300-11313" in (pairs[0].evidence or "")
        # The ICD-10 codes of that group are the covered rows with the same group number.
        covered = query_rules(store, code="L82.0", kind="covered_code", as_of=today)
        assert [(r.document, r.code_group) for r in covered] == [("A57520", 1)]
        # The Mohs Article's group supports 17311-17315; skin substitutes name no CPT codes.
        mohs = query_rules(store, document="A57598", kind="code_pair", as_of=today)
        assert sorted(r.code for r in mohs) == ["17311", "17312", "17313", "17314", "17315"]
        assert query_rules(store, document="A54117", kind="code_pair") == []
    finally:
        store.close()


def test_the_fast_json_of_a_rule_is_what_the_documented_model_renders(
    store: Store, three_versions: dict[str, dt.datetime]
) -> None:
    """`GET /rules` writes the driver's rows without a record or a model; the JSON must be
    what the documented model renders from the record, on SQLite and PostgreSQL alike."""
    from monitor.api.rules import RuleOut
    from monitor.store.rules import _record, query_rule_rows, rule_row_json

    for as_of in (None, dt.date(2026, 4, 1)):
        rows = query_rule_rows(store, limit=500, as_of=as_of)
        assert rows
        for row in rows:
            documented = RuleOut.model_validate(_record(row)).model_dump(mode="json")
            assert rule_row_json(row) == documented
