"""Rule rows carry the criteria tree's indication, branch and path (issue 14 point 3): the fixture
Dupixent policy published through the real publisher and payer extractor, then read back over
`GET /rules` on SQLite and PostgreSQL; and migration 0010 on a database made before it."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator

import pytest
from alembic import command
from api_support import serving
from sqlalchemy import inspect, text

from diffing.model import RawDocument
from diffing.payer import payer_criteria
from fixtures.payer_site.site import PayerSite, body
from fixtures.payer_site.uhc_dupixent import URL_PATH as DUPIXENT
from monitor.pipeline.publish import PublishContext, publish
from monitor.report import describe, grouped_report, kind_label
from monitor.store.core import ChangeRecord, RunCounts, Store
from monitor.store.db import _alembic_config, make_engine
from monitor.store.rules import query_rules
from sources.base import ListedDocument


def _publish_dupixent(store: Store) -> None:
    resource = PayerSite().lookup("week1", DUPIXENT)
    assert resource is not None
    content = body(resource).data
    url = f"https://payer.example{DUPIXENT}"
    raw = RawDocument(
        source="acme",
        key=DUPIXENT,
        url=url,
        content=content,
        content_type=resource.content_type,
        fetched_at=dt.datetime.now(dt.UTC),
        doc_type="policy",
        title="Dupixent",
        source_meta=(("payer", "Acme Health"),),
    )
    listed = ListedDocument(
        key=DUPIXENT,
        source_version="",
        version_number=None,
        fingerprint=hashlib.sha256(content).hexdigest(),
        doc_type="policy",
        title="Dupixent",
        url=url,
    )
    source = store.ensure_source("acme", "payer_policies")
    run_id = store.start_run(source.id, baseline=True)
    ctx = PublishContext(
        source_id=source.id,
        run_id=run_id,
        baseline=True,
        today=dt.date(2026, 1, 15),
        extract=payer_criteria,
        extractor_name="payer/1",
    )
    assert publish(store, ctx, raw, listed).version_id is not None
    store.finish_run(run_id, outcome="success", counts=RunCounts(), complete_baseline=True)


@pytest.fixture
def store(migrated_database_url: str) -> Iterator[Store]:
    opened = Store.open(migrated_database_url)
    _publish_dupixent(opened)
    yield opened
    opened.close()


def test_rule_rows_name_their_indication_branch_and_place_in_the_tree(store: Store) -> None:
    with serving(store) as api, api.client() as client:
        response = client.get("/rules", params={"document": DUPIXENT, "limit": 1000})
        assert response.status_code == 200
        rows = response.json()["items"]
    by_path = {row["tree_path"]: row for row in rows if row["tree_path"]}
    bsa = by_path["atopic dermatitis/initial/all[2]/any[1]"]
    assert (bsa["kind"], bsa["indication"], bsa["branch"]) == (
        "threshold",
        "atopic dermatitis",
        "initial",
    )
    assert by_path["prurigo nodularis/continuation"]["kind"] == "approval_period"
    # Codes sit outside the tree: no branch, no path.
    codes = [row for row in rows if row["kind"] == "covered_code"]
    assert codes and all(row["branch"] is None and row["tree_path"] is None for row in codes)


def test_rules_filter_by_branch_and_accept_the_exclusion_kind(store: Store) -> None:
    with serving(store) as api, api.client() as client:
        continuation = client.get("/rules", params={"branch": "continuation"}).json()["items"]
        exclusions = client.get("/rules", params={"kind": "exclusion"}).json()["items"]
        as_of = client.get(
            "/rules", params={"kind": "exclusion", "branch": "initial", "as_of": "2026-06-01"}
        ).json()["items"]
    assert continuation and {row["branch"] for row in continuation} == {"continuation"}
    assert {row["kind"] for row in continuation} >= {"approval_period", "exclusion"}
    assert {(row["indication"], row["branch"]) for row in exclusions} == {
        ("atopic dermatitis", "initial"),
        ("atopic dermatitis", "continuation"),
    }
    assert all(row["text"].startswith("Must not be receiving") for row in exclusions)
    assert [row["tree_path"] for row in as_of] == ["atopic dermatitis/initial/all[5]"]
    # The store's record path agrees with the fast JSON path.
    records = query_rules(store, kind="exclusion", branch="Initial ")
    assert [(r.branch, r.tree_path) for r in records] == [
        ("initial", "atopic dermatitis/initial/all[5]")
    ]


def test_migration_0010_adds_nullable_columns_and_keeps_rule_rows_immutable(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    try:
        config = _alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0009")
        assert "branch" not in {c["name"] for c in inspect(engine).get_columns("rule_rows")}
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        columns = {c["name"]: c for c in inspect(engine).get_columns("rule_rows")}
        assert columns["branch"]["nullable"] and columns["tree_path"]["nullable"]
    finally:
        engine.dispose()
    store = Store.open(database_url)
    try:
        _publish_dupixent(store)
        with pytest.raises(Exception, match="immutable"), store.engine.begin() as connection:
            connection.execute(text("UPDATE rule_rows SET branch = 'x'"))
    finally:
        store.close()


# -- report wording of the tree's and tables' change kinds ---------------------------------------


def _change(change_id: int, kind: str, severity: str, **fields: str | None) -> ChangeRecord:
    values: dict[str, str | None] = {"field": None, "before": None, "after": None}
    values.update(fields)
    return ChangeRecord(
        id=change_id,
        source="acme",
        document_id=DUPIXENT,
        title="Dupixent",
        kind=kind,
        severity=severity,
        effective_date=dt.date(2026, 3, 1),
        detected_at=dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
        url=f"https://payer.example{DUPIXENT}",
        version="2",
        previous_version="1",
        evidence=values["after"] or values["before"],
        baseline=False,
        **values,
    )


def test_criterion_and_table_row_changes_read_as_people_say_them() -> None:
    assert kind_label("criterion_added") == "new criterion"
    assert kind_label("criterion_removed") == "criterion removed"
    assert kind_label("criterion_changed") == "criterion changed"
    assert kind_label("table_row_added") == "row added to the list"
    assert kind_label("table_row_removed") == "row removed from the list"
    assert kind_label("table_row_changed") == "row of the list changed"
    moved = _change(
        1,
        "criterion_added",
        "high",
        field="atopic dermatitis, continuation",
        after="Must not be receiving Xolair",
    )
    assert describe(moved) == (
        "new criterion (atopic dermatitis, continuation): + Must not be receiving Xolair"
    )


def test_unverified_claims_are_listed_apart_in_the_grouped_report() -> None:
    real = _change(1, "criterion_changed", "high", field="atopic dermatitis, initial",
                   before="BSA >= 10%", after="BSA >= 20%")  # fmt: skip
    claim = _change(2, "code_removed", "unverified", field="hcpcs", before="J3590")
    report = grouped_report([real, claim], title="Changes")
    main, apart = report.split("Unverified - ")
    assert "1 changes in 1 documents (1 high)" in main
    assert "J3590" not in main and "HIGH    criterion changed" in main
    assert apart.startswith("1 claim(s) the two versions' texts contradict")
    assert "code removed (CPT/HCPCS): J3590" in apart
    only = grouped_report([claim], title="Changes")
    assert only.startswith("Changes\n\nNo changes.\n") and "Unverified - 1 claim(s)" in only
