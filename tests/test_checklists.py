"""PA checklists: built and diffed from criteria (pure), then end to end from the fixture payer
site's Dupixent week 1 -> week 2 change (8 -> 12 weeks) through `policy-monitor check`: the
feed change, as-of and known-at answers, versions, diff, Markdown/HTML, and the HTTP routes
(uvicorn on 127.0.0.1)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from diffing.checklist import (
    build_checklists,
    checklist_feed_changes,
    checklist_from_dict,
    checklist_to_dict,
    diff_checklists,
)
from diffing.model import (
    ApprovalPeriod,
    CodeRef,
    CodeSystem,
    CoverageFlag,
    Criteria,
    Evidence,
    PriorAuth,
    Severity,
    StepTherapy,
    Threshold,
)
from fixtures.payer_site import AETNA_INDEX_PATH, UHC_INDEX_PATH, PayerSiteFixture
from fixtures.payer_site.uhc_dupixent import URL_PATH as DUPIXENT
from monitor.api.app import create_app
from monitor.api.auth import create_api_key
from monitor.api.server import ApiServer
from monitor.cli.main import main
from monitor.config import parse_config
from monitor.report import render_checklist
from monitor.store.checklists import (
    checklist_versions,
    diff_checklist_versions,
    find_checklists,
    get_checklist,
)
from monitor.store.core import Store, utcnow
from monitor.store.rules import query_rules


def _criteria(weeks: int = 8, bsa: float = 10, **overrides: Any) -> Criteria:
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
                min_duration_days=weeks * 7,
                evidence=Evidence(sentence=f"TCS for at least {weeks} weeks.", page=1),
            ),
        ),
        prior_auth=(PriorAuth(required=True, drug="dupilumab"),),
        approval_periods=(
            ApprovalPeriod(phase="initial", days=183, drug="dupilumab"),
            ApprovalPeriod(phase="reauthorization", days=365, drug="dupilumab"),
        ),
        thresholds=(
            Threshold(measure="BSA", op=">=", value=bsa, unit="%", indication="atopic dermatitis"),
        ),
        prescriber_specialties=("dermatologist",),
    )
    fields.update(overrides)
    return Criteria(**fields)


# -- pure -------------------------------------------------------------------------------------


def test_a_checklist_lists_what_a_request_must_document_in_order() -> None:
    (checklist,) = build_checklists(_criteria())
    assert (checklist.heading, checklist.subject, checklist.prior_auth_required) == (
        "Dupixent / Acme Health",
        "dupilumab",
        True,
    )
    assert [item.category for item in checklist.items] == [
        "diagnosis",
        "step_therapy",
        "threshold",
        "prescriber",
        "approval",
        "renewal",
    ]
    assert checklist.items[0].text == "Diagnosis of atopic dermatitis (ICD-10: L20.9)"
    assert checklist.items[1].requirement == "8 weeks"
    assert "documentation of positive clinical response" in checklist.items[5].text
    assert checklist_from_dict(json.loads(json.dumps(checklist_to_dict(checklist)))) == checklist


def test_cms_documents_have_no_checklist() -> None:
    cms = _criteria(payer=None, contractors=("Novitas Solutions, Inc.",))
    assert build_checklists(cms) == ()


def test_a_longer_trial_is_a_stricter_item() -> None:
    (old,) = build_checklists(_criteria(weeks=8))
    (new,) = build_checklists(_criteria(weeks=12))
    (change,) = diff_checklists(old, new)
    assert change.summary == "Dupixent / Acme Health: item 2 now requires 12 weeks (was 8 weeks)"
    assert (change.action, change.position, change.stricter) == ("changed", 2, True)
    (feed,) = checklist_feed_changes(old, new, effective_date=dt.date(2026, 3, 1))
    assert (feed.kind.value, feed.field, feed.severity) == (
        "checklist_changed",
        "dupilumab",
        Severity.HIGH,
    )
    # The other way round is looser: medium.
    (back,) = checklist_feed_changes(new, old, effective_date=None)
    assert back.severity is Severity.MEDIUM
    assert diff_checklists(old, old) == ()


def test_threshold_and_item_added_or_removed() -> None:
    (old,) = build_checklists(_criteria(bsa=10))
    (looser,) = build_checklists(_criteria(bsa=5))
    (change,) = diff_checklists(old, looser)
    assert change.stricter is False and "BSA >= 5%" in change.summary
    (fewer,) = build_checklists(_criteria(prescriber_specialties=()))
    (removed,) = diff_checklists(old, fewer)
    assert removed.action == "removed" and "no longer required" in removed.summary
    (added,) = diff_checklists(fewer, old)
    assert added.action == "added" and added.position == 4
    # A checklist seen first gives no feed change; one that disappears gives exactly one.
    assert checklist_feed_changes(None, old, effective_date=None) == ()
    (gone,) = checklist_feed_changes(old, None, effective_date=None)
    assert "withdrawn" in (gone.evidence or "")


def test_a_procedure_policy_gets_a_checklist_under_its_title() -> None:
    criteria = dataclasses.replace(
        _criteria(), title="Phototherapy for Skin Conditions", prior_auth=(), approval_periods=()
    )
    criteria = dataclasses.replace(
        criteria,
        step_therapy=tuple(dataclasses.replace(s, drug=None) for s in criteria.step_therapy),
        drugs=(),
    )
    (checklist,) = build_checklists(criteria)
    assert (checklist.subject_kind, checklist.label) == (
        "procedure",
        "Phototherapy for Skin Conditions",
    )


# -- end to end: the fixture payer site, week 1 -> week 2 ---------------------------------------


@dataclasses.dataclass(frozen=True)
class Published:
    store: Store
    between_weeks: dt.datetime


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    directory = tmp_path_factory.mktemp("checklists")
    database = directory / "monitor.store.db"
    with PayerSiteFixture(scenario="week1") as site:
        config = directory / "monitor.toml"
        config.write_text(f"""
[database]
url = "sqlite:///{database}"

[[sources]]
name = "acme"
kind = "payer_policies"
payer = "Acme Health"
start_urls = ["{site.base_url}{UHC_INDEX_PATH}", "{site.base_url}{AETNA_INDEX_PATH}"]
allow = ["/policies/drug/", "/cpb/medical/data/"]
download_delay_seconds = 0.0
max_retries = 1
""")
        assert main(["--config", str(config), "check"]) == 0
        between = utcnow()
        site.set_scenario("week2")
        assert main(["--config", str(config), "check"]) == 0
    store = Store.open(f"sqlite:///{database}")
    yield Published(store=store, between_weeks=between)
    store.close()


def _dupixent(store: Store, **kwargs: Any) -> Any:
    (record,) = find_checklists(store, drug="Dupixent", payer="acme", **kwargs)
    return record


def test_the_week2_change_is_in_the_feed_as_a_checklist_change(published: Published) -> None:
    changes = [c for c in published.store.changes() if c.kind == "checklist_changed"]
    dupixent = [c for c in changes if c.document_id == DUPIXENT]
    assert [c.evidence for c in dupixent] == [
        "Dupixent / Acme Health: item 4 now requires 12 weeks (was 8 weeks)"
    ]
    (change,) = dupixent
    assert change.severity == "high" and change.effective_date == dt.date(2026, 3, 1)
    assert "8 weeks" in (change.before or "") and "12 weeks" in (change.after or "")
    # The re-printed Skyrizi PDF changed no criteria, so its checklist did not change either.
    assert not [c for c in changes if "skyrizi" in c.document_id]


def test_checklists_current_as_of_and_known_at(published: Published) -> None:
    store = published.store
    current = _dupixent(store)
    assert current.version.number == 2 and current.checklist.items[3].requirement == "12 weeks"
    # Week 2's version takes effect on 1 March 2026: before that, week 1's checklist applies.
    assert _dupixent(store, as_of=dt.date(2026, 2, 1)).version.number == 1
    assert _dupixent(store, as_of=dt.date(2026, 3, 1)).version.number == 2
    assert _dupixent(store, known_at=published.between_weeks).version.number == 1
    assert find_checklists(store, drug="dupixent", as_of=dt.date(2025, 1, 1)) == []
    versions = checklist_versions(store, current.id)
    assert [(v.number, v.effective_date) for v in versions] == [
        (1, dt.date(2026, 1, 1)),
        (2, dt.date(2026, 3, 1)),
    ]
    diff = diff_checklist_versions(store, current.id, 1, 2)
    assert [c.summary for c in diff.changes] == [
        "Dupixent / Acme Health: item 4 now requires 12 weeks (was 8 weeks)"
    ]
    assert get_checklist(store, current.id, number=1).checklist.items[3].requirement == "8 weeks"


def test_rules_of_the_payer_policy(published: Published) -> None:
    steps = query_rules(
        published.store, drug="dupilumab", kind="step_therapy", as_of=dt.date(2026, 3, 1)
    )
    assert {(r.subject, r.indication, r.days) for r in steps} >= {
        ("topical corticosteroid", "atopic dermatitis", 84)
    }
    before = query_rules(
        published.store, drug="dupilumab", kind="step_therapy", as_of=dt.date(2026, 2, 1)
    )
    assert ("topical corticosteroid", "atopic dermatitis", 56) in {
        (r.subject, r.indication, r.days) for r in before
    }
    assert all(r.payer == "Acme Health" and r.document == DUPIXENT for r in steps + before)
    assert all(r.evidence for r in steps)  # fmt: skip


def test_markdown_and_html(published: Published) -> None:
    record = _dupixent(published.store)
    markdown = render_checklist(record, "markdown")
    assert markdown.startswith("# PA checklist: Dupixent / Acme Health")
    assert (
        "4. Trial of medium-, high-, or super-high-potency topical corticosteroid for at least "
        "12 weeks (atopic dermatitis, initial)"
    ) in markdown
    assert "BSA >= 10%" in markdown
    html = render_checklist(record, "html")
    assert "<h1>PA checklist: Dupixent / Acme Health</h1>" in html
    assert "BSA &gt;= 10%" in html and "BSA >= 10%" not in html  # escaped


def test_http_routes(published: Published) -> None:
    store = published.store
    app = create_app(store, parse_config({}))
    key = create_api_key(store, "checklist-test", "read")
    with (
        ApiServer(app) as server,
        httpx.Client(base_url=server.url, timeout=30) as anonymous,
        httpx.Client(
            base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {key}"}
        ) as client,
    ):
        assert anonymous.get("/rules", params={"code": "L20.9"}).status_code == 401
        assert anonymous.get("/checklists").status_code == 401
        rules = client.get("/rules", params={"code": "L20.9", "as_of": "2026-03-01"})
        assert rules.status_code == 200
        body = rules.json()
        assert {r["document"] for r in body["items"]} >= {DUPIXENT}
        assert all(r["kind"] == "covered_code" for r in body["items"])
        first = client.get("/rules", params={"drug": "dupilumab", "limit": 2}).json()
        assert len(first["items"]) == 2 and first["next"] == first["items"][-1]["id"]
        second = client.get(
            "/rules", params={"drug": "dupilumab", "limit": 2, "after": first["next"]}
        ).json()
        assert second["items"][0]["id"] > first["next"]
        assert client.get("/rules", params={"as_of": "not-a-date"}).status_code == 422

        listed = client.get("/checklists", params={"drug": "dupixent", "as_of": "2026-02-01"})
        (item,) = listed.json()["items"]
        assert item["version"]["number"] == 1 and item["items"][3]["requirement"] == "8 weeks"
        checklist_id = item["id"]
        current = client.get(f"/checklists/{checklist_id}").json()
        assert current["label"] == "Dupixent" and current["items"][1]["number"] == 2
        markdown = client.get(f"/checklists/{checklist_id}", params={"format": "markdown"})
        assert markdown.headers["content-type"].startswith("text/markdown")
        assert "12 weeks" in markdown.text
        html = client.get(f"/checklists/{checklist_id}", params={"format": "html"})
        assert html.headers["content-type"].startswith("text/html") and "<ol>" in html.text
        versions = client.get(f"/checklists/{checklist_id}/versions").json()
        assert [v["number"] for v in versions["versions"]] == [1, 2]
        diff = client.get(f"/checklists/{checklist_id}/diff", params={"from": 1, "to": 2}).json()
        assert [c["summary"] for c in diff["changes"]] == [
            "Dupixent / Acme Health: item 4 now requires 12 weeks (was 8 weeks)"
        ]
        assert client.get("/checklists/999999").status_code == 404
        assert client.get("/checklists/999999/versions").status_code == 404
        schema = client.get("/openapi.json").json()
        assert "/checklists/{checklist_id}/diff" in schema["paths"]
        assert "RuleOut" in schema["components"]["schemas"]


def test_a_checklist_change_has_the_severity_of_its_criterion_change() -> None:
    """Issue 15: the Tremfya approval 6 -> 4 months is medium as a criterion change, so its
    checklist change is medium too (it was high: "a shorter approval is stricter")."""
    from diffing.checklist import Checklist, ChecklistItem

    def checklist(days: int, shown: str) -> Checklist:
        item = ChecklistItem(
            key="approval|plaque psoriasis",
            category="approval",
            text=f"Initial authorization (plaque psoriasis) lasts up to {shown}",
            requirement=shown,
            indication="plaque psoriasis",
            days=days,
            branch="initial",
        )
        return Checklist(
            payer="Acme Health",
            subject="guselkumab",
            subject_kind="drug",
            label="Tremfya",
            document="/tremfya.pdf",
            title="Tremfya",
            version=None,
            effective_date=None,
            prior_auth_required=True,
            items=(item,),
        )

    (change,) = checklist_feed_changes(
        checklist(183, "6 months"), checklist(122, "4 months"), effective_date=None
    )
    assert change.severity.value == "medium"
    assert "4 months" in (change.evidence or "") and "6 months" in (change.evidence or "")
