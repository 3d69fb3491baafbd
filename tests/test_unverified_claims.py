"""Unverified claims end to end (issue 13 point 2): a claim the two versions' texts contradict is
stored with the severity it claimed and the contradiction's text, read back by `changes` (table
and JSON) and the API, and carried by the scheduled digest through the outbox in a section of
its own, sent by a real SMTP server (aiosmtpd); alerts and webhooks never carry it. SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from api_support import serving
from http_support import QuietHandler, loopback_http
from notify_support import Inbox, body_html, body_text, config_for, smtp_server
from sqlalchemy import inspect, text

from diffing.model import CodeRef, CodeSystem, CoverageFlag, Criteria, RawDocument, Section
from monitor.cli.main import main
from monitor.config import QuarantineConfig
from monitor.pipeline.publish import PublishContext, PublishResult, publish
from monitor.store.core import ChangeRecord, Store
from monitor.store.db import _alembic_config, make_engine
from monitor.store.outbox import NotifyStore
from notifications.sender import Sender
from sources.base import ListedDocument

TODAY = dt.date(2026, 11, 12)
KEY = "/policies/gt-0042.txt"
CODES = [f"8{1400 + n}" for n in range(14)]
GONE = "81400"  # removed from the text and the criteria: a real change
MISSED = "81413"  # still in the new text, missed by the extraction: an unverified claim
SECRET = "hook-secret-0123456789"


def _text(codes: list[str], *, note: str) -> bytes:
    return "\n".join(
        [
            "Genetic Testing: Hereditary Cancer Panels",
            "Policy Number: GT-0042",
            "",
            "Coverage Criteria",
            f"Panels are covered when the member meets the criteria below. {note}",
            "",
            "Applicable Codes",
            "The following CPT codes are covered when criteria are met:",
            *codes,
        ]
    ).encode()


def _criteria(codes: list[str]) -> Criteria:
    return Criteria(
        document_id=KEY,
        doc_type="payer_policy",
        title="Genetic Testing: Hereditary Cancer Panels",
        version=None,
        status="active",
        payer="Acme Health",
        codes=frozenset(
            CodeRef(system=CodeSystem.HCPCS, flag=CoverageFlag.COVERED, code=c, group=0)
            for c in codes
        ),
        sections=(Section(name="coverage criteria", text="Panels are covered."),),
    )


def _publish(store: Store, content: bytes, found: Criteria, *, baseline: bool) -> PublishResult:
    """Publish `content` as the next version, with `found` standing for what the extractor
    made of it (the verification reads the two texts themselves)."""
    source = store.ensure_source("acme", "payer_policies")
    run_id = store.start_run(source.id, baseline=baseline)
    url = f"https://acme.example{KEY}"
    raw = RawDocument(
        source="acme",
        key=KEY,
        url=url,
        content=content,
        content_type="text/plain",
        fetched_at=dt.datetime.now(dt.UTC),
        title=found.title,
        doc_type=found.doc_type,
    )
    listed = ListedDocument(
        key=KEY,
        source_version="",
        version_number=None,
        fingerprint=hashlib.sha256(content).hexdigest(),
        doc_type=found.doc_type,
        title=found.title,
        url=url,
    )
    ctx = PublishContext(
        source_id=source.id,
        run_id=run_id,
        baseline=baseline,
        today=TODAY,
        extract=lambda _raw: found,
        extractor_name="test/1",
        quarantine=QuarantineConfig(),
    )
    return publish(store, ctx, raw, listed, criteria=found)


def _two_versions(store: Store) -> None:
    _publish(store, _text(CODES, note="v1"), _criteria(CODES), baseline=True)
    kept = [c for c in CODES if c != GONE]
    result = _publish(
        store, _text(kept, note="v2"), _criteria([c for c in kept if c != MISSED]), baseline=False
    )
    assert result.unverified == 1


def _by_code(records: list[ChangeRecord]) -> dict[str, ChangeRecord]:
    return {r.before or "": r for r in records if r.kind == "code_removed"}


@pytest.fixture
def store(migrated_database_url: str) -> Iterator[Store]:
    opened = Store.open(migrated_database_url)
    yield opened
    opened.close()


@pytest.fixture
def hook_url() -> Iterator[tuple[list[bytes], str]]:
    """A webhook endpoint on loopback that records each POST's body."""
    posts: list[bytes] = []

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            posts.append(self.read_body())
            self.send_body(200)

    with loopback_http(Handler) as base_url:
        yield posts, f"{base_url}/hooks/policy"


def test_the_claim_and_its_contradiction_are_stored_and_read_back(store: Store) -> None:
    _two_versions(store)
    changes = _by_code(store.changes(min_severity="noise"))
    real, claim = changes[GONE], changes[MISSED]
    assert (real.severity, real.claimed_severity, real.contradiction) == ("high", None, None)
    assert (claim.severity, claim.claimed_severity) == ("unverified", "high")
    assert claim.contradiction is not None
    assert MISSED in claim.contradiction and "new text" in claim.contradiction


def test_changes_json_and_table_carry_the_contradiction(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _two_versions(store)
    config = tmp_path / "monitor.toml"
    config.write_text(f'[database]\nurl = "{store.engine.url.render_as_string(False)}"\n')
    assert (
        main(["--config", str(config), "changes", "--format", "json", "--min-severity", "noise"])
        == 0
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_code = {line["before"]: line for line in lines if line["kind"] == "code_removed"}
    claim = _by_code(store.changes(min_severity="noise"))[MISSED]
    # The contract's fields are all there; the two new ones only added.
    contract = "id source document_id title kind field before after severity effective_date"
    for name in (*contract.split(), "detected_at", "url"):
        assert name in by_code[MISSED], name
    assert by_code[MISSED]["severity"] == "unverified"
    assert by_code[MISSED]["claimed_severity"] == "high"
    assert by_code[MISSED]["contradiction"] == claim.contradiction
    assert (by_code[GONE]["claimed_severity"], by_code[GONE]["contradiction"]) == (None, None)

    assert main(["--config", str(config), "changes"]) == 0
    table = capsys.readouterr().out
    changes_part, claims_part = table.split("Unverified - 1 claim(s)")
    assert GONE in changes_part and MISSED not in changes_part
    assert MISSED in claims_part and "claimed high" in claims_part
    assert "contradicted:" in claims_part


def test_the_api_answers_the_claimed_severity_and_contradiction(store: Store) -> None:
    _two_versions(store)
    claim = _by_code(store.changes(min_severity="noise"))[MISSED]
    with serving(store) as api, api.client() as client:
        feed = client.get("/changes", params={"min_severity": "unverified"})
        assert feed.status_code == 200
        items = {i["before"]: i for i in feed.json()["items"] if i["kind"] == "code_removed"}
        assert items[MISSED]["severity"] == "unverified"
        assert items[MISSED]["claimed_severity"] == "high"
        assert items[MISSED]["contradiction"] == claim.contradiction
        assert items[GONE]["claimed_severity"] is None
        one = client.get(f"/changes/{claim.id}").json()
        assert (one["claimed_severity"], one["contradiction"]) == ("high", claim.contradiction)
        # The default feed (low and up) leaves the claim out, as it leaves noise out.
        default = client.get("/changes").json()["items"]
        assert MISSED not in {i["before"] for i in default}


def test_the_change_page_says_the_claim_is_contradicted_and_why(store: Store) -> None:
    _two_versions(store)
    claim = _by_code(store.changes(min_severity="noise"))[MISSED]
    real = _by_code(store.changes(min_severity="noise"))[GONE]
    with serving(store) as api, api.client() as client:
        page = client.get(f"/changes/{claim.id}/page")
        assert page.status_code == 200
        assert 'id="unverified"' in page.text
        assert "it would be high if true" in page.text
        assert html.escape(claim.contradiction or "-", quote=False) in page.text
        confirmed = client.get(f"/changes/{real.id}/page")
        assert confirmed.status_code == 200 and 'id="unverified"' not in confirmed.text


def test_the_scheduled_digest_carries_the_claim_apart_and_no_alert_or_webhook_does(
    store: Store, hook_url: tuple[list[bytes], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    posts, url = hook_url
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    _two_versions(store)
    claim = _by_code(store.changes(min_severity="noise"))[MISSED]
    assert claim.contradiction is not None
    start = dt.datetime.now(dt.UTC)
    inbox = Inbox()
    with smtp_server(inbox) as server:
        config = config_for(
            str(store.engine.url.render_as_string(False)),
            server.port,
            recipients=[{"name": "billing", "addresses": ["billing@example.org"]}],
            webhooks=[{"name": "scrubber", "url": url, "secret_env": "TEST_WEBHOOK_SECRET"}],
            notifications={"digest_schedule": "0 7 * * *"},
        )
        sender = Sender(store, config)
        sender.run_once(start)  # consumers start; the alert window is still open
        # Two days on: the alert window has passed and the 07:00 digest has fired.
        report = sender.run_once(start + dt.timedelta(days=2))
        assert (report.failed, report.retrying) == (0, 0)
    kinds = sorted(d.kind for d in NotifyStore(store).deliveries())
    assert kinds == ["alert", "digest", "webhook"]

    messages = {str(m["Subject"]): m for m in inbox.messages()}
    alert = next(m for s, m in messages.items() if s.startswith("Alert: "))
    digest = next(m for s, m in messages.items() if not s.startswith("Alert: "))
    assert str(alert["Subject"]) == "Alert: 1 high change — Acme Health"
    assert MISSED not in body_text(alert) and "Unverified" not in body_text(alert)
    assert str(digest["Subject"]) == "1 high change (+1 unverified claim) — Acme Health"
    text = body_text(digest)
    changes_part, claims_part = text.split(
        "== Unverified: 1 claim the two versions' texts contradict =="
    )
    assert GONE in changes_part and MISSED not in changes_part
    assert f"Claimed (high if true): {MISSED} -> -" in claims_part
    shown = " ".join(claim.contradiction.split())
    assert f"Contradicted: {shown[:60]}" in " ".join(claims_part.split())
    assert "Contradicted:" in body_html(digest)

    [post] = posts
    sent = [(c["before"], c["severity"]) for c in json.loads(post)["changes"]]
    assert sent == [(GONE, "high")]


def test_a_digest_of_claims_only_is_sent_and_says_no_policy_changes(store: Store) -> None:
    _publish(store, _text(CODES, note="v1"), _criteria(CODES), baseline=True)
    # Nothing changed but the note; the extraction missed a code the text still lists.
    result = _publish(
        store, _text(CODES, note="v2"), _criteria([c for c in CODES if c != MISSED]), baseline=False
    )
    assert result.unverified == 1
    start = dt.datetime.now(dt.UTC)
    inbox = Inbox()
    with smtp_server(inbox) as server:
        config = config_for(str(store.engine.url.render_as_string(False)), server.port)
        sender = Sender(store, config)
        sender.run_once(start)
        sender.run_once(start + dt.timedelta(days=2))
    [digest] = inbox.messages()
    assert str(digest["Subject"]).startswith("No policy changes, 1 unverified claim — digest of ")
    assert "Contradicted:" in body_text(digest)
    assert [d.kind for d in NotifyStore(store).deliveries()] == ["digest"]


def test_migration_0011_adds_nullable_columns_and_keeps_changes_immutable(
    database_url: str,
) -> None:
    """From revision 0010 the columns are added in place (nullable: older changes have
    neither), so the database still refuses to update a published change."""
    engine = make_engine(database_url)
    try:
        config = _alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0010")
        assert "contradiction" not in {c["name"] for c in inspect(engine).get_columns("changes")}
    finally:
        engine.dispose()
    store = Store.open(database_url)  # migrates to the head
    try:
        columns = {c["name"]: c for c in inspect(store.engine).get_columns("changes")}
        assert columns["claimed_severity"]["nullable"] and columns["contradiction"]["nullable"]
        _two_versions(store)
        with pytest.raises(Exception, match="immutable"), store.engine.begin() as connection:
            connection.execute(text("UPDATE changes SET contradiction = 'x'"))
    finally:
        store.close()
