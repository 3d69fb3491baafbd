"""Cross-payer compare: two payers' policies for one drug, published through the real publisher,
compared through the CLI and the API (JSON and HTML) on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import PAYER_KEY, PolicySpec, finish_run, payer_document, policy_text, serving

from diffing.payer import payer_criteria
from monitor.cli.main import main
from monitor.pipeline.publish import PublishContext, publish
from monitor.store.core import Store

PAYERS = {  # source -> (payer, step-therapy weeks, initial approval months)
    "acme": ("Acme Health", 8, 6),
    "beta": ("Beta Care", 12, 4),
}


def _publish(store: Store, source: str, payer: str, spec: PolicySpec) -> None:
    raw, listed = payer_document(PAYER_KEY, policy_text(spec, drug="Dupixent", generic="dupilumab"))
    raw = dataclasses.replace(raw, source=source, source_meta=(("payer", payer),))
    row = store.ensure_source(source, "payer_policies")
    ctx = PublishContext(
        source_id=row.id,
        run_id=store.start_run(row.id, baseline=True),
        baseline=True,
        today=dt.date(2026, 1, 15),
        extract=payer_criteria,
        extractor_name="payer/1",
    )
    publish(store, ctx, raw, listed)
    finish_run(store, ctx)


@pytest.fixture
def two_payers(migrated_database_url: str) -> Iterator[Store]:
    store = Store.open(migrated_database_url)
    try:
        for source, (payer, weeks, months) in PAYERS.items():
            _publish(store, source, payer, PolicySpec(weeks=weeks, months=months))
        yield store
    finally:
        store.close()


def _by_payer(data: dict[str, object]) -> dict[str, dict[str, object]]:
    return {row["payer"]: row for row in data["rows"]}  # type: ignore[index,union-attr]


def test_compare_cli_marks_the_strictest_payer(
    two_payers: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(f'[database]\nurl = "{two_payers.engine.url.render_as_string(False)}"\n')
    assert (
        main(["--config", str(config), "compare", "--drug", "dupilumab", "--format", "json"]) == 0
    )
    rows = _by_payer(json.loads(capsys.readouterr().out))
    assert set(rows) == {"Acme Health", "Beta Care"}
    acme, beta = rows["Acme Health"], rows["Beta Care"]
    step = "step_therapy: topical corticosteroid"
    assert acme["columns"][step][0]["text"] == "topical corticosteroid for 8 weeks"
    assert beta["columns"][step][0]["text"] == "topical corticosteroid for 12 weeks"
    assert beta["columns"][step][0]["strictest"] and not acme["columns"][step][0]["strictest"]
    initial = "approval_period: initial"
    assert beta["columns"][initial][0]["text"] == "4 months"  # shorter approval: stricter
    assert initial in beta["strictest"] and initial not in acme["strictest"]
    assert acme["document"] == PAYER_KEY and acme["version"]

    assert main(["--config", str(config), "compare", "--drug", "dupilumab",
                 "--criterion", "step_therapy"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "topical corticosteroid for 12 weeks *" in out
    assert "approval period" not in out
    assert main(["--config", str(config), "compare", "--drug", "nosuchdrug"]) == 1


def test_compare_api_json_and_html(two_payers: Store) -> None:
    with serving(two_payers) as api, api.client() as client:
        answer = client.get("/compare", params={"drug": "dupilumab", "as_of": "2026-02-01"})
        assert answer.status_code == 200
        rows = _by_payer(answer.json())
        assert "step_therapy: topical corticosteroid" in rows["Beta Care"]["strictest"]
        only = client.get("/compare", params={"drug": "dupilumab", "criterion": "step_therapy"})
        assert all(
            name.startswith("step_therapy")
            for row in only.json()["rows"]
            for name in row["columns"]
        )
        page = client.get("/compare", params={"drug": "dupilumab", "format": "html"})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert 'class="strictest"' in page.text and "Beta Care" in page.text
        hostile = client.get("/compare", params={"drug": "<script>x</script>", "format": "html"})
        assert "<script>x" not in hostile.text and "&lt;script&gt;" in hostile.text
        assert api.client(scope=None).get("/compare", params={"drug": "x"}).status_code == 401


def test_age_limits_keep_the_policys_unit_and_rank_in_years() -> None:
    import dataclasses

    from monitor.api.compare import _cell
    from monitor.store.rules import RuleRecord

    defaults: dict[str, object] = {
        f.name: None for f in dataclasses.fields(RuleRecord) if f.name not in ("id", "kind")
    }
    base = RuleRecord(id=1, kind="age_limit", **defaults)  # type: ignore[arg-type]
    months = dataclasses.replace(base, op=">=", value=6.0, unit="months", text="age >= 6 months")
    years = dataclasses.replace(base, op=">=", value=1.0, unit="years", text="age >= 1 years")
    cell_months = _cell(months)
    cell_years = _cell(years)
    assert cell_months is not None and cell_years is not None
    assert cell_months[1].text == ">= 6 months"
    assert cell_years[1].text == ">= 1 years"
    # A floor of 1 year is stricter than one of 6 months.
    assert cell_years[1].rank > cell_months[1].rank
