"""Tests of the CMS Coverage API fixture server (``fixtures.cms_api``) and its corpus."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures.cms_api import CmsApiFixture, Fault
from fixtures.cms_corpus import (
    NOISE_ONLY_DOCUMENTS,
    WEEK2_EXPECTED,
    ExpectedChange,
    build_corpus,
    full_scale_week2_changes,
)
from fixtures.cms_corpus.generated_content import GeneratedArticle, base_indexes
from fixtures.loopback import spawn_fixture

REPO = Path(__file__).resolve().parents[1]
LCD_REPORT = "/v1/reports/local-coverage-final-lcds"
ARTICLE_REPORT = "/v1/reports/local-coverage-articles"
NCD_REPORT = "/v1/reports/national-coverage-ncd"
LOCAL_FIELDS = {
    "document_id", "document_version", "document_display_id", "document_type", "note", "title",
    "contractor_name_type", "updated_on", "updated_on_sort", "effective_date", "retirement_date",
    "url",
}  # fmt: skip
NCD_FIELDS = {
    "document_id", "document_version", "document_display_id", "document_status", "last_updated",
    "last_updated_sort", "document_type", "title", "chapter", "is_lab", "url",
}  # fmt: skip
MDY = re.compile(r"^\d{2}/\d{2}/\d{4}$")
TABLE_ENDPOINT = {
    "hcpcs": ("hcpc-code", "hcpc_code_id"),
    "icd10_covered": ("icd10-covered", "icd10_code_id"),
    "icd10_noncovered": ("icd10-noncovered", "icd10_code_id"),
    "hcpcs_modifier": ("hcpc-modifier", "hcpc_modifier_code_id"),
}


@pytest.fixture
def api() -> Iterator[CmsApiFixture]:
    with CmsApiFixture(scenario="week1") as fixture:
        yield fixture


@pytest.fixture
def client(api: CmsApiFixture) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.base_url, timeout=10) as http:
        yield http


def bearer(client: httpx.Client) -> dict[str, str]:
    token = client.get("/v1/metadata/license-agreement").json()["data"][0]["Token"]
    return {"Authorization": f"Bearer {token}"}


def rows(client: httpx.Client, path: str, **kwargs: Any) -> list[dict[str, Any]]:
    response = client.get(path, **kwargs)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def plain_text(encoded: str) -> str:
    """Decode the API's (possibly double) entity encoding, drop tags, collapse whitespace."""
    text = html.unescape(html.unescape(encoded))
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(text.split())


# --- envelope and report shape ----------------------------------------------------------------


def test_reports_have_the_real_envelope_and_field_sets(client: httpx.Client) -> None:
    for path, fields in ((LCD_REPORT, LOCAL_FIELDS), (ARTICLE_REPORT, LOCAL_FIELDS)):
        body = client.get(path).json()
        assert body["meta"] == {
            "status": {"id": 200, "message": "OK"},
            "notes": "",
            "fields": body["meta"]["fields"],
            "children": [],
            "next_token": "",
        }
        assert set(body["meta"]["fields"]) == fields
        assert body["data"], path
        for row in body["data"]:
            assert set(row) == fields
            assert MDY.match(row["updated_on"]) and MDY.match(row["effective_date"])
            assert re.fullmatch(r"\d{14}", row["updated_on_sort"])
            assert row["retirement_date"] == "N/A" or MDY.match(row["retirement_date"])
            assert "\r\n(" in row["contractor_name_type"]
    ncd_rows = rows(client, NCD_REPORT)
    assert {row["document_display_id"] for row in ncd_rows} == {"270.1", "250.1", "270.3"}
    assert all(set(row) == NCD_FIELDS for row in ncd_rows)


def test_report_ids_are_integers_except_one_string_id_row(client: httpx.Client) -> None:
    articles = rows(client, ARTICLE_REPORT)
    string_rows = [row for row in articles if isinstance(row["document_id"], str)]
    assert [row["document_display_id"] for row in string_rows] == ["A57520"]
    assert string_rows[0]["document_id"] == "57520"
    others = [row for row in articles + rows(client, LCD_REPORT) if row not in string_rows]
    assert all(isinstance(row["document_id"], int) for row in others)
    assert all(isinstance(row["document_version"], int) for row in articles)


def test_multi_contractor_block_and_urls(client: httpx.Client) -> None:
    lcds = {row["document_display_id"]: row for row in rows(client, LCD_REPORT)}
    assert lcds["L33831"]["contractor_name_type"] == (
        "CGS Administrators, LLC\r\n(DME MAC)\r\n\r\n"
        "Noridian Healthcare Solutions, LLC\r\n(DME MAC)"
    )
    assert lcds["L33979"]["url"] == (
        "https://www.cms.gov/medicare-coverage-database/view/lcd.aspx?lcdid=33979&ver=12"
    )


def test_trailing_slash_is_tolerated(client: httpx.Client) -> None:
    headers = bearer(client)
    for path in (LCD_REPORT, NCD_REPORT, "/v1/data/article/icd10-covered?articleid=57520"):
        bare, _, query = path.partition("?")
        slashed = f"{bare}/?{query}" if query else f"{bare}/"
        first = client.get(path, headers=headers)
        second = client.get(slashed, headers=headers)
        assert first.status_code == second.status_code == 200
        assert first.content == second.content
    license_response = client.get("/v1/metadata/license-agreement/")
    assert set(license_response.json()["data"][0]) == {"Token"}


# --- tokens -----------------------------------------------------------------------------------


def test_lcd_and_article_data_need_a_bearer_token(api: CmsApiFixture, client: httpx.Client) -> None:
    for path in ("/v1/data/lcd?lcdid=33979", "/v1/data/article/hcpc-code?articleid=57520"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.json() == {"message": "Unauthorized", "code": 401}
        assert client.get(path, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    headers = bearer(client)
    assert rows(client, "/v1/data/lcd?lcdid=33979", headers=headers)[0]["lcd_id"] == 33979
    # NCD data and reports are anonymous.
    assert rows(client, "/v1/data/ncd?ncdid=131")[0]["document_display_id"] == "270.1"
    api.expire_tokens()
    assert client.get("/v1/data/lcd?lcdid=33979", headers=headers).status_code == 401
    assert client.get("/v1/data/lcd?lcdid=33979", headers=bearer(client)).status_code == 200


def test_tokens_expire_after_their_ttl() -> None:
    """On the fixture's clock, moved by hand: no window for a loaded machine to miss."""
    now = [1000.0]
    with (
        CmsApiFixture(token_ttl_seconds=3600.0, clock=lambda: now[0]) as api,
        httpx.Client(base_url=api.base_url) as client,
    ):
        headers = bearer(client)
        assert client.get("/v1/data/article?articleid=57520", headers=headers).status_code == 200
        now[0] += 3599.0
        assert client.get("/v1/data/article?articleid=57520", headers=headers).status_code == 200
        now[0] += 2.0
        assert client.get("/v1/data/article?articleid=57520", headers=headers).status_code == 401


# --- data endpoints ---------------------------------------------------------------------------


def test_version_selection_unknown_ids_and_errors(client: httpx.Client) -> None:
    headers = bearer(client)
    latest = rows(client, "/v1/data/lcd?lcdid=35041", headers=headers)
    assert [row["lcd_version"] for row in latest] == [12]
    assert rows(client, "/v1/data/lcd?lcdid=35041&ver=12", headers=headers) == latest
    missing = client.get("/v1/data/article?articleid=99999", headers=headers).json()
    assert missing["data"] == [] and missing["meta"]["notes"] == "0 results"
    assert rows(client, "/v1/data/lcd?lcdid=35041&ver=13", headers=headers) == []
    bad = client.get("/v1/data/lcd?lcdid=abc", headers=headers)
    assert bad.status_code == 400 and bad.json()["code"] == 400
    assert client.get("/v1/data/article", headers=headers).status_code == 400
    assert client.get(f"{LCD_REPORT}?status=X").status_code == 400
    not_found = client.get("/v1/data/final-lcd?lcdid=1")
    assert not_found.status_code == 404 and not_found.json()["code"] == 404


def test_article_code_tables_and_html_fields(client: httpx.Client) -> None:
    headers = bearer(client)
    covered = rows(client, "/v1/data/article/icd10-covered?articleid=57520", headers=headers)
    assert {"L82.0", "L82.1", "D22.5"} <= {row["icd10_code_id"] for row in covered}
    assert [row["sort_order"] for row in covered] == list(range(1, len(covered) + 1))
    hcpcs = rows(client, "/v1/data/article/hcpc-code?articleid=54117", headers=headers)
    assert {"15271", "Q4102", "Q4186"} <= {row["hcpc_code_id"] for row in hcpcs}
    modifiers = rows(client, "/v1/data/article/hcpc-modifier?articleid=54563", headers=headers)
    assert [row["hcpc_modifier_code_id"] for row in modifiers][:3] == ["A1", "A2", "A3"]
    groups = rows(client, "/v1/data/article/icd10-covered-group?articleid=57520", headers=headers)
    assert "11300-11313" in groups[0]["paragraph"] and groups[0]["paragraph"].startswith(
        "&lt;p&gt;"
    )
    inline = rows(client, "/v1/data/lcd/hcpc-code?lcdid=33831", headers=headers)
    assert inline and all(row["lcd_id"] == 33831 for row in inline)
    lcd = rows(client, "/v1/data/lcd?lcdid=34216", headers=headers)[0]
    assert lcd["indication"].startswith("&lt;p&gt;") and "&lt;&sol;p&gt;" in lcd["indication"]
    assert "&amp;ldquo;PUVA&amp;rdquo;" in lcd["indication"]  # double-encoded entities
    assert lcd["rev_eff_date"] == "02/20/2025" and lcd["date_retired"] == "N/A"
    related = rows(client, "/v1/data/article/related-documents?articleid=57520", headers=headers)
    assert [(row["r_lcd_id"], row["r_lcd_version"]) for row in related] == [(33979, 12)]


# --- scenarios --------------------------------------------------------------------------------


def test_week2_lists_future_and_current_rows_retirement_and_new_documents(
    api: CmsApiFixture, client: httpx.Client
) -> None:
    api.set_scenario("week2")
    lcds = rows(client, LCD_REPORT)
    substitutes = sorted(
        (row["document_version"], row["note"], row["effective_date"])
        for row in lcds
        if row["document_id"] == 35041
    )
    assert substitutes == [
        (12, "", "04/13/2025"),
        (13, "Future(Notice Ends 12/31/2026)", "01/01/2027"),
    ]
    retired = next(row for row in lcds if row["document_display_id"] == "L34009")
    assert (retired["note"], retired["retirement_date"], retired["document_version"]) == (
        "Retired",
        "11/08/2026",
        7,
    )
    headers = bearer(client)
    detail = rows(client, "/v1/data/lcd?lcdid=34009", headers=headers)[0]
    assert (detail["status"], detail["date_retired"]) == ("R", "11/08/2026")
    assert "L40212" in {row["document_display_id"] for row in lcds}
    assert "A60105" in {row["document_display_id"] for row in rows(client, ARTICLE_REPORT)}
    # Older versions stay retrievable; the latest is served when ``ver`` is omitted.
    old = rows(client, "/v1/data/article/icd10-covered?articleid=57520&ver=31", headers=headers)
    assert "L82.0" in {row["icd10_code_id"] for row in old}
    api.set_scenario("week1")
    assert "L40212" not in {row["document_display_id"] for row in rows(client, LCD_REPORT)}
    with pytest.raises(ValueError, match="week1"):
        api.set_scenario("week9")


def _document(client: httpx.Client, display_id: str, headers: dict[str, str]) -> dict[str, Any]:
    if display_id.startswith("NCD "):
        ncd = next(
            r for r in rows(client, NCD_REPORT) if r["document_display_id"] == display_id[4:]
        )
        return rows(client, f"/v1/data/ncd?ncdid={ncd['document_id']}")[0]
    kind = "lcd" if display_id.startswith("L") else "article"
    return rows(client, f"/v1/data/{kind}?{kind}id={display_id[1:]}", headers=headers)[0]


def _codes(client: httpx.Client, article: str, table: str, headers: dict[str, str]) -> set[str]:
    endpoint, field = TABLE_ENDPOINT[table]
    path = f"/v1/data/article/{endpoint}?articleid={article[1:]}"
    return {row[field] for row in rows(client, path, headers=headers)}


def _check(change: ExpectedChange, week1: httpx.Client, week2: httpx.Client) -> None:
    h1, h2 = bearer(week1), bearer(week2)
    doc = change.document_id
    if change.kind in ("code_added", "code_removed"):
        assert change.field is not None
        before, after = _codes(week1, doc, change.field, h1), _codes(week2, doc, change.field, h2)
        if change.kind == "code_added":
            assert change.after in after - before, change
        else:
            assert change.before in before - after, change
    elif change.kind == "section_changed":
        assert change.field is not None
        old, new = _document(week1, doc, h1)[change.field], _document(week2, doc, h2)[change.field]
        assert plain_text(old) != plain_text(new), change
    elif change.kind == "date_changed":
        old, new = _document(week1, doc, h1), _document(week2, doc, h2)
        assert (old["rev_eff_date"], new["rev_eff_date"]) == ("07/01/2025", "11/08/2026")
        assert (change.before, change.after) == ("2025-07-01", "2026-11-08")
    elif change.kind == "document_retired":
        assert (_document(week1, doc, h1)["status"], _document(week2, doc, h2)["status"]) == (
            "A",
            "R",
        )
    elif change.kind == "upcoming_version":
        versions = [
            r["document_version"]
            for r in rows(week2, LCD_REPORT)
            if r["document_display_id"] == doc
        ]
        assert str(max(versions)) == change.after and len(versions) == 2
    elif change.kind == "document_added":
        report = LCD_REPORT if doc.startswith("L") else ARTICLE_REPORT
        assert doc not in {r["document_display_id"] for r in rows(week1, report)}
        assert doc in {r["document_display_id"] for r in rows(week2, report)}
    else:
        pytest.fail(f"unknown change kind {change.kind}")


def test_week2_manifest_matches_what_is_served() -> None:
    kinds = {change.kind for change in WEEK2_EXPECTED}
    assert kinds == {
        "code_added", "code_removed", "section_changed", "date_changed", "document_retired",
        "upcoming_version", "document_added",
    }  # fmt: skip
    with (
        CmsApiFixture(scenario="week1") as one,
        CmsApiFixture(scenario="week2") as two,
        httpx.Client(base_url=one.base_url) as week1,
        httpx.Client(base_url=two.base_url) as week2,
    ):
        for change in WEEK2_EXPECTED:
            _check(change, week1, week2)


def test_noise_only_documents_change_version_but_not_content() -> None:
    with (
        CmsApiFixture(scenario="week1") as one,
        CmsApiFixture(scenario="week2") as two,
        httpx.Client(base_url=one.base_url) as week1,
        httpx.Client(base_url=two.base_url) as week2,
    ):
        h1, h2 = bearer(week1), bearer(week2)
        for display_id in NOISE_ONLY_DOCUMENTS:
            old, new = _document(week1, display_id, h1), _document(week2, display_id, h2)
            assert new["lcd_version"] == old["lcd_version"] + 1
            changed = {key for key in old if old[key] != new[key]}
            assert changed <= {"lcd_version", "last_updated", "indication"}
            assert plain_text(old["indication"]) == plain_text(new["indication"])
        photo_old, photo_new = _document(week1, "L34216", h1), _document(week2, "L34216", h2)
        assert (
            "&amp;rsquo;" in photo_old["indication"]
            and "&amp;rsquo;" not in photo_new["indication"]
        )
        assert "&rsquo;" in photo_new["indication"]
        assert (
            _document(week1, "L34938", h1)["indication"]
            == _document(week2, "L34938", h2)["indication"]
        )


def test_week3_serves_the_same_data_as_week2() -> None:
    week2, week3 = build_corpus("week2"), build_corpus("week3")
    assert week3.scenario.today > week2.scenario.today
    assert week2.fingerprint() == week3.fingerprint()
    assert build_corpus("week1").fingerprint() != week2.fingerprint()


# --- faults and counters ----------------------------------------------------------------------


def test_429_with_retry_after_then_recovery(api: CmsApiFixture, client: httpx.Client) -> None:
    api.inject(f"{LCD_REPORT}/", Fault.http(429, retry_after=2), times=2)
    for _ in range(2):
        response = client.get(LCD_REPORT)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "2"
        assert response.json()["code"] == 429
    assert client.get(LCD_REPORT).status_code == 200
    assert client.get(ARTICLE_REPORT).status_code == 200
    assert api.request_count == 4


def test_5xx_with_custom_body_applies_only_to_the_matching_prefix(
    api: CmsApiFixture, client: httpx.Client
) -> None:
    api.inject("/v1/data/ncd", Fault.http(503, body=b"<html>maintenance</html>"))
    assert client.get(NCD_REPORT).status_code == 200
    response = client.get("/v1/data/ncd/?ncdid=131")
    assert (response.status_code, response.content) == (503, b"<html>maintenance</html>")
    assert client.get("/v1/data/ncd?ncdid=131").status_code == 200
    api.inject("/v1/reports", Fault.http(500), times=5)
    api.clear_faults()
    assert client.get(NCD_REPORT).status_code == 200


def test_truncated_body_raises_a_protocol_error(api: CmsApiFixture, client: httpx.Client) -> None:
    api.inject(ARTICLE_REPORT, Fault.truncated())
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(ARTICLE_REPORT)
    assert rows(client, ARTICLE_REPORT)
    assert api.request_count == 2


def test_delay_fault_trips_a_client_timeout(api: CmsApiFixture, client: httpx.Client) -> None:
    api.inject(NCD_REPORT, Fault.delayed(1.0))
    with pytest.raises(httpx.ReadTimeout):
        client.get(NCD_REPORT, timeout=0.1)
    assert rows(client, NCD_REPORT)


def test_fault_validation() -> None:
    with pytest.raises(ValueError):
        Fault()
    with pytest.raises(ValueError):
        Fault.http(42)


def test_request_counter_and_log(api: CmsApiFixture, client: httpx.Client) -> None:
    client.get(f"{LCD_REPORT}?status=A")
    client.get("/v1/data/lcd?lcdid=1")  # 401, still counted
    client.get("/nope")  # 404, still counted
    assert api.request_count == 3
    assert api.requests == [f"{LCD_REPORT}?status=A", "/v1/data/lcd?lcdid=1", "/nope"]
    assert client.get("/_control/stats").json()["request_count"] == 3  # not counted itself
    api.reset_counters()
    assert (api.request_count, api.requests) == (0, [])


def test_report_paging_with_next_token() -> None:
    with (
        CmsApiFixture(scenario="week2", page_size=3) as api,
        httpx.Client(base_url=api.base_url) as client,
    ):
        collected: list[dict[str, Any]] = []
        token, pages = "", 0
        while True:
            params = {"next_token": token} if token else {}
            body = client.get(LCD_REPORT, params=params).json()
            assert len(body["data"]) <= 3
            collected.extend(body["data"])
            pages += 1
            token = body["meta"]["next_token"]
            if not token:
                break
        assert pages == 3
        expected = build_corpus("week2").report_rows("lcd")
        assert collected == json.loads(json.dumps(expected))
        assert client.get(LCD_REPORT, params={"next_token": "garbage"}).status_code == 400


# --- determinism, full scale, process mode ----------------------------------------------------


def test_sample_corpus_is_deterministic() -> None:
    first = build_corpus("week2").fingerprint()
    build_corpus.cache_clear()
    assert build_corpus("week2").fingerprint() == first


@pytest.mark.slow
def test_full_scale_sizes_and_determinism_across_processes() -> None:
    week1, week2 = build_corpus("week1", "full"), build_corpus("week2", "full")
    assert 950 <= len(week1.report("lcd")) <= 990
    assert 2_130 <= len(week1.report("article")) <= 2_190
    assert 330 <= len(week1.report("ncd")) <= 350
    totals = week1.code_row_totals()
    assert 17_000 <= totals["hcpcs"] <= 19_000
    assert 420_000 <= totals["icd10_covered"] <= 440_000
    assert 43_000 <= totals["icd10_noncovered"] <= 47_000
    assert 200 <= totals["hcpcs_modifier"] <= 800
    changes = full_scale_week2_changes()
    changed_docs = {change.document_id for change in changes}
    total_docs = sum(len(week1.report(kind)) for kind in ("lcd", "article", "ncd"))
    assert 0.015 * total_docs <= len(changed_docs) <= 0.025 * total_docs
    assert len(week2.report("lcd")) == len(week1.report("lcd")) + 2  # new LCD + future row
    script = (
        "from fixtures.cms_corpus import build_corpus;"
        "print(build_corpus('week2', 'full').fingerprint(code_sample_every=97))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert outputs == {week2.fingerprint(code_sample_every=97) + "\n"}


def test_generated_rows_are_lazy_and_match_their_counts() -> None:
    corpus = build_corpus("week1", "full")
    generated = [d.content for d in corpus.report("article")]
    content = max(
        (c for c in generated if isinstance(c, GeneratedArticle)),
        key=lambda c: c.count("icd10_covered"),
    )
    base_indexes.cache_clear()
    codes = content.codes("icd10_covered")
    assert len(codes) == content.count("icd10_covered") > 5_000
    assert len({entry.code for entry in codes}) == len(codes)
    assert [entry.code for entry in codes] == sorted(entry.code for entry in codes)
    base_indexes.cache_clear()
    assert content.codes("icd10_covered") == codes


def test_full_scale_server_serves_generated_documents() -> None:
    with (
        CmsApiFixture(scenario="week1", scale="full") as api,
        httpx.Client(base_url=api.base_url, timeout=30) as client,
    ):
        articles = rows(client, ARTICLE_REPORT)
        assert len(articles) > 2_000
        generated = next(r for r in articles if r["document_id"] == 52013)
        headers = bearer(client)
        path = f"/v1/data/article/icd10-covered?articleid=52013&ver={generated['document_version']}"
        first = client.get(path, headers=headers)
        assert first.status_code == 200 and first.json()["data"]
        assert client.get(path, headers=headers).content == first.content


def test_runs_as_a_process_with_control_endpoints() -> None:
    process, base_url = spawn_fixture("fixtures.cms_api", "--scenario", "week1", cwd=str(REPO))
    try:
        with httpx.Client(base_url=base_url) as client:
            assert "L40212" not in {r["document_display_id"] for r in rows(client, LCD_REPORT)}
            switched = client.post("/_control/scenario", params={"name": "week2"})
            assert switched.json() == {"scenario": "week2"}
            assert "L40212" in {r["document_display_id"] for r in rows(client, LCD_REPORT)}
            assert client.get("/_control/stats").json()["request_count"] == 2
            client.post("/_control/reset")
            assert client.get("/_control/stats").json()["request_count"] == 0
            assert client.post("/_control/scenario", params={"name": "nope"}).status_code == 400
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
