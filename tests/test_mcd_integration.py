"""The MCD export source end to end: `policy-monitor check` and `changes --format json` against
the export fixture on loopback; conditional GET, a cut download, zip bombs."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.cms_corpus.manifest import NOISE_ONLY_DOCUMENTS, WEEK2_EXPECTED
from fixtures.cms_corpus.model import ExpectedChange, scenario_named
from fixtures.mcd_export import Fault, McdExportFixture
from monitor.cli.main import main
from monitor.config import SourceConfig, parse_config
from monitor.pipeline.runner import RunSummary, run_source
from monitor.store.core import Store
from monitor.store.models.core import DocumentVersion


@pytest.fixture
def exports() -> Iterator[McdExportFixture]:
    with McdExportFixture(scenario="week1") as fixture:
        yield fixture


def _source(exports: McdExportFixture, **options: object) -> SourceConfig:
    table = {
        "name": "mcd",
        "kind": "mcd_downloads",
        "base_url": exports.exports_url,
        "backoff_seconds": 0.01,
        "max_retries": 1,
        "timeout_seconds": 10.0,
        **options,
    }
    return parse_config({"sources": [table]}).source("mcd")


def _run(exports: McdExportFixture, store: Store, week: str, **options: object) -> RunSummary:
    exports.set_scenario(week)
    today = scenario_named(week).today
    return asyncio.run(run_source(_source(exports, **options), store, today=lambda: today))


def _matches(record: dict[str, object], expected: ExpectedChange) -> bool:
    return (
        record["document_id"] == expected.document_id
        and record["kind"] == expected.kind
        and record["field"] == expected.field
        and (expected.before is None or record["before"] == expected.before)
        and (expected.after is None or record["after"] == expected.after)
    )


def test_check_and_changes_json_report_the_corpus_week2_changes(
    exports: McdExportFixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(f"""
[database]
url = "sqlite:///{tmp_path / "monitor.store.db"}"

[[sources]]
name = "mcd"
kind = "mcd_downloads"
base_url = "{exports.exports_url}"
backoff_seconds = 0.01
""")
    assert main(["--config", str(config), "check", "--source", "mcd"]) == 0
    assert "mcd: success (baseline) - 17 listed, 17 fetched, 17 new versions" in (
        capsys.readouterr().out
    )
    exports.set_scenario("week2")
    assert main(["--config", str(config), "check"]) == 0
    assert "mcd: success - 20 listed, 14 fetched" in capsys.readouterr().out

    assert main(["--config", str(config), "changes", "--format", "json", "--no-baseline"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for expected in WEEK2_EXPECTED:
        assert any(_matches(r, expected) for r in records), expected
    assert len(records) == len(WEEK2_EXPECTED)
    assert not {r["document_id"] for r in records} & set(NOISE_ONLY_DOCUMENTS)
    assert {r["source"] for r in records} == {"mcd"}
    assert all(
        str(r["url"]).startswith("https://www.cms.gov/medicare-coverage-database/") for r in records
    )


def test_unchanged_export_is_answered_304_and_publishes_nothing(
    exports: McdExportFixture, store: Store
) -> None:
    first = _run(exports, store, "week1")
    assert first.outcome == "success" and first.counts.new_versions == 17
    sent = exports.sent_bytes
    exports.reset_counters()
    again = _run(exports, store, "week1")
    assert again.outcome == "success"
    assert again.counts.listed == 0 and again.counts.new_versions == 0
    assert again.counts.requests == 3 and exports.request_count == 3
    assert exports.sent_bytes == sent  # three 304s, no body
    assert store.count(DocumentVersion) == 17


def test_rebuilt_export_with_the_same_content_publishes_nothing(
    exports: McdExportFixture, store: Store
) -> None:
    _run(exports, store, "week1")
    _run(exports, store, "week2")
    versions = store.count(DocumentVersion)
    # Week 3 has week 2's documents in zips built on another day: new bytes, same rows.
    week3 = _run(exports, store, "week3")
    assert week3.outcome == "success"
    assert week3.counts.listed == 20 and week3.counts.fetched == 0
    assert store.count(DocumentVersion) == versions


def test_cut_download_fails_the_run_and_the_next_run_catches_up(
    exports: McdExportFixture, store: Store
) -> None:
    # Two attempts (max_retries = 1), both cut halfway through the body.
    exports.inject(
        "/medicare-coverage-database/downloads/exports/current_article.zip",
        Fault.truncated(),
        times=2,
    )
    failed = _run(exports, store, "week1")
    assert failed.outcome == "failed"
    assert "current_article.zip" in (failed.error or "")
    assert store.count(DocumentVersion) == 0
    caught_up = _run(exports, store, "week1")
    assert caught_up.outcome == "success" and caught_up.counts.new_versions == 17


def _zip_bomb(path: Path, *, inner_bytes: int) -> Path:
    """current_lcd.zip whose lcd.csv is a header and then `inner_bytes` of one repeated row."""
    csv_zip = io.BytesIO()
    with (
        zipfile.ZipFile(csv_zip, "w", compression=zipfile.ZIP_DEFLATED) as inner,
        inner.open("lcd.csv", "w") as member,
    ):
        member.write(b"lcd_id,lcd_version,title\r\n")
        row = b"33979,12," + b"A" * 1000 + b"\r\n"
        for _ in range(inner_bytes // len(row)):
            member.write(row)
    with zipfile.ZipFile(path, "w") as outer:
        outer.writestr("current_lcd_csv.zip", csv_zip.getvalue())
    return path


def test_zip_bomb_is_refused_with_a_clear_error_and_nothing_published(
    exports: McdExportFixture, store: Store, tmp_path: Path
) -> None:
    exports.override("current_lcd.zip", _zip_bomb(tmp_path / "bomb.zip", inner_bytes=30_000_000))
    summary = _run(exports, store, "week1")
    assert summary.outcome == "failed"
    assert "lcd.csv expands" in (summary.error or "")
    assert "max_compression_ratio" in (summary.error or "")
    assert "zip bomb" in (summary.error or "")
    assert store.count(DocumentVersion) == 0


def test_export_expanding_past_the_total_limit_is_refused(
    exports: McdExportFixture, store: Store
) -> None:
    summary = _run(exports, store, "week1", max_uncompressed_bytes=500_000)
    assert summary.outcome == "failed"
    assert "max_uncompressed_bytes" in (summary.error or "")
    assert store.count(DocumentVersion) == 0
    # With the default limit the same export loads.
    assert _run(exports, store, "week1").counts.new_versions == 17


def test_download_over_the_size_limit_is_refused(exports: McdExportFixture, store: Store) -> None:
    summary = _run(exports, store, "week1", max_download_bytes=10_000)
    assert summary.outcome == "failed"
    assert "larger than 10000 bytes" in (summary.error or "")
    assert store.count(DocumentVersion) == 0
