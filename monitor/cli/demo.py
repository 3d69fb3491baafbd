"""`policy-monitor demo`: the whole pipeline on the bundled fixtures, no network, no set-up.

Starts the fixture servers on free loopback ports (CMS Coverage API, MCD bulk exports of the same
corpus, a payer policy site, two MAC sites, an SMTP server), runs week 1 (the baseline) and week 2
of every source against a SQLite database in a temporary directory, and prints week 2's changes,
the export/API reconciliation, a PA checklist and the digest email as it arrived over SMTP.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import tomllib
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from fixtures.cms_api import CmsApiFixture
from fixtures.cms_corpus.model import scenario_named
from fixtures.mac_sites import MacSitesFixture
from fixtures.mcd_export import McdExportFixture
from fixtures.payer_site import AETNA_INDEX_PATH, UHC_INDEX_PATH, PayerSiteFixture
from fixtures.smtp import Inbox, body_text, smtp_server
from monitor.config import Config, parse_config
from monitor.pipeline.reconcile import reconcile
from monitor.pipeline.runner import RunSummary, run_source
from monitor.report import grouped_report, render_checklist
from monitor.store.checklists import find_checklists
from monitor.store.core import Store

CMS_SOURCE = "cms-fixture"
MCD_SOURCE = "mcd-export-fixture"
PAYER_SOURCE = "acme-health-fixture"
MAC_SOURCE = "novitas-fixture"
DIGEST_LINES = 40  # of the digest's text part, printed


def _fixed(day: dt.date) -> Callable[[], dt.date]:
    return lambda: day


def _config(
    database: Path, cms_url: str, mcd_url: str, payer_url: str, mac: MacSitesFixture, smtp_port: int
) -> Config:
    mac_feed = tomllib.loads(mac.config_sources(prefix="demo-"))["sources"][0]
    mac_feed["name"] = MAC_SOURCE
    return parse_config(
        {
            "database": {"url": f"sqlite:///{database}"},
            "email": {
                "host": "127.0.0.1",
                "port": smtp_port,
                "from_address": "policy-monitor@demo.invalid",
            },
            # The MCD export source watches the same documents as the API source (it is there
            # to reconcile), so the digest leaves it out rather than list each change twice.
            "recipients": [
                {
                    "name": "compliance",
                    "addresses": ["compliance@demo.invalid"],
                    "sources": [CMS_SOURCE, PAYER_SOURCE, MAC_SOURCE],
                }
            ],
            "sources": [
                {
                    "name": CMS_SOURCE,
                    "kind": "cms_coverage",
                    "base_url": cms_url,
                    "backoff_seconds": 0.1,
                },
                {"name": MCD_SOURCE, "kind": "mcd_downloads", "base_url": mcd_url},
                {
                    "name": PAYER_SOURCE,
                    "kind": "payer_policies",
                    "payer": "Acme Health",
                    "start_urls": [payer_url + UHC_INDEX_PATH, payer_url + AETNA_INDEX_PATH],
                    "allow": ["/policies/drug/", "/cpb/medical/data/"],
                    "download_delay_seconds": 0.0,
                },
                mac_feed,
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
        with ExitStack() as servers:
            cms = servers.enter_context(CmsApiFixture(scenario="week1", scale=scale))
            mcd = servers.enter_context(McdExportFixture(scenario="week1", scale=scale))
            payers = servers.enter_context(PayerSiteFixture())
            macs = servers.enter_context(MacSitesFixture())
            inbox = Inbox()
            smtp = servers.enter_context(smtp_server(inbox))
            config = _config(
                database, cms.base_url, mcd.exports_url, payers.base_url, macs, smtp.port
            )
            store = Store.open(config.database.url)
            try:
                print(
                    f"Fixture servers: CMS Coverage API {cms.base_url}, MCD exports "
                    f"{mcd.exports_url}, payer site {payers.base_url}, MAC sites "
                    f"{macs.base_url}, SMTP 127.0.0.1:{smtp.port}; database {database}"
                )
                last: dict[str, RunSummary] = {}
                for week in ("week1", "week2"):
                    for fixture in (cms, mcd, payers, macs):
                        fixture.set_scenario(week)
                    today = scenario_named(week).today
                    for source in config.sources:
                        summary = asyncio.run(
                            run_source(
                                source, store, today=_fixed(today), quarantine=config.quarantine
                            )
                        )
                        print(f"{week}: {summary.line()}")
                        if summary.outcome == "failed":
                            return 1
                        last[source.name] = summary
                print()
                _report(store, last, today)
                _reconciliation(store)
                _checklist(store)
                _digest(store, config, inbox)
            finally:
                store.close()
        if keep:
            print(f"Database kept: {database}")
    return 0


def _report(store: Store, last: dict[str, RunSummary], today: dt.date) -> None:
    titles = {
        CMS_SOURCE: f"CMS coverage: changes found in week 2, as of {today}",
        PAYER_SOURCE: "Acme Health policies: changes found in week 2",
        MAC_SOURCE: "Novitas bulletins: published in week 2",
    }
    for name, title in titles.items():
        print(
            grouped_report(store.changes(run_id=last[name].run_id, min_severity="low"), title=title)
        )
    noise = sorted(
        {
            c.document_id
            for name in titles
            for c in store.changes(run_id=last[name].run_id)
            if c.kind == "noise_only"
        }
    )
    if noise:
        print(f"Re-published with no substantive change (kept, never alerted): {', '.join(noise)}")
    print()


def _reconciliation(store: Store) -> None:
    report = reconcile(store, api_source=CMS_SOURCE, export_source=MCD_SOURCE)
    print(
        f"MCD bulk export vs CMS Coverage API: {report.documents_compared} documents compared, "
        f"{len(report.differences)} differences (the export source saw the same week-2 "
        f"changes: {len(store.changes(source=MCD_SOURCE, include_baseline=False))})"
    )
    print()


def _checklist(store: Store) -> None:
    for record in find_checklists(store, payer="Acme Health", drug="dupilumab"):
        print("PA checklist, as published after week 2:")
        print(render_checklist(record, "markdown").strip())
        print()


def _digest(store: Store, config: Config, inbox: Inbox) -> None:
    from notifications.demo import send_digest  # jinja2 templates load on first use

    send_digest(store, config)
    messages = inbox.messages()
    if not messages:
        print("No digest was sent (nothing to report).")
        return
    message = messages[-1]
    print(f"Digest email received by the local SMTP server: {message['Subject']}")
    lines = body_text(message).splitlines()
    print("\n".join("    " + line for line in lines[:DIGEST_LINES]))
    if len(lines) > DIGEST_LINES:
        print(f"    … ({len(lines) - DIGEST_LINES} more lines; HTML part too)")
