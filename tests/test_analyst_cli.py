"""What the analyst reads (issue 15), through the real `policy-monitor` command on SQLite and
PostgreSQL: the policy's units and dates, one severity per fact, failures in plain sight, a
`changes` table for people, the `checklists` command and the command line's habits."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_support import POSTGRES_URL, postgres_available

from fixtures.loopback import Fault
from fixtures.payer_site import AETNA_INDEX_PATH, UHC_INDEX_PATH, PayerSiteFixture
from monitor.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
DUPIXENT = "/policies/drug/dupixent-dupilumab.pdf"


def _config(path: Path, url: str, site: str, *, extra: str = "") -> Path:
    path.write_text(f"""
[database]
url = "{url}"
{extra}
[[sources]]
name = "acme"
kind = "payer_policies"
payer = "Acme Health"
start_urls = ["{site}{UHC_INDEX_PATH}", "{site}{AETNA_INDEX_PATH}"]
allow = ["/policies/drug/", "/cpb/medical/data/"]
download_delay_seconds = 0.0
""")
    return path


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def week2(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A config whose database holds the payer site's week 1 (baseline) and week 2, checked
    with the real command; shared by the module's tests (one crawl pair per backend)."""
    directory = tmp_path_factory.mktemp(f"analyst-{request.param}")
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{directory / 'monitor.db'}"
    else:
        reason = postgres_available()
        if reason:
            pytest.skip(reason)
        import psycopg

        schema = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
        ) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with PayerSiteFixture() as site:
        config = _config(directory / "monitor.toml", url, site.base_url)
        assert main(["--config", str(config), "check"]) == 0
        site.set_scenario("week2")
        assert main(["check", "--config", str(config)]) == 0
        yield config
    if schema is not None:
        import psycopg

        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
        ) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().out


def _json(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_durations_read_as_the_policy_wrote_them(
    week2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(capsys, "changes", "--config", str(week2), "--no-baseline", "--format", "json")
    assert code == 0
    records = _json(out)
    step = next(r for r in records if r["kind"] == "step_therapy_changed")
    # One fact from the criteria tree: the values as the policy wrote them, the policy's own
    # sentence as evidence.
    assert (step["before_text"], step["after_text"]) == ("8 weeks", "12 weeks")
    assert "12 weeks" in step["evidence"] and "topical corticosteroid" in step["evidence"]
    assert "atopic dermatitis, initial" in step["field"]
    period = next(r for r in records if r["kind"] == "approval_period_changed")
    assert (period["before_text"], period["after_text"]) == ("6 months", "4 months")

    code, table = _run(capsys, "changes", "--config", str(week2), "--no-baseline")
    assert "8 weeks → 12 weeks" in table and "6 months → 4 months" in table
    assert "56" not in table.split("8 weeks → 12 weeks")[0].splitlines()[-1]


def test_one_fact_one_severity(week2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _code, out = _run(
        capsys, "changes", "--config", str(week2), "--no-baseline", "--format", "json"
    )
    records = {r["id"]: r for r in _json(out)}
    restating = [r for r in records.values() if r["same_fact_as"] is not None]
    assert restating, "the checklist changes that restate a criterion change are linked"
    for checklist in restating:
        fact = records[checklist["same_fact_as"]]
        assert checklist["kind"] == "checklist_changed"
        assert checklist["severity"] == fact["severity"]
        assert checklist["document_id"] == fact["document_id"]
    tremfya = [r for r in records.values() if "tremfya" in str(r["document_id"])]
    period = next(r for r in tremfya if r["kind"] == "approval_period_changed")
    checklist = next(r for r in tremfya if r["kind"] == "checklist_changed")
    assert checklist["severity"] == period["severity"]
    # --min-severity filters on the fact's severity, not the stored one.
    _code, out = _run(
        capsys, "changes", "--config", str(week2), "--no-baseline", "--format", "json",
        "--min-severity", "high",
    )  # fmt: skip
    assert {r["severity"] for r in _json(out)} == {"high"}


def test_no_old_document_date_as_a_change_date(
    week2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _code, out = _run(
        capsys, "changes", "--config", str(week2), "--no-baseline", "--format", "json"
    )
    for record in _json(out):
        stated, effective = record["stated_effective_date"], record["effective_date"]
        if effective is None:
            assert str(record["effective_note"]).startswith("effective date not stated; first seen")
        else:
            assert effective == stated and record["effective_note"] == ""
    _code, table = _run(capsys, "changes", "--config", str(week2), "--no-baseline")
    assert "since" not in table


def test_changes_table_for_people(week2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, table = _run(
        capsys, "--log-level", "info", "changes", "--config", str(week2), "--no-baseline",
        "--document", "DUPIXENT",
    )  # fmt: skip
    assert code == 0
    header, _rule, *rows = table.splitlines()
    assert header.split()[:6] == ["id", "severity", "source", "document", "effective", "change"]
    assert rows and all("dupixent" in table.lower() for _ in rows)
    assert "acme" in rows[0]  # the source column
    assert "step therapy changed" in table  # a readable kind label
    assert "[-8-] {+12+}" in table  # the words that changed in the checklist text
    ids = [int(m) for m in re.findall(r"^\s+(\d+)\s{2}", table, re.MULTILINE)]
    assert ids == sorted(ids, reverse=True)  # newest first

    _code, everything = _run(capsys, "changes", "--config", str(week2), "--format", "json")
    newest = max(int(str(r["id"])) for r in _json(everything))
    _code, out = _run(capsys, "changes", "--config", str(week2), "--limit", "2", "--format", "json")
    limited = [int(str(r["id"])) for r in _json(out)]
    assert limited == [newest - 1, newest] or (len(limited) == 2 and max(limited) == newest)


def test_sources_and_check_show_failures_in_plain_sight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with PayerSiteFixture() as site:
        config = _config(tmp_path / "m.toml", f"sqlite:///{tmp_path / 'm.db'}", site.base_url)
        site.inject(DUPIXENT, Fault(status=200, body=b"%PDF-1.4 broken"), times=50)
        code, out = _run(capsys, "check", "--config", str(config))
        assert code == 0 and "partial" in out and DUPIXENT in out
        code, out = _run(capsys, "sources", "--config", str(config))
        assert code == 0
        failed = [line for line in out.splitlines() if line.strip().startswith("failed:")]
        assert len(failed) == 1 and DUPIXENT in failed[0] and len(failed[0]) > len(DUPIXENT) + 20

        # A site that is down: every index page fails, the run is failed and check exits 1.
        for index in (UHC_INDEX_PATH, AETNA_INDEX_PATH):
            site.inject(index, Fault(status=503), times=50)
        code, out = _run(capsys, "check", "--config", str(config))
        assert code == 1 and "acme: failed" in out and "nothing listed" in out
        _code, out = _run(capsys, "sources", "--config", str(config))
        assert "failed: listing" in out and "503" in out


def test_checklists_command(week2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, markdown = _run(capsys, "checklists", "--config", str(week2), "--drug", "Dupixent")
    assert code == 0
    assert markdown.startswith("# PA checklist: Dupixent / Acme Health")
    assert "A request must document:" in markdown
    code, out = _run(
        capsys, "checklists", "--config", str(week2), "--payer", "acme", "--format", "json"
    )
    bodies = _json(out)
    assert code == 0 and {b["label"] for b in bodies} >= {"Dupixent", "Tremfya"}
    assert all(b["items"] for b in bodies)
    code, html = _run(capsys, "checklists", "--config", str(week2), "--format", "html")
    assert code == 0 and html.count('<section class="checklist">') == len(bodies)
    code, old = _run(
        capsys, "checklists", "--config", str(week2), "--drug", "tremfya", "--as-of", "2026-02-01"
    )
    assert code == 0 and "lasts up to 6 months" in old
    code, _out = _run(capsys, "checklists", "--config", str(week2), "--drug", "nonesuch")
    assert code == 1


def test_global_options_after_the_command_and_levels_in_any_case(
    week2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sources", "--config", str(week2), "--log-level", "debug"]) == 0
    assert "acme (payer_policies)" in capsys.readouterr().out
    assert main(["--log-level", "Warning", "db", "check", "--config", str(week2)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("ok")


def test_read_only_commands_never_create_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = tmp_path / "nowhere.db"
    config = tmp_path / "m.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{expected}"\n')
    for command in (["changes"], ["status"], ["checklists"]):
        assert main(["--config", str(config), *command]) == 2
        assert str(expected) in capsys.readouterr().err
    assert main(["--config", str(config), "sources"]) == 0
    assert not expected.exists()


def test_read_only_database_and_a_schema_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    database = directory / "m.db"
    config = tmp_path / "m.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{database}"\n')
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    for leftover in directory.glob("m.db-*"):
        leftover.unlink()
    database.chmod(stat.S_IRUSR)
    directory.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(directory, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        assert main(["--config", str(config), "changes"]) == 0
        assert main(["--config", str(config), "sources"]) == 0
    finally:
        directory.chmod(stat.S_IRWXU)
        database.chmod(stat.S_IRUSR | stat.S_IWUSR)
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    capsys.readouterr()
    assert main(["--config", str(config), "changes"]) == 2
    err = capsys.readouterr().err
    assert "policy-monitor db upgrade" in err and len(err.splitlines()) == 1


def test_a_corrupt_database_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "m.db"
    database.write_bytes(b"this is no database " * 500)
    config = tmp_path / "m.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{database}"\n')
    for command in (["changes"], ["check"]):
        capsys.readouterr()
        assert main(["--config", str(config), *command]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and len(err) < 400, err
        assert "not a database" in err
    assert main(["--config", str(config), "db", "check"]) == 1
    out = capsys.readouterr().out
    assert "problem: file is not a database" in out and "what to do:" in out


def test_db_check_on_a_healthy_database(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "m.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n')
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["db", "check", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("ok")
    if database_url.startswith("sqlite"):
        assert "PRAGMA integrity_check" in out
    else:
        assert "amcheck" in out


def test_json_is_safe_to_pipe(week2: Path) -> None:
    command = (
        f"{sys.executable} -m monitor.cli changes --config {week2} --format json "
        f"--min-severity noise | head -1"
    )
    result = subprocess.run(
        ["sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert json.loads(result.stdout)["id"]
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr


def test_digest_preview_with_email_recipients_alone(
    week2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = week2.read_text().replace(
        "[[sources]]",
        '[email]\nrecipients = ["billing@example.org"]\n\n[[sources]]',
        1,
    )
    config = tmp_path / "email-only.toml"
    config.write_text(text)
    preview = tmp_path / "digest.html"
    plain = tmp_path / "digest.txt"
    assert (
        main(["digest", "--preview", str(preview), "--text", str(plain), "--config", str(config)])
        == 0
    )
    body = plain.read_text()
    assert "8 weeks -> 12 weeks" in body and "6 months -> 4 months" in body
    subject = body.splitlines()[0]
    counted = {s: int(n) for n, s in re.findall(r"(\d+) (high|medium|low)", subject)}
    listed: dict[str, int] = {}
    current = None
    for line in body.splitlines():
        if m := re.match(r"-- (HIGH|MEDIUM|LOW) --", line):
            current = m.group(1).lower()
        elif line.startswith("== "):
            current = None if "checklists" in line.lower() else current
        elif current and line.startswith("* "):
            listed[current] = listed.get(current, 0) + 1
    assert counted == listed, (subject, listed)


def test_get_sources_lists_each_failure_with_its_reason(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from api_support import serving

    from monitor.config import load_config
    from monitor.store.core import Store

    with PayerSiteFixture() as site:
        config_path = _config(tmp_path / "m.toml", database_url, site.base_url)
        site.inject(DUPIXENT, Fault(status=200, body=b"%PDF-1.4 broken"), times=50)
        assert main(["check", "--config", str(config_path)]) == 0
    capsys.readouterr()
    store = Store.open(database_url)
    try:
        with serving(store, config=load_config(str(config_path))) as api, api.client() as client:
            assert client.get("/sources", headers={"Authorization": ""}).status_code == 401
            body = client.get("/sources").json()
    finally:
        store.close()
    (source,) = body["items"]
    assert source["name"] == "acme" and source["last_run"]["outcome"] == "partial"
    assert DUPIXENT in source["last_run"]["error"]
    (failure,) = source["failures"]
    assert failure["document"] == DUPIXENT and failure["reason"]
