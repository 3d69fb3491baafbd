"""The API fixture and the export fixture of the same corpus, run into one database, reconcile
with zero differences; a planted difference in the export is reported."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.cms_api import CmsApiFixture
from fixtures.cms_corpus.model import scenario_named
from fixtures.mcd_export import McdExportFixture
from monitor.cli.main import main
from monitor.config import Config, parse_config
from monitor.pipeline.reconcile import reconcile
from monitor.pipeline.runner import run_source
from monitor.store.core import Store


@pytest.fixture
def servers() -> Iterator[tuple[CmsApiFixture, McdExportFixture]]:
    with CmsApiFixture(scenario="week1") as api, McdExportFixture(scenario="week1") as exports:
        yield api, exports


def _config(api: CmsApiFixture, exports: McdExportFixture, database_url: str) -> Config:
    return parse_config(
        {
            "database": {"url": database_url},
            "sources": [
                {"name": "cms", "kind": "cms_coverage", "base_url": api.base_url},
                {"name": "mcd", "kind": "mcd_downloads", "base_url": exports.exports_url},
            ],
        }
    )


def _run_both(config: Config, store: Store, week: str) -> None:
    today = scenario_named(week).today
    for name in ("cms", "mcd"):
        summary = asyncio.run(run_source(config.source(name), store, today=lambda: today))
        assert summary.outcome == "success", summary.line()


def test_api_and_export_of_one_corpus_reconcile_with_zero_differences(
    servers: tuple[CmsApiFixture, McdExportFixture], database_url: str
) -> None:
    api, exports = servers
    config = _config(api, exports, database_url)
    store = Store.open(database_url)
    try:
        _run_both(config, store, "week1")
        first = reconcile(store, api_source="cms", export_source="mcd")
        assert first.documents_compared == 17 and first.differences == ()
        api.set_scenario("week2")
        exports.set_scenario("week2")  # includes a cp1252 byte in L34216's indication
        _run_both(config, store, "week2")
        second = reconcile(store, api_source="cms", export_source="mcd")
        assert second.documents_compared == 19 and second.differences == ()

        # The two sources saw the same changes.
        def seen(source: str) -> list[tuple[object, ...]]:
            return sorted(
                (c.document_id, c.kind, c.field, c.before, c.after, c.version)
                for c in store.changes(source=source, include_baseline=False)
            )

        assert seen("cms") == seen("mcd") and len(seen("mcd")) == 15
    finally:
        store.close()


def _rewrite(source: Path, target: Path, edit: dict[str, object]) -> Path:
    """Copy an export zip, replacing CSV members of its inner zip: name -> function(text)."""
    with zipfile.ZipFile(source) as outer:
        inner_name = next(n for n in outer.namelist() if n.endswith("_csv.zip"))
        inner_bytes = outer.read(inner_name)
        others = {n: outer.read(n) for n in outer.namelist() if n != inner_name}
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(inner_bytes)) as inner,
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as copy,
    ):
        for name in inner.namelist():
            data = inner.read(name)
            if name in edit:
                data = edit[name](data.decode("utf-8")).encode("utf-8")  # type: ignore[operator]
            copy.writestr(name, data)
    with zipfile.ZipFile(target, "w") as outer_copy:
        for name, data in others.items():
            outer_copy.writestr(name, data)
        outer_copy.writestr(inner_name, buffer.getvalue())
    return target


def test_a_planted_difference_is_reported(
    servers: tuple[CmsApiFixture, McdExportFixture],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api, exports = servers
    database_url = f"sqlite:///{tmp_path / 'monitor.store.db'}"
    directory = exports.directory()

    def drop_l82_0(text: str) -> str:  # A57520 loses one covered diagnosis
        lines = text.split("\r\n")
        kept = [line for line in lines if not (line.startswith("57520,") and ",L82.0," in line)]
        assert len(kept) == len(lines) - 1
        return "\r\n".join(kept)

    def drop_an_ncd(text: str) -> str:
        lines = text.split("\r\n")
        return "\r\n".join(line for line in lines if ",270.1," not in line)

    exports.override(
        "current_article.zip",
        _rewrite(
            directory / "current_article.zip",
            tmp_path / "current_article.zip",
            {"article_x_icd10_covered.csv": drop_l82_0},
        ),
    )
    exports.override(
        "ncd.zip",
        _rewrite(directory / "ncd.zip", tmp_path / "ncd.zip", {"ncd_trkg.csv": drop_an_ncd}),
    )
    config_path = tmp_path / "monitor.toml"
    config_path.write_text(f"""
[database]
url = "{database_url}"

[[sources]]
name = "cms"
kind = "cms_coverage"
base_url = "{api.base_url}"

[[sources]]
name = "mcd"
kind = "mcd_downloads"
base_url = "{exports.exports_url}"
""")
    assert main(["--config", str(config_path), "check"]) == 0
    capsys.readouterr()
    code = main(
        [
            "--config",
            str(config_path),
            "reconcile",
            "--api",
            "cms",
            "--export",
            "mcd",
            "--format",
            "json",
        ]
    )
    assert code == 1
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {
        "document_id": "A57520",
        "kind": "codes_differ",
        "field": "icd10_covered",
        "api": "L82.0",
        "export": None,
    } in found
    assert {
        "document_id": "NCD 270.1",
        "kind": "missing_from_export",
        "field": None,
        "api": None,
        "export": None,
    } in found
    assert len(found) == 2
    assert main(["--config", str(config_path), "reconcile", "--api", "cms", "--export", "mcd"]) == 1
    table = capsys.readouterr().out
    assert "17 documents, 2 differences" in table and "missing from export" in table
    # The kinds are checked: an export source given as the API is refused.
    assert main(["--config", str(config_path), "reconcile", "--api", "mcd", "--export", "cms"]) == 2


@pytest.mark.slow
@pytest.mark.fullscale
@pytest.mark.timeout(1800)  # two full-scale baselines (the API one alone is about a minute)
def test_full_scale_api_and_export_reconcile_with_zero_differences(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'monitor.store.db'}"
    with (
        CmsApiFixture(scenario="week2", scale="full") as api,
        McdExportFixture(scenario="week2", scale="full") as exports,
    ):
        store = Store.open(database_url)
        try:
            _run_both(_config(api, exports, database_url), store, "week2")
            report = reconcile(store, api_source="cms", export_source="mcd")
        finally:
            store.close()
    assert report.documents_compared > 3400
    assert report.differences == ()
