"""Test data for the API tests: an invented payer drug policy published in several versions
through the real publisher and payer extractor (text documents, so no crawl is needed)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from diffing.model import RawDocument
from diffing.payer import payer_criteria
from monitor.api.app import HealthCheck, create_app
from monitor.api.auth import create_api_key
from monitor.api.server import ApiServer
from monitor.config import Config, parse_config
from monitor.pipeline.publish import PublishContext, PublishResult, publish
from monitor.store.core import RunCounts, Store
from sources.base import ListedDocument

SOURCE = "acme"
PAYER_KEY = "/policies/drug/zentrava-examplumab.txt"
TODAY = dt.date(2026, 1, 15)  # the step-therapy change of version 2 takes effect 45 days on
SCOPES = ("read", "review", "admin")


@dataclass(frozen=True, kw_only=True)
class PolicySpec:
    """The parts of the invented policy that change between versions."""

    weeks: int = 8  # topical corticosteroid trial
    months: int = 6  # initial authorization
    effective: str = "January 1, 2026"
    extra: str = ""  # one more sentence in the coverage rationale


def policy_text(spec: PolicySpec, *, drug: str = "Zentrava", generic: str = "examplumab") -> str:
    return f"""{drug} ({generic}) Injection
Policy Number: 2026D0999A
Effective Date: {spec.effective}

Coverage Rationale
{drug} ({generic}) is proven and medically necessary for the treatment of moderate-to-severe \
atopic dermatitis when all of the following criteria are met:
Diagnosis of moderate-to-severe atopic dermatitis; and
Patient is 12 years of age or older; and
Patient has tried at least one medium-potency topical corticosteroid applied daily for a \
minimum of {spec.weeks} weeks with inadequate response; and
Prescribed by or in consultation with a dermatologist.
Initial authorization will be for no more than {spec.months} months.
{spec.extra}
Prior authorization is required for {drug}.
"""


def payer_document(key: str, text: str) -> tuple[RawDocument, ListedDocument]:
    content = text.encode()
    url = f"https://payer.example{key}"
    raw = RawDocument(
        source=SOURCE,
        key=key,
        url=url,
        content=content,
        content_type="text/plain; charset=utf-8",
        fetched_at=dt.datetime.now(dt.UTC),
        doc_type="policy",
        title=key.rsplit("/", 1)[-1],
        source_meta=(("payer", "Acme Health"),),
    )
    listed = ListedDocument(
        key=key,
        source_version="",
        version_number=None,
        fingerprint=hashlib.sha256(content).hexdigest(),
        doc_type="policy",
        title=raw.title,
        url=url,
    )
    return raw, listed


def start_run(store: Store, *, baseline: bool) -> PublishContext:
    source = store.ensure_source(SOURCE, "payer_policies")
    run_id = store.start_run(source.id, baseline=baseline)
    return PublishContext(
        source_id=source.id,
        run_id=run_id,
        baseline=baseline,
        today=TODAY,
        extract=payer_criteria,
        extractor_name="payer/1",
    )


def finish_run(store: Store, ctx: PublishContext, *, changes: int = 0) -> None:
    store.finish_run(
        ctx.run_id,
        outcome="success",
        counts=RunCounts(changes=changes),
        complete_baseline=ctx.baseline,
    )


def publish_versions(
    store: Store, specs: list[PolicySpec], *, key: str = PAYER_KEY
) -> list[PublishResult]:
    """Publish one version per spec, each in its own run (the first is the baseline)."""
    results = []
    for index, spec in enumerate(specs):
        ctx = start_run(store, baseline=index == 0 and not store.changes(source=SOURCE))
        result = publish(store, ctx, *payer_document(key, policy_text(spec)))
        finish_run(store, ctx, changes=result.changes)
        results.append(result)
    return results


THREE_VERSIONS = [
    PolicySpec(),
    PolicySpec(weeks=12, months=4, effective="March 1, 2026"),
    PolicySpec(weeks=12, months=4, effective="March 1, 2026", extra="Patient is not pregnant."),
]


@contextmanager
def opened(url: str) -> Iterator[Store]:
    store = Store.open(url)
    try:
        yield store
    finally:
        store.close()


@dataclass(frozen=True, kw_only=True)
class Harness:
    """A store, the API served over real HTTP on loopback, and one key per scope."""

    store: Store
    url: str
    keys: dict[str, str]

    def client(self, scope: str | None = "read", **headers: str) -> httpx.Client:
        if scope is not None:
            headers = {"Authorization": f"Bearer {self.keys[scope]}", **headers}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0)


@contextmanager
def serving(
    store: Store,
    *,
    config: Config | None = None,
    health: HealthCheck | None = None,
    today: dt.date = TODAY,
) -> Iterator[Harness]:
    keys = {scope: create_api_key(store, f"test-{scope}", scope) for scope in SCOPES}
    app = create_app(store, config or parse_config({}), health=health, today=lambda: today)
    with ApiServer(app) as server:
        yield Harness(store=store, url=server.url, keys=keys)
