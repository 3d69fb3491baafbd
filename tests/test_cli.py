"""The `policy-monitor` command line against the fixture server: check, changes, sources."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.cms_api import CmsApiFixture, Fault
from monitor.cli.main import main

FIELDS = {
    "id",
    "source",
    "document_id",
    "title",
    "kind",
    "field",
    "before",
    "after",
    "severity",
    "effective_date",
    "detected_at",
    "url",
}


@pytest.fixture
def server() -> Iterator[CmsApiFixture]:
    with CmsApiFixture(scenario="week1") as fixture:
        yield fixture


@pytest.fixture
def config_file(tmp_path: Path, server: CmsApiFixture) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(f"""
[database]
url = "sqlite:///{tmp_path / "monitor.store.db"}"

[[sources]]
name = "cms"
kind = "cms_coverage"
base_url = "{server.base_url}"
backoff_seconds = 0.01
max_retries = 1
""")
    return path


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_check_then_changes_as_json(
    server: CmsApiFixture, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_file), "check"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("cms: success (baseline) - 17 listed, 17 fetched")

    server.set_scenario("week2")
    assert main(["--config", str(config_file), "check", "--source", "cms"]) == 0
    capsys.readouterr()

    assert main(["--config", str(config_file), "changes", "--format", "json", "--no-baseline"]) == 0
    records = _json_lines(capsys.readouterr().out)
    assert records and all(set(r) >= FIELDS for r in records)
    removed = [r for r in records if r["kind"] == "code_removed" and r["before"] == "L82.0"]
    assert removed and removed[0]["document_id"] == "A57520"
    assert removed[0]["severity"] == "high"
    assert str(removed[0]["url"]).startswith("https://www.cms.gov/")

    assert (
        main(
            [
                "--config",
                str(config_file),
                "changes",
                "--format",
                "json",
                "--document",
                "A57520",
                "--no-baseline",
            ]
        )
        == 0
    )
    only = _json_lines(capsys.readouterr().out)
    assert only and {r["document_id"] for r in only} == {"A57520"}

    assert not [r for r in records if r["severity"] == "noise"]  # hidden by default
    cfg = ["--config", str(config_file), "changes", "--format", "json", "--no-baseline"]
    assert main([*cfg, "--min-severity", "noise"]) == 0
    noise = [r for r in _json_lines(capsys.readouterr().out) if r["severity"] == "noise"]
    assert {r["document_id"] for r in noise} == {"L34938", "L34216"}
    assert main([*cfg, "--min-severity", "high"]) == 0
    assert {r["severity"] for r in _json_lines(capsys.readouterr().out)} == {"high"}

    assert (
        main(["--config", str(config_file), "changes", "--format", "json", "--since", "2999-01-01"])
        == 0
    )
    assert capsys.readouterr().out == ""

    assert main(["--config", str(config_file), "changes", "--format", "table"]) == 0
    assert "L82.0" in capsys.readouterr().out


def test_sources_shows_last_run_and_error(
    server: CmsApiFixture, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_file), "sources"]) == 0
    assert "cms (cms_coverage): never run" in capsys.readouterr().out
    server.inject("/v1/reports/local-coverage-final-lcds", Fault(status=500), times=10)
    assert main(["--config", str(config_file), "check"]) == 1
    capsys.readouterr()
    assert main(["--config", str(config_file), "sources"]) == 0
    out = capsys.readouterr().out
    assert "failed" in out and "listing failed" in out and "HTTP 500" in out


def test_config_error_is_reported_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[sources]]\nname = "cms"\nkind = "cms_coverage"\nbase_url = 5\n')
    assert main(["--config", str(bad), "check"]) == 2
    err = capsys.readouterr().err
    assert "sources.cms.base_url" in err and str(bad) in err


def test_unknown_source_name_lists_the_configured_ones(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_file), "check", "--source", "nope"]) == 2
    assert "allowed: cms" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(330)  # a hang guard: the whole demo, on a machine other jobs share
def test_installed_demo_command_runs(tmp_path: Path) -> None:
    """The console script as a user runs it: a real process, no network, no set-up."""
    result = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "demo", "--keep", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard, not a speed test: this shared machine is often loaded
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "CMS coverage: changes found in week 2" in result.stdout
    assert "code removed (ICD-10 covered): L82.0" in result.stdout
    # One fact, named by indication and branch, in the policy's own units (56 -> 84 days).
    assert "atopic dermatitis, initial" in result.stdout
    assert "8 weeks → 12 weeks" in result.stdout
    assert "Re-published with no substantive change" in result.stdout
    assert "Novitas bulletin of 2026-02-03 mentions L33979" in result.stdout
    assert re.search(
        r"MCD bulk export vs CMS Coverage API: \d+ documents compared, 0 differ", result.stdout
    )
    assert (
        "4. Trial of medium-, high-, or super-high-potency topical corticosteroid for at least "
        "12 weeks"
    ) in result.stdout
    assert re.search(r"Digest email received by the local SMTP server: \d+ high", result.stdout)
    # Issue 15: the failed document and its reason in `sources`. Issue 19: the checklist as a
    # FHIR Questionnaire, a coverage answer, a short-notice change, the compare table.
    assert re.search(
        r"failed: /beacon/pharmacy/archive/otezla-apremilast\.pdf: .*truncated PDF", result.stdout
    )
    assert "resourceType: Questionnaire, status: active" in result.stdout
    assert "item item-2 (decimal): Patient age >= 6 months" in result.stdout
    assert "L28.1: conditional, PA auth-needed" in result.stdout
    assert re.search(
        r"step therapy changed .*: 4 weeks → 6 weeks\n.*short notice: effective 14 days after "
        r"first seen",
        result.stdout,
    )
    assert "Beacon Health: Dupixent (dupilumab) Injection" in result.stdout
    assert "topical corticosteroid for 12 weeks *" in result.stdout
    assert (tmp_path / "demo.db").exists()


def test_check_skips_a_source_whose_run_is_in_progress_elsewhere(
    server: CmsApiFixture, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from monitor.config import load_config
    from monitor.store.locks import source_locks

    locks = source_locks(load_config(config_file).database.url)
    lease = locks.try_acquire("cms")  # as a running daemon would hold it
    assert lease is not None
    try:
        assert main(["--config", str(config_file), "check"]) == 1
        assert "cms: skipped - a run of this source is in progress" in capsys.readouterr().out
        assert server.request_count == 0
    finally:
        lease.release()
        locks.close()
    assert main(["--config", str(config_file), "check"]) == 0
