"""`policy-monitor demo`: the whole pipeline on the bundled fixtures, no network, no set-up.

Starts the CMS Coverage API fixture and the payer policy fixture site on free loopback ports,
runs week 1 (the baseline) and week 2 of both against a SQLite database in a temporary
directory, and prints week 2's changes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path

from fixtures.cms_api import CmsApiFixture
from fixtures.cms_corpus.model import scenario_named
from fixtures.payer_site import AETNA_INDEX_PATH, UHC_INDEX_PATH, PayerSiteFixture
from monitor.config import Config, parse_config
from monitor.report import grouped_report
from monitor.runner import RunSummary, run_source
from monitor.store import Store

CMS_SOURCE = "cms-fixture"
PAYER_SOURCE = "acme-health-fixture"


def _fixed(day: dt.date) -> Callable[[], dt.date]:
    return lambda: day


def _config(database: Path, cms_url: str, payer_url: str) -> Config:
    return parse_config(
        {
            "database": {"url": f"sqlite:///{database}"},
            "sources": [
                {
                    "name": CMS_SOURCE,
                    "kind": "cms_coverage",
                    "base_url": cms_url,
                    "backoff_seconds": 0.1,
                },
                {
                    "name": PAYER_SOURCE,
                    "kind": "payer_policies",
                    "payer": "Acme Health",
                    "start_urls": [payer_url + UHC_INDEX_PATH, payer_url + AETNA_INDEX_PATH],
                    "allow": ["/policies/drug/", "/cpb/medical/data/"],
                    "download_delay_seconds": 0.0,
                },
            ],
        }
    )


def run_demo(*, keep: str | None = None, scale: str = "sample") -> int:
    with tempfile.TemporaryDirectory(prefix="policy-monitor-demo-") as scratch:
        directory = Path(keep) if keep else Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        database = directory / "demo.db"
        for stale in directory.glob("demo.db*"):
            stale.unlink()
        with CmsApiFixture(scenario="week1", scale=scale) as cms, PayerSiteFixture() as payers:
            config = _config(database, cms.base_url, payers.base_url)
            store = Store.open(config.database.url)
            try:
                print(
                    f"Fixture CMS Coverage API at {cms.base_url}, fixture payer site at "
                    f"{payers.base_url}; database {database}"
                )
                last: dict[str, RunSummary] = {}
                for week in ("week1", "week2"):
                    cms.set_scenario(week)
                    payers.set_scenario(week)
                    today = scenario_named(week).today
                    for source in config.sources:
                        summary = asyncio.run(run_source(source, store, today=_fixed(today)))
                        print(f"{week}: {summary.line()}")
                        if summary.outcome == "failed":
                            return 1
                        last[source.name] = summary
                print()
                print(
                    grouped_report(
                        store.changes(run_id=last[CMS_SOURCE].run_id, min_severity="low"),
                        title=f"CMS coverage: changes found in week 2, as of {today}",
                    )
                )
                print(
                    grouped_report(
                        store.changes(run_id=last[PAYER_SOURCE].run_id, min_severity="low"),
                        title="Acme Health policies: changes found in week 2",
                    )
                )
                noise = sorted(
                    {
                        c.document_id
                        for name in (CMS_SOURCE, PAYER_SOURCE)
                        for c in store.changes(run_id=last[name].run_id)
                        if c.kind == "noise_only"
                    }
                )
                if noise:
                    print(
                        f"Re-published with no substantive change (kept, never alerted): "
                        f"{', '.join(noise)}"
                    )
            finally:
                store.close()
        if keep:
            print(f"Database kept: {database}")
    return 0
