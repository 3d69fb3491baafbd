"""`policy-monitor demo`: the whole pipeline on the bundled fixtures, no network, no set-up.

Starts the CMS Coverage API fixture server on a free loopback port, runs week 1 (the baseline)
and week 2 against a SQLite database in a temporary directory, and prints week 2's changes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path

from fixtures.cms_api import CmsApiFixture
from fixtures.cms_corpus.model import scenario_named
from monitor.config import parse_config
from monitor.report import grouped_report
from monitor.runner import run_source
from monitor.store import Store

SOURCE_NAME = "cms-fixture"


def _fixed(day: dt.date) -> Callable[[], dt.date]:
    return lambda: day


def run_demo(*, keep: str | None = None, scale: str = "sample") -> int:
    with tempfile.TemporaryDirectory(prefix="policy-monitor-demo-") as scratch:
        directory = Path(keep) if keep else Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        database = directory / "demo.db"
        if database.exists():
            database.unlink()
        with CmsApiFixture(scenario="week1", scale=scale) as server:
            config = parse_config(
                {
                    "database": {"url": f"sqlite:///{database}"},
                    "sources": [
                        {
                            "name": SOURCE_NAME,
                            "kind": "cms_coverage",
                            "base_url": server.base_url,
                            "backoff_seconds": 0.1,
                        }
                    ],
                }
            )
            source = config.source(SOURCE_NAME)
            store = Store.open(config.database.url)
            try:
                print(f"Fixture CMS Coverage API at {server.base_url}; database {database}")
                for week in ("week1", "week2"):
                    server.set_scenario(week)
                    today = scenario_named(week).today
                    summary = asyncio.run(run_source(source, store, today=_fixed(today)))
                    print(f"{week} ({today}): {summary.line()}")
                    if summary.outcome == "failed":
                        return 1
                print()
                print(
                    grouped_report(
                        store.changes(run_id=summary.run_id),
                        title=f"Changes found in week 2 (compared with week 1), as of {today}",
                    )
                )
            finally:
                store.close()
        if keep:
            print(
                f"Database kept: {database}  (try: policy-monitor --config <file with "
                f'[database] url = "sqlite:///{database}"> changes --format json)'
            )
    return 0
