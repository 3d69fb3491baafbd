"""Tests of the payer policy fixture site (``fixtures.payer_site``) against the real server."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import urllib.robotparser
from collections.abc import Iterator
from pathlib import Path

import httpx
import pdfplumber
import pytest
from bs4 import BeautifulSoup

from fixtures.loopback import spawn_fixture
from fixtures.payer_site import (
    AETNA_INDEX_PATH,
    NOISE_ONLY_URLS,
    PER_REQUEST_NOISE_URLS,
    PRIVATE_PATH,
    UHC_INDEX_PATH,
    WEEK2_ALSO_CHANGED,
    WEEK2_EXPECTED,
    WEEK3_EXPECTED,
    Fault,
    PayerSite,
    PayerSiteFixture,
    benchmark_pdf,
    render_document,
    scale_week2_changes,
)
from fixtures.payer_site.pdf_layout import render_policy_pdf
from fixtures.payer_site.scale import scale_pdf, spec
from fixtures.payer_site.uhc_dupixent import dupixent

REPO = Path(__file__).resolve().parents[1]
DUPIXENT = "/policies/drug/dupixent-dupilumab.pdf"
TREMFYA = "/policies/drug/tremfya-guselkumab.pdf"
ADALIMUMAB = "/policies/drug/adalimumab-humira-and-biosimilars.pdf"
SKYRIZI = "/policies/drug/skyrizi-risankizumab.pdf"
ILUMYA = "/policies/drug/ilumya-tildrakizumab.pdf"
EBGLYSS = "/policies/drug/ebglyss-lebrikizumab.pdf"
MOHS = "/cpb/medical/data/700_799/0777.html"
PHOTOTHERAPY = "/cpb/medical/data/200_299/0205.html"
TCS_SENTENCE = (
    "Patient has tried at least one medium-, high-, or super-high-potency topical "
    "corticosteroid applied daily {duration} with inadequate response; AND"
)
# Page furniture, as the reference notes list it for UnitedHealthcare PDFs.
FURNITURE = [
    re.compile(r"^.{0,120}Page\s+\d+\s+of\s+\d+$"),
    re.compile(r"^UnitedHealthcare.*(Medical|Drug)\s+(Policy|Benefit).*(Effective|Policy)"),
    re.compile(r"^Proprietary Information of UnitedHealthcare"),
]
REQUEST_ID = re.compile(rb"[0-9a-f]{32}")


@pytest.fixture
def site() -> Iterator[PayerSiteFixture]:
    with PayerSiteFixture(scenario="week1") as fixture:
        yield fixture


@pytest.fixture
def client(site: PayerSiteFixture) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.base_url, timeout=30) as http:
        yield http


@functools.lru_cache(maxsize=32)
def pdf_lines(data: bytes) -> list[list[str]]:
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return [(page.extract_text() or "").splitlines() for page in pdf.pages]


def body_text(data: bytes) -> str:
    """What a parser keeps: no page furniture, words rejoined at line-end hyphens, one space."""
    lines = [
        line
        for page in pdf_lines(data)
        for line in page
        if not any(pattern.search(line) for pattern in FURNITURE)
    ]
    text = re.sub(r"(?<=[a-z])-\n(?=[a-z])", "", "\n".join(lines))
    return " ".join(text.split())


@functools.lru_cache(maxsize=32)
def tables(data: bytes) -> list[list[list[str | None]]]:
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return [table for page in pdf.pages for table in page.extract_tables()]


def code_column(data: bytes, header: str) -> list[str]:
    """First-column cells of every table (or continued table) headed ``header``."""
    return [
        str(row[0])
        for table in tables(data)
        if table and table[0][0] == header
        for row in table[1:]
    ]


def links(html: str) -> list[str]:
    return [str(a["href"]) for a in BeautifulSoup(html, "html.parser").find_all("a", href=True)]


def get_as(client: httpx.Client, site: PayerSiteFixture, scenario: str, path: str) -> bytes:
    site.set_scenario(scenario)
    response = client.get(path)
    assert response.status_code == 200, (scenario, path, response.status_code)
    return response.content


# --- site structure --------------------------------------------------------------------------


def test_index_links_resolve_to_pdfs_and_cpb_pages(client: httpx.Client) -> None:
    uhc = client.get(UHC_INDEX_PATH)
    assert uhc.headers["content-type"] == "text/html; charset=utf-8"
    pdf_links = [href for href in links(uhc.text) if href.endswith(".pdf")]
    assert sorted(pdf_links) == sorted([ADALIMUMAB, DUPIXENT, ILUMYA, SKYRIZI, TREMFYA])
    assert "Effective Date: 01.01.2026" in uhc.text  # UHC index dates are MM.DD.YYYY
    for href in pdf_links:
        response = client.get(href)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pdf"
        assert response.content.startswith(b"%PDF-")
    aetna = client.get(AETNA_INDEX_PATH)
    cpb_links = [href for href in links(aetna.text) if href.startswith("/cpb/")]
    assert sorted(cpb_links) == [PHOTOTHERAPY, MOHS]
    for href in cpb_links:
        page = BeautifulSoup(client.get(href).text, "html.parser")
        number = page.find("meta", attrs={"name": "aet.cpbNumber"})
        assert number is not None and href.endswith(f"/{number['content']}.html")
    assert client.get("/policies/drug/no-such-policy.pdf").status_code == 404


def test_robots_txt_disallows_the_private_link_on_the_index(client: httpx.Client) -> None:
    robots = client.get("/robots.txt")
    assert robots.headers["content-type"] == "text/plain; charset=utf-8"
    assert "User-agent: *\nDisallow: /private/\n" in robots.text
    parser = urllib.robotparser.RobotFileParser()
    parser.parse(robots.text.splitlines())
    index_links = links(client.get(UHC_INDEX_PATH).text)
    assert PRIVATE_PATH in index_links
    assert not parser.can_fetch("PolicyMonitor", PRIVATE_PATH)
    assert parser.can_fetch("PolicyMonitor", DUPIXENT)
    assert client.get(PRIVATE_PATH).status_code == 200  # served, so a rude crawler is caught


# --- the UnitedHealthcare-like PDFs ----------------------------------------------------------


def test_dupixent_pdf_layout_furniture_and_criteria(client: httpx.Client) -> None:
    data = client.get(DUPIXENT).content
    pages = pdf_lines(data)
    assert len(pages) >= 4
    assert pages[0][:5] == [
        "UnitedHealthcare®",
        "Commercial Medical Benefit Drug Policy",
        "Dupixent® (Dupilumab)",
        "Policy Number: 2026D0045A",
        "Effective Date: January 1, 2026 Instructions for Use",
    ]
    assert any(line.startswith("Table of Contents Page") for line in pages[0])
    for number, lines in enumerate(pages, start=1):
        assert lines[-3] == f"Dupixent® (Dupilumab) Page {number} of {len(pages)}"
        assert "2026D0045A Effective 01/01/2026" in lines[-2]
        assert lines[-1].endswith("Printed on 11/05/2026")
        if number > 1:
            assert lines[0].startswith("UnitedHealthcare® Commercial Medical Benefit Drug Policy")
    text = body_text(data)
    headings = [
        "Coverage Rationale",
        "Applicable Codes",
        "Background",
        "Clinical Evidence",
        "Policy History/Revision Information",
        "Instructions for Use",
    ]
    all_lines = [line for page in pages for line in page]
    positions = [all_lines.index(heading) for heading in headings]  # TOC lines have dot leaders
    assert positions == sorted(positions)
    assert TCS_SENTENCE.format(duration="for at least 8 weeks") in text
    for phrase in (
        "Body surface area (BSA) involvement of at least 10%",
        "Eczema Area and Severity Index (EASI) score ≥ 16",
        "for ≥ 6 weeks with inadequate response",
        "i. Patient is 6 months of age or older; AND",
        "prescribed by or in consultation with a dermatologist, allergist or immunologist",
        "A) Initial Therapy. Approve for 6 months if the patient meets ALL of the following",
        "ONE of the following (a, b or c):",
        "Patient is not receiving Dupixent in combination with another biologic",
        "B) Patient is Currently Receiving Dupixent. Approve for 1 year",
        "Prior authorization is required for Dupixent",
    ):
        assert phrase in text, phrase


def test_dupixent_text_exercises_hyphens_ligatures_and_smart_quotes(client: httpx.Client) -> None:
    data = client.get(DUPIXENT).content
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        raw = "\n".join(page.extract_text(expand_ligatures=False) or "" for page in pdf.pages)
    assert {"ﬁ", "ﬂ"} <= set(raw)
    assert {"’", "“", "”", "≥", "®", "α"} <= set(raw)
    broken = re.findall(r"([a-z]+)-\n([a-z]+)", raw)
    assert len(broken) >= 3
    joined = body_text(data)
    assert all(f"{head}{tail}" in joined for head, tail in broken)


def test_code_and_history_tables_are_extractable(client: httpx.Client) -> None:
    data = client.get(DUPIXENT).content
    found = tables(data)
    hcpcs = next(table for table in found if table[0] == ["HCPCS Code", "Description"])
    assert hcpcs[1:] == [
        ["C9399", "Unclassified drugs or biologicals"],
        ["J3590", "Unclassified biologics"],
    ]
    assert code_column(data, "Diagnosis Code") == [
        "L20.0", "L20.81", "L20.82", "L20.83", "L20.84", "L20.89", "L20.9", "L28.1",
    ]  # fmt: skip
    history = next(table for table in found if table[0] == ["Date", "Summary of Changes"])
    assert [row[0] for row in history[1:]] == ["01/01/2026", "06/01/2025"]
    assert str(history[1][1]).startswith("Coverage Rationale\n• ")


# --- weekly scenarios --------------------------------------------------------------------------


def test_week2_changes_match_the_manifest(site: PayerSiteFixture, client: httpx.Client) -> None:
    kinds = {(change.document_url_path, change.kind) for change in WEEK2_EXPECTED}
    assert (DUPIXENT, "step_therapy_changed") in kinds and (EBGLYSS, "document_added") in kinds
    week1 = {path: get_as(client, site, "week1", path) for path in (DUPIXENT, TREMFYA, ADALIMUMAB)}
    week2 = {path: get_as(client, site, "week2", path) for path in (DUPIXENT, TREMFYA, ADALIMUMAB)}
    before, after = body_text(week1[DUPIXENT]), body_text(week2[DUPIXENT])
    assert TCS_SENTENCE.format(duration="for at least 8 weeks") in before
    assert TCS_SENTENCE.format(duration="for a minimum of 12 weeks") in after
    assert TCS_SENTENCE.format(duration="for at least 8 weeks") not in after
    assert "Effective Date: March 1, 2026" in after
    assert "Initial authorization will be for no more than 6 months." in body_text(week1[TREMFYA])
    tremfya_after = body_text(week2[TREMFYA])
    assert "Initial authorization will be for no more than 4 months." in tremfya_after
    assert "Initial authorization will be for no more than 6 months;" in tremfya_after  # PsA
    assert "L40.1" in code_column(week1[ADALIMUMAB], "Diagnosis Code")
    assert code_column(week2[ADALIMUMAB], "Diagnosis Code") == ["L40.0", "L73.2"]
    history = next(t for t in tables(week2[DUPIXENT]) if t[0] == ["Date", "Summary of Changes"])
    assert history[1][0] == "03/01/2026"
    changed_urls = {change.document_url_path for change in WEEK2_EXPECTED}
    assert {url for url, _ in WEEK2_ALSO_CHANGED} <= changed_urls


def test_week2_cpb_threshold_is_marked_with_revision_spans(
    site: PayerSiteFixture, client: httpx.Client
) -> None:
    def policy_text(html: bytes, *, drop_struck: bool) -> str:
        soup = BeautifulSoup(html, "html.parser")
        if drop_struck:
            for struck in soup.select(".strikeThrough"):
                struck.decompose()
        return " ".join(soup.select_one("#policy").get_text(" ").split())  # type: ignore[union-attr]

    week1 = get_as(client, site, "week1", PHOTOTHERAPY)
    week2 = get_as(client, site, "week2", PHOTOTHERAPY)
    assert "at least 10% of body surface area (BSA)" in policy_text(week1, drop_struck=True)
    soup2 = BeautifulSoup(week2, "html.parser")
    assert [s.get_text() for s in soup2.select(".strikeThrough")] == ["10%"]
    assert "5%" in [s.get_text() for s in soup2.select(".newText")]
    assert "at least 5% of body surface area (BSA)" in policy_text(week2, drop_struck=True)
    assert "less than 10% of BSA" in policy_text(week2, drop_struck=True)  # excimer: unchanged
    meta = soup2.find("meta", attrs={"name": "aet.lastReviewDate"})
    assert meta is not None and meta["content"] == "2026-11-10"


def test_added_and_withdrawn_policies(site: PayerSiteFixture, client: httpx.Client) -> None:
    # Ilumya's URL answers 404 in week 2, so its withdrawal is a week-2 change; week 3 has none.
    assert (ILUMYA, "document_withdrawn") in {(c.document_url_path, c.kind) for c in WEEK2_EXPECTED}
    assert WEEK3_EXPECTED == ()
    listed = {}
    for scenario in ("week1", "week2", "week3"):
        site.set_scenario(scenario)
        listed[scenario] = set(links(client.get(UHC_INDEX_PATH).text))
    assert ILUMYA in listed["week1"] and EBGLYSS not in listed["week1"]
    assert ILUMYA not in listed["week2"] and EBGLYSS in listed["week2"]
    assert listed["week3"] == listed["week2"]
    assert client.get(ILUMYA).status_code == 404
    site.set_scenario("week1")
    assert client.get(EBGLYSS).status_code == 404


def test_everything_not_in_the_manifest_is_byte_identical_between_weeks() -> None:
    site = PayerSite()
    week1, week2, week3 = (site.resources(s) for s in ("week1", "week2", "week3"))
    changed = {c.document_url_path for c in WEEK2_EXPECTED + WEEK3_EXPECTED}
    changed |= set(NOISE_ONLY_URLS) | {UHC_INDEX_PATH, AETNA_INDEX_PATH}
    same = sorted(set(week1) & set(week2) - changed)
    assert MOHS in same and "/robots.txt" in same and len(same) == 4
    for path in same:
        assert render_document(path, "week1") == render_document(path, "week2"), path
        assert week1[path].last_modified == week2[path].last_modified
    for path in changed & set(week1) & set(week2):
        assert render_document(path, "week1") != render_document(path, "week2"), path
    assert {path: r.key for path, r in week3.items()} == {path: r.key for path, r in week2.items()}


def test_reprint_differs_only_in_stamp_and_page_breaks() -> None:
    (url,) = NOISE_ONLY_URLS
    before, after = render_document(url, "week1"), render_document(url, "week2")
    assert before != after
    lines_before, lines_after = pdf_lines(before), pdf_lines(after)
    assert lines_before[0][-1].endswith("Printed on 11/05/2026")
    assert lines_after[0][-1].endswith("Printed on 11/12/2026")
    assert [line for page in lines_before for line in page] != [
        line for page in lines_after for line in page
    ]

    # Same words once furniture, hyphenation and the TOC's page numbers are set aside.
    def words(data: bytes) -> str:
        return re.sub(r" \.{3,} \d+", " ...", body_text(data))

    assert words(before) == words(after)


# --- HTTP behaviour ----------------------------------------------------------------------------


def test_conditional_get_answers_304(client: httpx.Client) -> None:
    first = client.get(DUPIXENT)
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    assert etag == f'"{hashlib.sha256(first.content).hexdigest()[:32]}"'
    assert last_modified == "Thu, 05 Nov 2026 06:00:00 GMT"
    by_etag = client.get(DUPIXENT, headers={"If-None-Match": etag})
    assert by_etag.status_code == 304 and by_etag.content == b""
    assert by_etag.headers["etag"] == etag
    by_date = client.get(DUPIXENT, headers={"If-Modified-Since": last_modified})
    assert by_date.status_code == 304
    stale = client.get(DUPIXENT, headers={"If-None-Match": '"stale"'})
    assert stale.status_code == 200 and stale.content == first.content
    earlier = client.get(DUPIXENT, headers={"If-Modified-Since": "Mon, 02 Nov 2026 00:00:00 GMT"})
    assert earlier.status_code == 200
    head = client.head(DUPIXENT)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(first.content))


def test_conditional_false_sends_no_validators() -> None:
    with (
        PayerSiteFixture(conditional=False) as site,
        httpx.Client(base_url=site.base_url) as client,
    ):
        first = client.get(DUPIXENT)
        assert "etag" not in first.headers and "last-modified" not in first.headers
        again = client.get(
            DUPIXENT,
            headers={"If-None-Match": "*", "If-Modified-Since": "Fri, 01 Jan 2027 00:00:00 GMT"},
        )
        assert again.status_code == 200 and again.content == first.content


def test_per_request_id_changes_while_etag_stays(client: httpx.Client) -> None:
    (url,) = PER_REQUEST_NOISE_URLS
    first, second = client.get(url), client.get(url)
    assert first.content != second.content
    ids = {
        BeautifulSoup(response.text, "html.parser").body["data-request-id"]  # type: ignore[index]
        for response in (first, second)
    }
    assert len(ids) == 2
    assert REQUEST_ID.sub(b"", first.content) == REQUEST_ID.sub(b"", second.content)
    assert first.headers["etag"] == second.headers["etag"]
    assert first.headers["etag"].startswith('W/"')
    revalidated = client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert revalidated.status_code == 304


def test_cpb_page_has_aetna_structure(client: httpx.Client) -> None:
    response = client.get(MOHS)
    assert response.text.startswith("\n")  # Aetna pages start with blank lines
    soup = BeautifulSoup(response.text, "html.parser")
    metas = {m["name"]: m["content"] for m in soup.find_all("meta", attrs={"name": True})}
    assert metas["aet.cpbNumber"] == "0777"
    assert metas["aet.lastReviewDate"] == "2026-08-13"
    assert metas["aet.anticipatedReviewDate"] == "2027-08-13"
    table = soup.select_one("table#complexTable")
    assert table is not None
    headings = [h.get_text(" ", strip=True) for h in table.select("h3.cptHeading")]
    assert headings[0] == "CPT codes covered if selection criteria are met :"
    codes = [td.get_text() for td in table.select("td.cptCode")]
    assert codes[:5] == ["17311", "17312", "17313", "17314", "17315"]
    assert soup.select(".newText") and soup.select(".strikeThrough")
    history = soup.select_one(".policyHistory")
    assert history is not None and "Next Review:" in history.get_text()
    assert soup.select_one("h2.policyHead") is not None
    assert soup.find("header") is not None and soup.find("footer") is not None


def test_faults_counters_and_scenario_control(site: PayerSiteFixture, client: httpx.Client) -> None:
    site.inject("/policies/drug/", Fault.http(503, retry_after=2), times=1)
    failed = client.get(DUPIXENT)
    assert failed.status_code == 503 and failed.headers["retry-after"] == "2"
    assert client.get(DUPIXENT).status_code == 200
    site.inject(DUPIXENT, Fault.truncated())
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(DUPIXENT)
    assert site.request_count == 3
    assert site.requests == [DUPIXENT, DUPIXENT, DUPIXENT]
    assert client.get("/_control/stats").json() == {"request_count": 3, "scenario": "week1"}
    assert client.post("/_control/scenario", params={"name": "week2"}).json() == {
        "scenario": "week2"
    }
    assert site.scenario == "week2"
    assert client.post("/_control/scenario", params={"name": "week9"}).status_code == 400
    client.post("/_control/reset")
    assert site.request_count == 0 and site.requests == []
    with pytest.raises(ValueError, match="week1, week2, week3"):
        site.set_scenario("week4")


# --- determinism and scale -------------------------------------------------------------------


def test_rendering_is_deterministic_across_renders_and_processes() -> None:
    first, second = render_policy_pdf(dupixent(1)), render_policy_pdf(dupixent(1))
    assert first == second
    script = (
        "import hashlib;from fixtures.payer_site import render_document;"
        "print(hashlib.sha256(render_document('/policies/drug/dupixent-dupilumab.pdf')).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert digests == {hashlib.sha256(first).hexdigest()}


def test_scale_mode_serves_generated_documents() -> None:
    with (
        PayerSiteFixture(documents=40) as site,
        httpx.Client(base_url=site.base_url, timeout=30) as client,
    ):
        pdfs = [h for h in links(client.get(UHC_INDEX_PATH).text) if h.endswith(".pdf")]
        cpbs = [h for h in links(client.get(AETNA_INDEX_PATH).text) if h.startswith("/cpb/")]
        assert len(pdfs) == len(cpbs) == 20
        changes = scale_week2_changes(40)
        assert len(changes) == 2
        for change in changes:
            site.set_scenario("week1")
            before = client.get(change.document_url_path).content
            site.set_scenario("week2")
            after = client.get(change.document_url_path).content
            assert before != after, change
        site.set_scenario("week2")
        unchanged = next(p for p in pdfs if p not in {c.document_url_path for c in changes})
        assert client.get(unchanged).content == render_document(unchanged, "week1", 40)


def test_scale_mode_counts_and_changes_at_1000() -> None:
    site = PayerSite(documents=1000)
    paths = site.document_paths("week1")
    assert len(paths) == 1000
    assert sum(path.endswith(".pdf") for path in paths) == 500
    assert site.resources("week1")[UHC_INDEX_PATH.replace(".html", "-page-2.html")]
    changes = scale_week2_changes(1000)
    assert len(changes) == 50 and len({c.document_url_path for c in changes}) == 50
    assert {c.kind for c in changes} == {
        "step_therapy_changed",
        "threshold_changed",
        "code_removed",
    }
    assert changes == scale_week2_changes(1000)
    step = next(
        c for c in changes if c.kind == "step_therapy_changed" and ".pdf" in c.document_url_path
    )
    index = int(step.document_url_path.rsplit("-", 1)[1].removesuffix(".pdf"))
    week1 = body_text(render_policy_pdf(scale_pdf(index)))
    week2 = body_text(render_policy_pdf(scale_pdf(index, "duration")))
    unit = spec(index).indication.unit
    per_day = 7 if unit == "weeks" else 1
    assert f"{int(step.before or 0) // per_day} {unit} with inadequate response" in week1
    assert f"{int(step.after or 0) // per_day} {unit} with inadequate response" in week2
    with pdfplumber.open(io.BytesIO(benchmark_pdf())) as pdf:
        assert len(pdf.pages) == 20


def test_runs_as_a_process_with_control_endpoints() -> None:
    process, base_url = spawn_fixture("fixtures.payer_site", "--scenario", "week1", cwd=str(REPO))
    try:
        with httpx.Client(base_url=base_url) as client:
            assert EBGLYSS not in links(client.get(UHC_INDEX_PATH).text)
            client.post("/_control/scenario", params={"name": "week2"})
            assert EBGLYSS in links(client.get(UHC_INDEX_PATH).text)
            assert client.get("/_control/stats").json() == {
                "request_count": 2,
                "scenario": "week2",
            }
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_the_demos_truncated_pdf_renders_first_without_a_deadlock() -> None:
    """The truncated PDF is cut from Tremfya's body: asked for before Tremfya was ever rendered
    (a race in the demo, whose two payers run together), it renders that body under the same
    lock. A plain Lock deadlocked there and every later download of the site timed out."""
    script = (
        "from fixtures.payer_site.site import PayerSite, body\n"
        "from fixtures.payer_site.demo_extras import BROKEN_PDF_PATH\n"
        "resource = PayerSite().lookup('week1', BROKEN_PDF_PATH)\n"
        "assert resource is not None\n"
        "print(len(body(resource).data))\n"
    )
    done = subprocess.run(  # a fresh process: nothing rendered yet
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) > 1000
