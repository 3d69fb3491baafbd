"""PA checklists as FHIR R4 Questionnaires (issue 19, point 1): built from checklists and
validated by parsing back through `fhir.resources` (R4B); every checklist version the fixture
payer site produces; `policy-monitor checklists --format fhir` and
`GET /checklists/{id}?format=fhir` on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import THREE_VERSIONS, Harness, publish_versions, serving
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.questionnaire import Questionnaire

from diffing.checklist import build_checklists
from diffing.model import (
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
from fixtures.payer_site import AETNA_INDEX_PATH, UHC_INDEX_PATH, PayerSiteFixture
from monitor.cli.main import main
from monitor.config import load_config, parse_config
from monitor.fhir import (
    CPT,
    HCPCS,
    ICD10_CM,
    MIN_VALUE,
    QuestionnaireStatus,
    checklist_questionnaire,
    code_system_uri,
    questionnaire_for,
)
from monitor.store.checklists import (
    ChecklistRecord,
    ChecklistVersionRecord,
    checklist_versions,
    find_checklists,
    get_checklist,
)
from monitor.store.core import Store

PUBLIC = "https://monitor.example.org"
ITEM_TYPES = {"group", "display", "boolean", "decimal", "integer", "choice", "string"}


def _record(criteria: Criteria, number: int = 1) -> ChecklistRecord:
    (checklist,) = build_checklists(criteria)
    return ChecklistRecord(
        id=7,
        source="acme",
        url="https://payer.example/dupixent.pdf",
        version=ChecklistVersionRecord(
            checklist_id=7,
            number=number,
            version_id=11,
            document_version="2026-01",
            effective_date=criteria.effective_date,
            published_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
            removed=False,
            items=len(checklist.items),
            sha256="0" * 64,
        ),
        checklist=checklist,
    )


def _criteria() -> Criteria:
    return Criteria(
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
                evidence=Evidence(sentence="TCS for at least 8 weeks.", page=3),
            ),
        ),
        prior_auth=(PriorAuth(required=True, drug="dupilumab"),),
        approval_periods=(ApprovalPeriod(phase="initial", days=183, drug="dupilumab"),),
        thresholds=(
            Threshold(
                measure="BSA",
                op=">=",
                value=10,
                unit="%",
                indication="atopic dermatitis",
                evidence=Evidence(sentence="BSA of at least 10%.", page=2),
            ),
        ),
    )


def _walk(items: list[Any]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from _walk(item.get("item", []))


def _valid(body: dict[str, Any]) -> Questionnaire:
    """Parse the JSON back through fhir.resources, and check what its models do not: codes from
    the required value sets, unique linkIds, groups with children, display items unanswered."""
    parsed = Questionnaire.model_validate(body)
    assert body["status"] in {"draft", "active", "retired", "unknown"}
    items = list(_walk(body["item"]))
    assert len({i["linkId"] for i in items}) == len(items)
    for item in items:
        assert item["type"] in ITEM_TYPES
        assert (item["type"] == "group") == bool(item.get("item")), item["linkId"]
        if item["type"] == "display":
            assert "required" not in item and "answerOption" not in item
        if "answerOption" in item:
            assert item["type"] == "choice"
    return parsed


def test_a_checklist_becomes_a_questionnaire_with_typed_items() -> None:
    record = _record(_criteria())
    questionnaire = checklist_questionnaire(record, public_url=PUBLIC)
    body = json.loads(questionnaire.model_dump_json(exclude_none=True))
    _valid(body)
    assert body["url"] == f"{PUBLIC}/fhir/Questionnaire/checklist-7"
    assert body["version"] == "1" and body["status"] == "active"
    assert body["publisher"] == "Acme Health"
    assert body["effectivePeriod"] == {"start": "2026-01-01"}
    contexts = [c["valueCodeableConcept"] for c in body["useContext"]]
    assert contexts[0]["text"] == "dupilumab (Dupixent)"
    assert {"system": ICD10_CM, "code": "L20.9"} in contexts[1]["coding"]
    items = {i["linkId"]: i for i in _walk(body["item"])}
    diagnosis = items["item-1"]
    assert diagnosis["type"] == "choice"
    assert diagnosis["answerOption"] == [{"valueCoding": {"system": ICD10_CM, "code": "L20.9"}}]
    step = next(i for i in items.values() if "topical corticosteroid" in i.get("text", ""))
    assert step["type"] == "integer"
    assert {"url": MIN_VALUE, "valueInteger": 56} in step["extension"]
    evidence = next(e for e in step["extension"] if e["url"].endswith("/evidence"))
    assert {"url": "page", "valueInteger": 3} in evidence["extension"]
    bsa = next(i for i in items.values() if "BSA" in i.get("text", ""))
    assert bsa["type"] == "integer" and {"url": MIN_VALUE, "valueInteger": 10} in bsa["extension"]
    limit = next(e for e in bsa["extension"] if e["url"].endswith("/criterion-limit"))
    assert limit["extension"][0] == {"url": "comparator", "valueCode": ">="}
    approval = next(i for i in items.values() if "Initial authorization" in i.get("text", ""))
    assert approval["type"] == "display"
    # Indications and branches are nested groups.
    groups = [i for i in body["item"] if i["type"] == "group"]
    assert groups and groups[0]["text"] == "atopic dermatitis"


def test_a_superseded_version_is_retired_with_an_end_date() -> None:
    questionnaire = checklist_questionnaire(
        _record(_criteria()),
        public_url=PUBLIC,
        status=QuestionnaireStatus(retired=True, ends=dt.date(2026, 3, 1)),
        procedure_codes=[("hcpcs", "J3590"), ("hcpcs", "96372")],
    )
    body = json.loads(questionnaire.model_dump_json(exclude_none=True))
    _valid(body)
    assert body["status"] == "retired"
    assert body["effectivePeriod"] == {"start": "2026-01-01", "end": "2026-03-01"}
    codings = body["useContext"][1]["valueCodeableConcept"]["coding"]
    assert {"system": HCPCS, "code": "J3590"} in codings
    assert {"system": CPT, "code": "96372"} in codings


def test_code_systems() -> None:
    assert code_system_uri("icd10", "L20.9") == ICD10_CM
    assert code_system_uri("hcpcs", "99213") == CPT
    assert code_system_uri("hcpcs", "0001T") == CPT
    assert code_system_uri("hcpcs", "J3590") == HCPCS


# -- every checklist version of the fixture payer site ---------------------------------------


@pytest.fixture(scope="module")
def payer_site_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("fhir")
    database = directory / "monitor.store.db"
    config = directory / "monitor.toml"
    with PayerSiteFixture(scenario="week1") as site:
        config.write_text(f"""
[database]
url = "sqlite:///{database}"

[api]
public_url = "{PUBLIC}"

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
        site.set_scenario("week2")
        assert main(["--config", str(config), "check"]) == 0
    yield config


def _db(config: Path) -> str:
    return load_config(config).database.url


def test_every_fixture_checklist_version_validates_as_a_questionnaire(payer_site_db: Path) -> None:
    store = Store.open(_db(payer_site_db))
    try:
        records = find_checklists(store)
        assert len(records) >= 5
        seen = 0
        for current in records:
            for version in checklist_versions(store, current.id):
                if version.removed:
                    continue
                record = get_checklist(store, current.id, number=version.number)
                body = json.loads(
                    questionnaire_for(store, record, public_url=PUBLIC).model_dump_json(
                        exclude_none=True
                    )
                )
                _valid(body)
                seen += 1
                last = version.number == max(
                    v.number for v in checklist_versions(store, current.id)
                )
                assert body["status"] == ("active" if last else "retired")
        assert seen > len(records)  # Dupixent has two versions
    finally:
        store.close()


def test_cli_fhir_bundle_of_the_fixture_site(
    payer_site_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(payer_site_db), "checklists", "--format", "fhir"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection" and len(bundle["entry"]) >= 5
    for entry in bundle["entry"]:
        _valid(entry["resource"])
        assert entry["resource"]["url"].startswith(f"{PUBLIC}/fhir/Questionnaire/checklist-")
    dupixent = [e for e in bundle["entry"] if "Dupixent" in e["resource"]["title"]]
    (entry,) = dupixent
    texts = [i.get("text", "") for i in _walk(entry["resource"]["item"])]
    assert any("12 weeks" in t or "84" in t for t in texts) or any(
        e.get("valueInteger") == 84 for i in _walk(entry["resource"]["item"])
        for e in i.get("extension", [])
    )  # fmt: skip
    # As of February the week-1 version applies: its Questionnaire is version 1, since retired.
    assert main(["--config", str(payer_site_db), "checklists", "--format", "fhir",
                 "--drug", "Dupixent", "--as-of", "2026-02-01"]) == 0  # fmt: skip
    (old,) = json.loads(capsys.readouterr().out)["entry"]
    assert old["resource"]["version"] == "1" and old["resource"]["status"] == "retired"
    assert old["resource"]["effectivePeriod"] == {"start": "2026-01-01", "end": "2026-03-01"}


# -- SQLite and PostgreSQL: the CLI and the API ------------------------------------------------


@pytest.fixture
def published(migrated_database_url: str) -> Iterator[Store]:
    store = Store.open(migrated_database_url)
    publish_versions(store, THREE_VERSIONS[:2])
    yield store
    store.close()


def test_cli_fhir_format_on_both_databases(
    published: Store, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[api]\npublic_url = "{PUBLIC}"\n')
    assert main(["--config", str(config), "checklists", "--format", "fhir"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    Bundle.model_validate(bundle)
    (entry,) = bundle["entry"]
    body = entry["resource"]
    _valid(body)
    assert body["version"] == "2" and body["status"] == "active"
    assert body["publisher"] == "Acme Health"
    assert main(["--config", str(config), "checklists", "--format", "fhir", "--drug", "nope"]) == 1


def test_api_fhir_format_on_both_databases(published: Store) -> None:
    config = parse_config({"api": {"public_url": PUBLIC}})
    harness: Harness
    with serving(published, config=config) as harness, harness.client() as client:
        (item,) = client.get("/checklists").json()["items"]
        response = client.get(f"/checklists/{item['id']}", params={"format": "fhir"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/fhir+json")
        body = response.json()
        _valid(body)
        assert body["url"] == f"{PUBLIC}/fhir/Questionnaire/checklist-{item['id']}"
        assert body["version"] == "2" and body["status"] == "active"
        first = client.get(f"/checklists/{item['id']}", params={"format": "fhir", "version": 1})
        assert first.json()["status"] == "retired"
        assert first.json()["effectivePeriod"]["end"] == body["effectivePeriod"]["start"]
        assert client.get("/checklists/999999", params={"format": "fhir"}).status_code == 404
        assert client.get(f"/checklists/{item['id']}", params={"format": "xml"}).status_code == 422
