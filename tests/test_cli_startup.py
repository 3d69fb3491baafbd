"""The CLI starts light: `--help` and the read commands do not load the pipeline's libraries.

Speed itself is measured in `bench/cli_startup.py`; these tests check the structure that makes it
(which modules a fresh interpreter has loaded), and that the names the CLI spells out for its
argument choices, so as not to import their owners, agree with those owners.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HEAVY = (
    "sqlalchemy",
    "alembic",
    "httpx",
    "scrapy",
    "pdfplumber",
    "trafilatura",
    "bs4",
    "fastapi",
    "jinja2",
    "fhir.resources",
    "asyncio",
    "diffing.extract.document",
    "diffing.parse",
    "sources.cms_coverage",
    "monitor.pipeline.runner",
)


def _loaded_after(code: str) -> set[str]:
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_help_parser_loads_no_heavy_library() -> None:
    loaded = _loaded_after(
        "import importlib\n"
        "main = importlib.import_module('monitor.cli.main')\n"
        "main.build_parser().format_help()"
    )
    assert "monitor.cli.main" in loaded
    assert sorted(name for name in HEAVY if name in loaded) == []


def test_reading_a_config_loads_no_source_implementation() -> None:
    loaded = _loaded_after(
        "from monitor.config import parse_config\n"
        "parse_config({'sources': ["
        "{'name': 'cms', 'kind': 'cms_coverage'},"
        "{'name': 'p', 'kind': 'payer_policies', 'payer': 'P',"
        " 'documents': ['https://example.org/a.pdf']}]})"
    )
    assert "monitor.config" in loaded
    assert sorted(name for name in HEAVY if name in loaded) == []


def test_store_loads_without_parsers_or_alembic() -> None:
    loaded = _loaded_after("import monitor.store.core, monitor.report")
    assert "sqlalchemy" in loaded
    unexpected = {"alembic", "pdfplumber", "trafilatura", "scrapy", "jinja2", "diffing.parse"}
    assert sorted(unexpected & loaded) == []


def test_cli_choice_lists_match_their_owners() -> None:
    from monitor.api.compare import CRITERIA
    from monitor.cli import api as cli_api
    from monitor.cli import compare as cli_compare
    from monitor.cli import quarantine as cli_quarantine
    from monitor.store.api_keys import Scope
    from monitor.store.models.quarantine import STATUSES

    assert tuple(s.value for s in Scope) == cli_api.SCOPES
    assert cli_quarantine.STATUSES == STATUSES
    assert cli_compare.CRITERIA == CRITERIA


def test_cms_document_types_match_the_reports() -> None:
    from sources.cms_coverage import REPORTS
    from sources.options import CMS_DOCUMENT_TYPES

    assert set(CMS_DOCUMENT_TYPES) == {spec[0] for spec in REPORTS.values()}


def test_schema_head_read_from_the_files_is_alembics(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    from monitor.store.db import _alembic_config, current_revision, make_engine, schema_head

    assert schema_head() == ScriptDirectory.from_config(_alembic_config()).get_current_head()
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        assert current_revision(engine) is None
        from monitor.store.db import upgrade

        upgrade(engine)
        assert current_revision(engine) == schema_head()
    finally:
        engine.dispose()


@pytest.mark.parametrize("argv", [["--help"], ["changes", "--help"], ["checklists", "--help"]])
def test_help_exits_zero_and_names_the_commands(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monitor.cli", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: policy-monitor" in result.stdout


@pytest.mark.parametrize("imported", ["monitor.pipeline.worker, sources", "monitor.pipeline.warm"])
def test_an_extraction_worker_loads_the_parsers_not_the_store(imported: str) -> None:
    """Extraction workers import `monitor.pipeline.worker` (the function they run), and their
    fork server `monitor.pipeline.warm`: neither the store, SQLAlchemy, the HTTP clients nor
    the runner."""
    loaded = _loaded_after(f"import {imported}")
    assert "monitor.pipeline.worker" in loaded
    stays_out = ("sqlalchemy", "alembic", "httpx", "aiohttp", "scrapy", "fastapi", "jinja2")
    assert sorted(name for name in stays_out if name in loaded) == []
    assert sorted(m for m in loaded if m.startswith(("monitor.store", "monitor.pipeline.r"))) == []
