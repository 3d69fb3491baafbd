"""Coverage answers in CRD's shape (issue 19, point 2): `GET /coverage` (JSON and
`format=crd`) and `policy-monitor coverage` on SQLite and PostgreSQL, each CRD extension
validated through `fhir.resources` (R4B) and against CRD's invariants."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import THREE_VERSIONS, publish_versions, serving
from fhir.resources.R4B.extension import Extension

from monitor.cli.main import main
from monitor.config import parse_config
from monitor.fhir import CRD_COVERAGE_INFORMATION
from monitor.store.core import Store

PUBLIC = "https://monitor.example.org"


@pytest.fixture
def published(migrated_database_url: str) -> Iterator[Store]:
    store = Store.open(migrated_database_url)
    publish_versions(store, THREE_VERSIONS[:2])  # the trial goes 8 -> 12 weeks on 1 March
    yield store
    store.close()


def _crd_checked(extension: dict[str, Any]) -> dict[str, Any]:
    """One coverage-information extension: valid FHIR, and CRD's invariants q1-q3 hold."""
    Extension.model_validate(extension)
    assert extension["url"] == CRD_COVERAGE_INFORMATION
    parts = {p["url"]: p for p in extension["extension"]}
    assert parts["covered"]["valueCode"] in {"covered", "not-covered", "conditional"}
    if "questionnaire" in parts:
        assert "doc-needed" in parts  # crd-ci-q1
    if parts["covered"]["valueCode"] == "not-covered":
        assert "pa-needed" not in parts  # crd-ci-q2
    conditional = any(
        parts.get(name, {}).get("valueCode") == "conditional"
        for name in ("covered", "pa-needed", "doc-needed")
    )
    assert conditional == ("info-needed" in parts)  # crd-ci-q3
    assert {"date", "coverage-assertion-id", "reason"} <= set(parts)
    return parts


def test_api_coverage_json_crd_and_errors(published: Store) -> None:
    config = parse_config({"api": {"public_url": PUBLIC}})
    with serving(published, config=config) as harness, harness.client() as client:
        asked = {"payer": "acme", "drug": "Zentrava", "as_of": "2026-03-01"}
        response = client.get("/coverage", params=asked)
        assert response.status_code == 200
        body = response.json()
        assert body["as_of"] == "2026-03-01" and body["items"]
        steps = [a for a in body["items"] if a["kind"] == "step_therapy"]
        assert steps and steps[0]["days"] == 84  # 12 weeks from 1 March
        assert all(a["payer"] == "Acme Health" for a in body["items"])
        assert all(a["document_url"].startswith("https://payer.example/") for a in body["items"])
        assert {a["covered"] for a in body["items"]} == {"conditional"}
        assert {a["pa_needed"] for a in body["items"]} == {"auth-needed"}
        (checklist,) = harness.client().get("/checklists").json()["items"]
        canonical = f"{PUBLIC}/fhir/Questionnaire/checklist-{checklist['id']}|2"
        assert {a["questionnaire"] for a in body["items"]} == {canonical}
        before = client.get("/coverage", params={**asked, "as_of": "2026-02-01"}).json()
        assert [a["days"] for a in before["items"] if a["kind"] == "step_therapy"] == [56]
        assert {a["questionnaire"] for a in before["items"]} == {canonical[:-1] + "1"}
        # The generic name answers the same.
        generic = client.get("/coverage", params={**asked, "drug": "examplumab"}).json()
        assert generic["items"] == body["items"]

        crd = client.get("/coverage", params={**asked, "format": "crd"})
        assert crd.headers["content-type"].startswith("application/fhir+json")
        extensions = crd.json()["extension"]
        assert len(extensions) == len(body["items"])
        for extension in extensions:
            parts = _crd_checked(extension)
            assert parts["pa-needed"]["valueCode"] == "auth-needed"
            assert parts["doc-needed"]["valueCode"] == "clinical"
            assert parts["questionnaire"]["valueCanonical"] == canonical
            assert parts["date"]["valueDate"] == "2026-03-01"

        assert client.get("/coverage", params={"payer": "acme"}).status_code == 422
        assert client.get("/coverage", params={"drug": "Zentrava"}).status_code == 422
        both = {"payer": "acme", "drug": "Zentrava", "code": "J3590"}
        assert client.get("/coverage", params=both).status_code == 422
        bad_date = client.get("/coverage", params={**asked, "as_of": "March"})
        assert bad_date.status_code == 422
        assert client.get("/coverage", params={**asked, "format": "xml"}).status_code == 422
        missing = client.get("/coverage", params={**asked, "drug": "nothingumab"})
        assert missing.status_code == 404 and "nothingumab" in missing.json()["detail"]
        assert client.get("/coverage", params={**asked, "as_of": "2020-01-01"}).status_code == 404
        assert harness.client(None).get("/coverage", params=asked).status_code == 401


def test_cli_coverage_table_json_crd_and_nothing_found(
    published: Store, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[api]\npublic_url = "{PUBLIC}"\n')
    base = ["--config", str(config), "coverage", "--payer", "Acme", "--drug", "Zentrava"]
    assert main([*base, "--as-of", "2026-03-01"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:4] == ["code", "covered", "PA", "docs"]
    assert "conditional" in table and "auth-needed" in table
    assert f"{PUBLIC}/fhir/Questionnaire/checklist-" in table

    assert main([*base, "--as-of", "2026-03-01", "--format", "json"]) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [a["days"] for a in answers if a["kind"] == "step_therapy"] == [84]

    assert main([*base, "--as-of", "2026-03-01", "--format", "crd"]) == 0
    extensions = json.loads(capsys.readouterr().out)["extension"]
    assert len(extensions) == len(answers)
    for extension in extensions:
        _crd_checked(extension)

    assert main([*base[:-1], "nothingumab"]) == 1
    assert "No rules of payer Acme for drug nothingumab" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # neither --code nor --drug: argparse refuses
        main(["--config", str(config), "coverage", "--payer", "Acme"])
    assert exited.value.code == 2
