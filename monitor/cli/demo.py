"""`policy-monitor demo`: the whole pipeline on the bundled fixtures, no network, no set-up.

Starts the fixture servers on free loopback ports (CMS Coverage API, MCD bulk exports of the same
corpus, a payer policy site, two MAC sites, an SMTP server), runs week 1 (the baseline) and week 2
of every source against a SQLite database in a temporary directory, and prints week 2's changes,
the export/API reconciliation, a PA checklist and the digest email as it arrived over SMTP; then
what `sources` shows (a second payer's truncated PDF failed, and why), the checklist as a FHIR
Questionnaire (abridged), a coverage answer for one code, a change flagged short notice and the
cross-payer compare table for Dupixent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from fixtures.cms_api import CmsApiFixture
from fixtures.cms_corpus.model import scenario_named
from fixtures.mac_sites import MacSitesFixture
from fixtures.mcd_export import McdExportFixture
from fixtures.payer_site import AETNA_INDEX_PATH, UHC_INDEX_PATH, PayerSiteFixture
from fixtures.payer_site.demo_extras import DEMO_DOCUMENT_PATHS, DEMO_PAYER
from fixtures.smtp import Inbox, body_text, smtp_server
from monitor.config import Config, parse_config
from monitor.pipeline.reconcile import reconcile
from monitor.pipeline.runner import RunSummary, run_source
from monitor.report import describe, grouped_report, render_checklist
from monitor.store.checklists import ChecklistRecord, find_checklists
from monitor.store.core import Store

CMS_SOURCE = "cms-fixture"
MCD_SOURCE = "mcd-export-fixture"
PAYER_SOURCE = "acme-health-fixture"
SECOND_PAYER_SOURCE = "beacon-health-fixture"
MAC_SOURCE = "novitas-fixture"
DIGEST_LINES = 40  # of the digest's text part, printed
FHIR_ITEMS = 5  # of the Questionnaire's items, printed
COVERAGE_CODE = "L28.1"  # prurigo nodularis: a diagnosis only the Dupixent policy covers


def _fixed(day: dt.date) -> Callable[[], dt.date]:
    return lambda: day


def _config(
    database: Path, cms_url: str, mcd_url: str, payer_url: str, mac: MacSitesFixture, smtp_port: int
) -> Config:
    return parse_config(
        config_table(f"sqlite:///{database}", cms_url, mcd_url, payer_url, mac, smtp_port)
    )


def config_table(
    database_url: str,
    cms_url: str,
    mcd_url: str,
    payer_url: str,
    mac: MacSitesFixture,
    smtp_port: int,
) -> dict[str, Any]:
    """The demo's config (as TOML would give it) for fixture servers at these addresses."""
    mac_feed = tomllib.loads(mac.config_sources(prefix="demo-"))["sources"][0]
    mac_feed["name"] = MAC_SOURCE
    return {
        "database": {"url": database_url},
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
                "sources": [CMS_SOURCE, PAYER_SOURCE, SECOND_PAYER_SOURCE, MAC_SOURCE],
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
            # A second payer's two documents, listed explicitly: a Dupixent policy whose
            # week-2 revision takes effect in two weeks, and a truncated PDF.
            {
                "name": SECOND_PAYER_SOURCE,
                "kind": "payer_policies",
                "payer": DEMO_PAYER,
                "documents": [payer_url + path for path in DEMO_DOCUMENT_PATHS],
                "download_delay_seconds": 0.0,
            },
            mac_feed,
        ],
    }


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
                    summaries = asyncio.run(run_week(config, store, today))
                    for source, summary in zip(config.sources, summaries, strict=True):
                        print(f"{week}: {summary.line()}")
                        if summary.outcome == "failed":
                            return 1
                        last[source.name] = summary
                print()
                _report(store, last, today)
                _reconciliation(store)
                _checklist(store)
                _digest(store, config, inbox)
                _sources(store, config)
                _questionnaire(store, config)
                _coverage(store, config)
                _short_notice(store)
                _compare(store)
            finally:
                store.close()
        if keep:
            print(f"Database kept: {database}")
    return 0


async def run_week(config: Config, store: Store, today: dt.date) -> list[RunSummary]:
    """Every source's run of one week, together (as the daemon runs them): most of a payer
    run is waiting for its crawl's child process, which need not hold up the others."""
    runs = [
        run_source(source, store, today=_fixed(today), quarantine=config.quarantine)
        for source in config.sources
    ]
    return list(await asyncio.gather(*runs))


def _report(store: Store, last: dict[str, RunSummary], today: dt.date) -> None:
    titles = {
        CMS_SOURCE: f"CMS coverage: changes found in week 2, as of {today}",
        PAYER_SOURCE: "Acme Health policies: changes found in week 2",
        SECOND_PAYER_SOURCE: f"{DEMO_PAYER} policies: changes found in week 2",
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


def _sources(store: Store, config: Config) -> None:
    """What `policy-monitor sources` prints: each source's last run and what failed in it."""
    print()
    print("Sources (policy-monitor sources):")
    for status in store.source_statuses([(s.name, s.kind) for s in config.sources]):
        run = status.last_run
        if run is None:
            print(f"{status.name} ({status.kind}): never run")
            continue
        print(
            f"{status.name} ({status.kind}): {run.outcome}, {status.documents} documents, "
            f"{run.new_versions} new versions, {run.changes} changes, {run.errors} errors"
        )
        for failure in status.failures:
            print(f"    failed: {failure.document or 'listing'}: {failure.reason}")
    print()


def _dupixent(store: Store) -> ChecklistRecord | None:
    found = find_checklists(store, payer="Acme Health", drug="dupilumab")
    return found[0] if found else None


def _questionnaire(store: Store, config: Config) -> None:
    from monitor.fhir import questionnaire_for  # fhir.resources loads only when needed

    record = _dupixent(store)
    if record is None:
        return
    resource = questionnaire_for(store, record, public_url=config.api.public_url)
    data = resource.model_dump(mode="json", exclude_none=True)
    period = data.get("effectivePeriod", {})
    contexts = [f"{c['code']['code']}={_context_value(c)}" for c in data.get("useContext", [])]
    print("The Dupixent checklist as a FHIR R4 Questionnaire (abridged; checklists --format fhir):")
    print(f"    resourceType: {data['resourceType']}, status: {data['status']}")
    print(f"    url: {data['url']}")
    print(f"    version: {data['version']}, publisher: {data.get('publisher')}")
    print(f"    effectivePeriod: {period.get('start', '-')} .. {period.get('end', '(open)')}")
    print(f"    useContext: {', '.join(contexts[:4])}{' …' if len(contexts) > 4 else ''}")
    items = list(_walk(data.get("item", [])))
    for depth, item in items[:FHIR_ITEMS]:
        text = " ".join(str(item.get("text", "")).split())
        clipped = text if len(text) <= 90 else text[:89] + "…"
        print(f"    {'  ' * depth}item {item['linkId']} ({item['type']}): {clipped}")
    print(f"    … {len(items) - FHIR_ITEMS} more items")
    print()


def _context_value(context: dict[str, Any]) -> str:
    value = context.get("valueCodeableConcept", {})
    codings = value.get("coding") or [{}]
    return str(value.get("text") or codings[0].get("code", "?"))


def _walk(items: list[dict[str, Any]], depth: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    for item in items:
        yield depth, item
        yield from _walk(item.get("item", []), depth + 1)


def _coverage(store: Store, config: Config) -> None:
    from monitor.fhir import find_coverage

    today = dt.datetime.now(dt.UTC).date()
    answers = find_coverage(
        store,
        payer="Acme Health",
        code=COVERAGE_CODE,
        drug=None,
        as_of=today,
        public_url=config.api.public_url,
    )
    print(
        f"Coverage answer (policy-monitor coverage --payer 'Acme Health' --code {COVERAGE_CODE}):"
    )
    for answer in answers[:2]:
        print(
            f"    {answer.code or answer.kind}: {answer.covered}, PA {answer.pa_needed or '-'}, "
            f"documentation {answer.doc_needed or '-'} — {answer.title} v{answer.version}"
        )
        print(f"      reason: {answer.reason}")
        if answer.questionnaire:
            print(f"      questionnaire: {answer.questionnaire}")
    if not answers:
        print(f"    no rule of Acme Health names {COVERAGE_CODE}")
    print()


def _short_notice(store: Store) -> None:
    flagged = store.changes(flag="short_notice", include_baseline=False, min_severity="low")
    if not flagged:
        print("No change was flagged short notice.")
        return
    # A criterion change of the second payer's policy, rather than the date change beside it.
    change = min(
        flagged,
        key=lambda c: (
            c.source != SECOND_PAYER_SOURCE,
            c.kind in ("date_changed", "checklist_changed"),
        ),
    )
    print("A change flagged short notice (changes --flag short_notice):")
    print(f"    {change.severity.upper()} {change.title} [{change.source}]: {describe(change)}")
    print(f"    first seen {change.first_seen}, effective {change.effective_date}: ", end="")
    print("; ".join(change.flag_notes))
    print()


def _compare(store: Store) -> None:
    from monitor.api.compare import compare_payers
    from monitor.cli.compare import render_table

    print("Dupixent across payers (policy-monitor compare --drug dupilumab):")
    comparison = compare_payers(store, drug="dupilumab")
    print(
        "\n".join("    " + line if line else "" for line in render_table(comparison).splitlines())
    )
