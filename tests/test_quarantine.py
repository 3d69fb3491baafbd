"""The quarantine (issue 8): a version that drops most of its predecessor's codes or criteria is
held, not published; a reviewer approves it (CLI) or rejects it (API); operators hear once.

Documents are published through the real `monitor.pipeline.publish` (SQLite and PostgreSQL); the
end-to-end case runs the CMS Coverage API fixture with an Article whose ICD-10 table comes back
empty; the alert goes through the real sender to a real aiosmtpd.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import serving
from notify_support import Inbox, body_html, body_text, config_for, later, smtp_server
from sqlalchemy import func, select

from diffing.model import (
    CodeRef,
    CodeSystem,
    CoverageFlag,
    Criteria,
    DrugMention,
    PriorAuth,
    RawDocument,
    Section,
    StepTherapy,
)
from monitor.cli.main import main
from monitor.config import QuarantineConfig, parse_config
from monitor.errors import ConfigError
from monitor.pipeline.guard import assess
from monitor.pipeline.publish import Outcome, PublishContext, PublishResult, publish
from monitor.pipeline.quarantine import (
    QuarantineDecided,
    approve,
    list_quarantined,
)
from monitor.store.core import Store
from monitor.store.models.core import ChangeRow, RunError, SourceRun
from monitor.store.models.notify import OutboxEvent
from monitor.store.models.quarantine import QuarantinedVersion
from monitor.store.models.rules import RuleRowModel
from notifications.sender import Sender
from sources.base import ListedDocument

TODAY = dt.date(2026, 11, 12)
GUARD = QuarantineConfig()


def icd(code: str, *, covered: bool = True) -> CodeRef:
    flag = CoverageFlag.COVERED if covered else CoverageFlag.NONCOVERED
    return CodeRef(system=CodeSystem.ICD10, flag=flag, code=code, group=1)


def icd_codes(count: int) -> frozenset[CodeRef]:
    return frozenset(icd(f"L{40 + n // 10}.{n % 10}") for n in range(count))


def article(codes: frozenset[CodeRef], *, status: str = "active") -> Criteria:
    return Criteria(
        document_id="A59999",
        doc_type="Article",
        title="Billing and Coding: Invented Skin Procedures",
        version=None,
        status=status,
        effective_date=TODAY,
        contractors=("Novitas Solutions, Inc.",),
        codes=codes,
        sections=(Section(name="indication", text="Lesions that bleed are covered."),),
    )


@dataclasses.dataclass
class Publisher:
    """Publishes criteria as versions of one document, each in a run of its own, with the
    guard on (as the runner does)."""

    store: Store
    guard: QuarantineConfig | None = GUARD

    def __call__(self, criteria: Criteria, version: int, *, tag: str = "") -> PublishResult:
        source = self.store.ensure_source("cms", "cms_coverage")
        run_id = self.store.start_run(source.id, baseline=False)
        content = f"{version}|{tag}|{criteria!r}".encode()
        url = f"https://www.cms.gov/view/article.aspx?articleid=59999&ver={version}"
        raw = RawDocument(
            source="cms",
            key=criteria.document_id,
            url=url,
            content=content,
            content_type="application/json",
            fetched_at=dt.datetime.now(dt.UTC),
            source_version=str(version),
            title=criteria.title,
            doc_type=criteria.doc_type,
        )
        listed = ListedDocument(
            key=criteria.document_id,
            source_version=str(version),
            version_number=version,
            fingerprint=hashlib.sha256(content).hexdigest(),
            doc_type=criteria.doc_type,
            title=criteria.title,
            url=url,
        )
        ctx = PublishContext(
            source_id=source.id,
            run_id=run_id,
            baseline=False,
            today=TODAY,
            extract=lambda _raw: criteria,
            extractor_name="test/1",
            quarantine=self.guard,
        )
        return publish(self.store, ctx, raw, listed, criteria=criteria)


def count(store: Store, model: type, *where: object) -> int:
    with store.session() as session:
        query = select(func.count()).select_from(model)
        if where:
            query = query.where(*where)  # type: ignore[arg-type]
        return int(session.scalar(query) or 0)


@pytest.fixture
def store(migrated_database_url: str) -> Iterator[Store]:
    opened = Store.open(migrated_database_url)
    yield opened
    opened.close()


# -- the guard ------------------------------------------------------------------------------


def test_assess_counts_dropped_codes_and_criteria() -> None:
    many = icd_codes(430)
    kept = frozenset(sorted(many)[:18])
    verdict = assess(article(many), article(kept), GUARD)
    assert verdict is not None
    assert verdict.reason == "drops 412 of 430 codes (96 %)"
    assert (verdict.old_codes, verdict.dropped_codes) == (430, 412)
    # Half exactly is not "more than half"; a tiny document is not judged at all.
    assert (
        assess(article(icd_codes(10)), article(frozenset(sorted(icd_codes(10))[:5])), GUARD) is None
    )
    assert assess(article(icd_codes(4)), article(frozenset()), GUARD) is None
    assert assess(article(icd_codes(4)), article(frozenset()), QuarantineConfig(min_items=4))
    # A code moved from the covered table to the non-covered one is a change, not a loss.
    moved = frozenset(icd(c.code, covered=False) for c in icd_codes(30))
    assert assess(article(icd_codes(30)), article(moved), GUARD) is None
    # A retirement that keeps its codes passes; one that empties them is held, and says so.
    assert assess(article(many), article(many, status="retired"), GUARD) is None
    retired = assess(article(many), article(frozenset(), status="retired"), GUARD)
    assert retired is not None and retired.reason.endswith("status active -> retired")


def test_assess_payer_criteria_items() -> None:
    drugs = ("dupilumab", "tralokinumab", "lebrikizumab")
    policy = Criteria(
        document_id="/policies/drug/x.pdf",
        doc_type="policy",
        title="Atopic dermatitis biologics",
        version=None,
        status="active",
        payer="Acme Health",
        drugs=tuple(DrugMention(name=d) for d in drugs),
        step_therapy=tuple(
            StepTherapy(prerequisite="topical corticosteroid", drug=d) for d in drugs
        ),
        prior_auth=tuple(PriorAuth(required=True, drug=d) for d in drugs),
    )
    error_page = dataclasses.replace(
        policy, drugs=policy.drugs[:1], step_therapy=(), prior_auth=policy.prior_auth[:1]
    )
    verdict = assess(policy, error_page, GUARD)
    assert verdict is not None and verdict.reason == "drops 7 of 9 criteria items (78 %)"
    assert assess(policy, dataclasses.replace(policy, step_therapy=()), GUARD) is None  # 3 of 9


def test_config_section() -> None:
    assert parse_config({}).quarantine == QuarantineConfig()
    chosen = parse_config({"quarantine": {"max_dropped_share": 0.8, "min_items": 20}})
    assert chosen.quarantine.max_dropped_share == 0.8 and chosen.quarantine.min_items == 20
    with pytest.raises(ConfigError, match="max_dropped_share"):
        parse_config({"quarantine": {"max_dropped_share": 0}})
    with pytest.raises(ConfigError, match="allowed"):
        parse_config({"quarantine": {"share": 0.5}})


# -- holding, approving (CLI), rejecting ------------------------------------------------------


def test_a_version_dropping_most_codes_is_held_then_approved_by_cli(
    store: Store, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_ = Publisher(store)
    assert publish_(article(icd_codes(40)), 1).outcome is Outcome.NEW
    changes_before = count(store, ChangeRow)
    rules_before = count(store, RuleRowModel)

    emptied = article(frozenset(sorted(icd_codes(40))[:3]))
    held = publish_(emptied, 2)
    assert held.outcome is Outcome.QUARANTINED and held.version_id is None
    assert held.error is not None and "drops 37 of 40 codes (92 %)" in held.error
    # Nothing published: the document stays at version 1 with its rules and feed.
    assert [v.source_version for v in store.versions("cms", "A59999")] == ["1"]
    assert count(store, ChangeRow) == changes_before
    assert count(store, RuleRowModel) == rules_before
    [record] = list_quarantined(store)
    assert (record.status, record.document, record.source_version) == ("pending", "A59999", "2")
    assert (record.old_codes, record.dropped_codes) == (40, 37)

    # The same bytes again: still held, no second row, still nothing published.
    again = publish_(emptied, 2)
    assert again.outcome is Outcome.QUARANTINED and f"#{record.id}" in (again.error or "")
    assert count(store, QuarantinedVersion) == 1
    assert len(store.versions("cms", "A59999")) == 1

    config_file = tmp_path / "monitor.toml"
    config_file.write_text(f'[database]\nurl = "{database_url}"\n')
    cli = ["--config", str(config_file), "quarantine"]
    assert main([*cli, "list"]) == 0
    assert "drops 37 of 40 codes" in capsys.readouterr().out
    assert main([*cli, "approve", str(record.id), "--reviewer", "ana", "--note", "rewrite"]) == 0
    assert f"quarantine #{record.id} approved by ana" in capsys.readouterr().out

    # Published through the normal path: version, changes (with outbox rows), rules.
    versions = store.versions("cms", "A59999")
    assert [v.source_version for v in versions] == ["1", "2"]
    removed = store.changes(document="A59999", run_id=None)
    removed = [c for c in removed if c.kind == "code_removed"]
    assert len(removed) == 37 and all(c.version == "2" for c in removed)
    assert count(store, OutboxEvent) >= 37
    assert count(store, RuleRowModel) > rules_before
    decided = list_quarantined(store, status="approved")[0]
    assert (decided.reviewer, decided.note) == ("ana", "rewrite")
    assert decided.version_id == versions[-1].id and decided.decided_at is not None
    # Decisions are final; the published bytes are now simply known.
    assert main([*cli, "reject", str(record.id), "--reviewer", "bo"]) == 1
    assert "approved already" in capsys.readouterr().err
    assert publish_(emptied, 2).outcome is Outcome.UNCHANGED


def test_reject_by_api_keeps_the_document_and_needs_review_scope(store: Store) -> None:
    publish_ = Publisher(store)
    publish_(article(icd_codes(40)), 1)
    emptied = article(frozenset())
    held = publish_(emptied, 2)
    assert held.outcome is Outcome.QUARANTINED
    [record] = list_quarantined(store)
    with serving(store) as api:
        with api.client("read") as reader:
            assert reader.get("/quarantine").status_code == 403
            refused = reader.post(f"/quarantine/{record.id}/reject", json={"reviewer": "eve"})
            assert refused.status_code == 403
        with api.client(None) as anonymous:
            assert anonymous.get("/quarantine").status_code == 401
        with api.client("review") as reviewer:
            listed = reviewer.get("/quarantine").json()
            assert [(q["id"], q["status"]) for q in listed] == [(record.id, "pending")]
            assert listed[0]["reason"] == "drops 40 of 40 codes (100 %)"
            assert (
                reviewer.post("/quarantine/999999/reject", json={"reviewer": "x"}).status_code
                == 404
            )
            blank = reviewer.post(f"/quarantine/{record.id}/reject", json={"reviewer": "  "})
            assert blank.status_code == 422
            rejected = reviewer.post(
                f"/quarantine/{record.id}/reject",
                json={"reviewer": "ana", "note": "the article page was cut off"},
            )
            assert rejected.status_code == 200, rejected.text
            assert rejected.json()["status"] == "rejected"
            assert rejected.json()["reviewer"] == "ana"
            again = reviewer.post(f"/quarantine/{record.id}/approve", json={"reviewer": "ana"})
            assert again.status_code == 409
            assert reviewer.get("/quarantine").json() == []  # pending only, by default
            assert len(reviewer.get("/quarantine", params={"status": "all"}).json()) == 1
    assert [v.source_version for v in store.versions("cms", "A59999")] == ["1"]
    # Rejected bytes seen again: not held a second time, not published, counted unchanged.
    assert publish_(emptied, 2).outcome is Outcome.UNCHANGED
    assert count(store, QuarantinedVersion) == 1
    assert len(store.versions("cms", "A59999")) == 1
    # A different (good) version after the rejection publishes normally.
    assert publish_(article(icd_codes(39)), 3).outcome is Outcome.CHANGED


def test_a_later_published_version_supersedes_a_pending_one(store: Store) -> None:
    publish_ = Publisher(store)
    publish_(article(icd_codes(20)), 1)
    assert publish_(article(frozenset()), 2).outcome is Outcome.QUARANTINED
    assert publish_(article(icd_codes(21)), 3).outcome is Outcome.CHANGED
    [record] = list_quarantined(store, status="superseded")
    with pytest.raises(QuarantineDecided, match="superseded"):
        approve(store, record.id, reviewer="ana")
    assert [v.source_version for v in store.versions("cms", "A59999")] == ["1", "3"]


def test_a_real_retirement_that_empties_the_tables_can_be_approved(store: Store) -> None:
    publish_ = Publisher(store)
    publish_(article(icd_codes(12)), 1)
    held = publish_(article(frozenset(), status="retired"), 2)
    assert held.outcome is Outcome.QUARANTINED
    assert "status active -> retired" in (held.error or "")
    [record] = list_quarantined(store)
    approved = approve(store, record.id, reviewer="ana", today=TODAY)
    assert approved.status == "approved" and approved.version_id is not None
    kinds = {c.kind for c in store.changes(document="A59999") if c.version == "2"}
    assert "document_retired" in kinds or "status_changed" in kinds
    assert store.versions("cms", "A59999")[-1].status == "retired"


def test_guard_disabled_or_first_version_publishes(store: Store) -> None:
    # The first version of a document has nothing to lose.
    assert Publisher(store)(article(frozenset()), 1).outcome is Outcome.NEW
    assert Publisher(store)(article(icd_codes(30)), 2).outcome is Outcome.CHANGED
    off = Publisher(store, QuarantineConfig(enabled=False))
    assert off(article(frozenset()), 3).outcome is Outcome.CHANGED
    assert count(store, QuarantinedVersion) == 0


# -- the operators' alert ---------------------------------------------------------------------

OPERATORS = [
    {"name": "operators", "addresses": ["ops@example.org"], "digest": False, "alerts": False},
]


def test_operators_are_emailed_once_per_held_version(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.store.db'}")
    try:
        publish_ = Publisher(store)
        publish_(article(icd_codes(40)), 1)
        inbox = Inbox()
        with smtp_server(inbox) as server:
            config = config_for(str(store.engine.url), server.port, recipients=OPERATORS)
            sender = Sender(store, config)
            sender.run_once(later(1))
            assert inbox.messages() == []
            publish_(article(frozenset(), status="active"), 2, tag="<script>x</script>")
            publish_(article(frozenset(), status="active"), 2, tag="<script>x</script>")
            first = sender.run_once(later(2))
            assert first.planned == 1 and first.sent == 1
            assert sender.run_once(later(3)).planned == 0
            # Another instance (or a restart) knows: the state is in the database.
            assert Sender(store, config).run_once(later(4)).planned == 0
            # A decision is no news for operators.
            [record] = list_quarantined(store)
            approve(store, record.id, reviewer="ana")
            assert sender.run_once(later(5)).planned == 0
        [message] = inbox.messages()
        assert str(message["To"]) == "ops@example.org"
        assert str(message["Subject"]).startswith("Quarantined: A59999 (cms) drops 40 of 40 codes")
        text = body_text(message)
        assert f"policy-monitor quarantine approve {record.id}" in text
        assert "Billing and Coding: Invented Skin Procedures" in body_html(message)
    finally:
        store.close()


# -- end to end: the CMS Coverage API fixture ------------------------------------------------


def _same_day(day: dt.date) -> dt.date:
    return day


@pytest.mark.slow
def test_cms_article_with_an_emptied_code_table_is_held_in_a_run(tmp_path: Path) -> None:
    from fixtures.cms_api import CmsApiFixture
    from fixtures.cms_corpus.model import scenario_named
    from fixtures.loopback import Fault
    from monitor.pipeline.runner import run_source

    database_url = f"sqlite:///{tmp_path / 'monitor.store.db'}"
    store = Store.open(database_url)
    empty_page = b'{"meta": {"next_token": ""}, "data": []}'
    try:
        with CmsApiFixture(scenario="week1") as cms:
            config = parse_config(
                {
                    "database": {"url": database_url},
                    "sources": [
                        {
                            "name": "cms",
                            "kind": "cms_coverage",
                            "base_url": cms.base_url,
                            "backoff_seconds": 0.1,
                        }
                    ],
                }
            )
            [source] = config.sources

            def run(week: str) -> object:
                cms.set_scenario(week)
                today = functools.partial(_same_day, scenario_named(week).today)
                return asyncio.run(
                    run_source(source, store, today=today, quarantine=config.quarantine)
                )

            assert run("week1").outcome == "success"  # type: ignore[attr-defined]
            before = len(store.versions("cms", "A57520"))

            # Week 2: A57520's code tables come back empty (a 200 with no rows).
            def empty_tables() -> None:
                for table in ("hcpc-code", "icd10-covered", "icd10-noncovered"):
                    target = f"/v1/data/article/{table}?articleid=57520&"
                    cms.inject(target, Fault(status=200, body=empty_page), times=1)

            empty_tables()
            summary = run("week2")
            assert summary.outcome == "partial", summary.line()  # type: ignore[attr-defined]
            [record] = list_quarantined(store)
            assert record.document == "A57520" and "codes" in record.reason
            assert len(store.versions("cms", "A57520")) == before
            with store.session() as session:
                messages = list(
                    session.scalars(
                        select(RunError.message).where(
                            RunError.run_id == summary.run_id  # type: ignore[attr-defined]
                        )
                    )
                )
            assert any(m.startswith("quarantined: held for review") for m in messages), messages
            # The same broken bytes next run: no second row, still held.
            empty_tables()
            assert run("week2").outcome == "partial"  # type: ignore[attr-defined]
            assert count(store, QuarantinedVersion) == 1
            # The source serves the whole table again: published, the held one superseded.
            clean = run("week2")
            assert clean.outcome == "success", clean.line()  # type: ignore[attr-defined]
            assert len(store.versions("cms", "A57520")) == before + 1
            assert [r.status for r in list_quarantined(store, status="superseded")] == [
                "superseded"
            ]
            removed = [c for c in store.changes(document="A57520") if c.kind == "code_removed"]
            assert len(removed) < 5  # the real week-2 change, not the emptied table
        with store.session() as session:
            outcomes = list(session.scalars(select(SourceRun.outcome).order_by(SourceRun.id)))
        assert outcomes == ["success", "partial", "partial", "success"]
    finally:
        store.close()
