"""Shared pieces of the notification tests: a real aiosmtpd server on 127.0.0.1, documents
published straight through `monitor.pipeline.publish`, and a config pointing at both."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
from collections.abc import Iterable
from typing import Any

from diffing.model import (
    CodeRef,
    CodeSystem,
    CoverageFlag,
    Criteria,
    DrugMention,
    RawDocument,
    Section,
)

# The SMTP server lives in fixtures/smtp.py (the demo uses it too); re-exported for the tests.
from fixtures.smtp import Inbox as Inbox
from fixtures.smtp import LoopbackSmtp as LoopbackSmtp
from fixtures.smtp import body_html as body_html
from fixtures.smtp import body_text as body_text
from fixtures.smtp import held_port as held_port
from fixtures.smtp import smtp_server as smtp_server
from monitor.config import Config, parse_config
from monitor.pipeline.publish import PublishContext, PublishResult, publish
from monitor.store.core import RunCounts, Store
from sources.base import ListedDocument

TODAY = dt.date(2026, 11, 12)
NOVITAS = "Novitas Solutions, Inc."
PALMETTO = "Palmetto GBA"


# -- documents ----------------------------------------------------------------------------------


def icd(code: str, description: str = "", *, covered: bool = True) -> CodeRef:
    flag = CoverageFlag.COVERED if covered else CoverageFlag.NONCOVERED
    return CodeRef(system=CodeSystem.ICD10, flag=flag, code=code, group=1, description=description)


def cms_doc(
    key: str,
    title: str,
    *,
    codes: Iterable[CodeRef] = (),
    contractors: tuple[str, ...] = (NOVITAS,),
    effective: dt.date | None = TODAY + dt.timedelta(days=45),
    indication: str = "Lesions that bleed are covered.",
) -> Criteria:
    return Criteria(
        document_id=key,
        doc_type="Article" if key.startswith("A") else "LCD",
        title=title,
        version=None,
        status="active",
        effective_date=effective,
        contractors=contractors,
        codes=frozenset(codes),
        sections=(Section(name="indication", text=indication),),
    )


def payer_doc(
    key: str,
    title: str,
    *,
    payer: str = "Acme Health",
    drugs: tuple[str, ...] = (),
    indication: str = "Coverage criteria.",
    effective: dt.date | None = TODAY + dt.timedelta(days=20),
) -> Criteria:
    return Criteria(
        document_id=key,
        doc_type="policy",
        title=title,
        version=None,
        status="active",
        effective_date=effective,
        payer=payer,
        drugs=tuple(DrugMention(name=d) for d in drugs),
        sections=(Section(name="criteria", text=indication),),
    )


def publish_version(
    store: Store,
    criteria: Criteria,
    *,
    version: int,
    source: str = "cms",
    kind: str = "cms_coverage",
    baseline: bool = False,
    url: str | None = None,
) -> PublishResult:
    """Publish `criteria` as `version` of its document in a run of its own."""
    source_row = store.ensure_source(source, kind)
    run_id = store.start_run(source_row.id, baseline=baseline)
    key = criteria.document_id
    url = url or f"https://www.example.org/{source}/{key}?ver={version}"
    content = f"{source}|{key}|{version}|{criteria!r}".encode()
    raw = RawDocument(
        source=source,
        key=key,
        url=url,
        content=content,
        content_type="application/json",
        fetched_at=dt.datetime.now(dt.UTC),
        source_version=str(version),
        title=criteria.title,
        doc_type=criteria.doc_type,
    )
    listed = ListedDocument(
        key=key,
        source_version=str(version),
        version_number=version,
        fingerprint=hashlib.sha256(content).hexdigest(),
        doc_type=criteria.doc_type,
        title=criteria.title,
        url=url,
    )
    ctx = PublishContext(
        source_id=source_row.id,
        run_id=run_id,
        baseline=baseline,
        today=TODAY,
        extract=lambda _raw: criteria,
        extractor_name="test/1",
    )
    result = publish(store, ctx, raw, listed, criteria=criteria)
    store.finish_run(
        run_id,
        outcome="success",
        counts=RunCounts(listed=1, new_versions=1, changes=result.changes),
        complete_baseline=baseline,
    )
    return result


def config_for(
    database_url: str,
    smtp_port: int,
    *,
    recipients: list[dict[str, Any]] | None = None,
    webhooks: list[dict[str, Any]] | None = None,
    notifications: dict[str, Any] | None = None,
    email_extra: dict[str, Any] | None = None,
    sources: list[dict[str, Any]] | None = None,
) -> Config:
    data: dict[str, Any] = {
        "database": {"url": database_url},
        "api": {"public_url": "https://monitor.example.org"},
        "email": {
            "host": "127.0.0.1",
            "port": smtp_port,
            "from_address": "monitor@example.org",
            "timeout_seconds": 5.0,
            **(email_extra or {}),
        },
        "notifications": {
            "backoff_seconds": 1.0,
            "max_backoff_seconds": 8.0,
            "alert_window_seconds": 60,
            **(notifications or {}),
        },
        "recipients": recipients
        if recipients is not None
        else [{"name": "billing", "addresses": ["billing@example.org"]}],
        "webhooks": webhooks or [],
    }
    if sources is not None:
        data["sources"] = sources
    return parse_config(data)


def later(seconds: float) -> dt.datetime:
    """A clock `seconds` ahead of now (past the alert window, past a backoff, …)."""
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)


def run_fixture_weeks(database_url: str) -> Config:
    """The real pipeline on the bundled fixtures: CMS Coverage API and the Acme Health payer
    site, week 1 (baseline) then week 2, like `policy-monitor demo`. Returns the config."""
    from fixtures.cms_api import CmsApiFixture
    from fixtures.cms_corpus.model import scenario_named
    from fixtures.payer_site import AETNA_INDEX_PATH, UHC_INDEX_PATH, PayerSiteFixture
    from monitor.pipeline.runner import run_source

    with CmsApiFixture(scenario="week1") as cms, PayerSiteFixture() as payers:
        config = parse_config(
            {
                "database": {"url": database_url},
                "sources": [
                    {"name": "cms", "kind": "cms_coverage", "base_url": cms.base_url,
                     "backoff_seconds": 0.1},
                    {"name": "acme", "kind": "payer_policies", "payer": "Acme Health",
                     "start_urls": [payers.base_url + UHC_INDEX_PATH,
                                    payers.base_url + AETNA_INDEX_PATH],
                     "allow": ["/policies/drug/", "/cpb/medical/data/"],
                     "download_delay_seconds": 0.0},
                ],
            }
        )  # fmt: skip
        store = Store.open(database_url)
        try:
            for week in ("week1", "week2"):
                cms.set_scenario(week)
                payers.set_scenario(week)
                today = scenario_named(week).today
                for source in config.sources:
                    summary = asyncio.run(
                        run_source(source, store, today=functools.partial(_same_day, today))
                    )
                    assert summary.outcome != "failed", summary.line()
        finally:
            store.close()
    return config


def _same_day(day: dt.date) -> dt.date:
    return day
