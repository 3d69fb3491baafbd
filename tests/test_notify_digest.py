"""Digest emails through a real SMTP server: content, grouping, profile filters, hostile text,
empty digests, the schedule, and the `digest` CLI."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from notify_support import (
    NOVITAS,
    PALMETTO,
    TODAY,
    Inbox,
    body_html,
    body_text,
    cms_doc,
    config_for,
    icd,
    payer_doc,
    publish_version,
    smtp_server,
)
from sqlite_support import migrated_sqlite

from diffing.model import DrugMention, Section
from monitor.cli.main import main
from monitor.config import Schedule
from monitor.links import verify_change_link
from monitor.store.core import ChangeRecord, Store
from monitor.store.models.notify import OutboxEvent
from monitor.store.outbox import ChangeFacets, PendingChange
from notifications.planner import latest_slot
from notifications.render import render_changes
from notifications.sender import Sender

NOW = dt.datetime(2026, 11, 12, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(tmp_path: Path, migrated_sqlite_template: Path) -> Iterator[Store]:
    opened = Store.open(migrated_sqlite(migrated_sqlite_template, tmp_path / "monitor.store.db"))
    yield opened
    opened.close()


def _week(store: Store) -> None:
    """Baselines (never announced), then: Novitas article loses a covered code (high) and gains
    one (medium); a Palmetto article gains a non-covered code (high); an Acme Health policy
    adds a drug and a stricter sentence (medium); a re-print (noise, never announced)."""
    skin = cms_doc(
        "A57520",
        "Billing and Coding: Removal of Benign Skin Lesions",
        codes=[icd("L82.0", "Inflamed seborrheic keratosis"), icd("L82.1")],
    )
    actinic = cms_doc(
        "A56610", "Billing and Coding: Actinic Keratosis", codes=[icd("L57.0")],
        contractors=(PALMETTO,),
    )  # fmt: skip
    dupixent = payer_doc("/policies/dupixent.pdf", "Dupixent (dupilumab)", drugs=("dupilumab",))
    psoriasis = cms_doc("L35000", "Psoriasis phototherapy", codes=[icd("L40.0")])
    publish_version(store, skin, version=1, baseline=True)
    publish_version(store, actinic, version=1, baseline=True)
    publish_version(store, psoriasis, version=1, baseline=True)
    publish_version(store, dupixent, version=1, source="acme", kind="payer_policies", baseline=True)
    publish_version(
        store,
        replace(skin, codes=frozenset([icd("L82.1"), icd("L57.1", "Actinic cheilitis")])),
        version=2,
    )
    publish_version(
        store,
        replace(actinic, codes=frozenset([icd("L57.0"), icd("C44.91", covered=False)])),
        version=2,
    )
    publish_version(
        store,
        replace(
            dupixent,
            drugs=(DrugMention(name="dupilumab"), DrugMention(name="tralokinumab")),
            sections=(
                Section(
                    name="criteria",
                    text="Patient must have tried topical corticosteroids for at least 12 weeks.",
                ),
            ),
        ),
        version=2,
        source="acme",
        kind="payer_policies",
    )
    # New bytes, same criteria: a `noise_only` change, which is never announced.
    publish_version(store, psoriasis, version=2)


def _digest(
    store: Store,
    inbox: Inbox,
    recipients: list[dict[str, Any]],
    *,
    now: dt.datetime = NOW,
    notifications: dict[str, object] | None = None,
) -> None:
    with smtp_server(inbox) as server:
        config = config_for(
            str(store.engine.url), server.port, recipients=recipients, notifications=notifications
        )
        sender = Sender(store, config)
        for profile in config.recipients:
            sender.planner.digest(profile, now, force=True)
        report = sender.deliver_due(dt.datetime.now(dt.UTC))
        assert report.failed == report.retrying == 0


def test_the_digest_groups_by_issuer_then_severity_with_before_after_dates_and_links(
    store: Store,
) -> None:
    _week(store)
    # Baselines and the noise-only re-print wrote no outbox event: 5 changes are announced.
    assert store.count(OutboxEvent) == 5
    inbox = Inbox()
    _digest(store, inbox, [{"name": "billing", "addresses": ["a@example.org", "b@example.org"]}])

    messages = inbox.messages()
    assert sorted(str(m["To"]) for m in messages) == ["a@example.org", "b@example.org"]
    message = messages[0]
    assert message.get_content_type() == "multipart/alternative"
    assert (
        str(message["Subject"]) == "2 high, 3 medium changes — Novitas, Palmetto GBA, Acme Health"
    )
    assert message["Message-ID"] == messages[1]["Message-ID"]  # one message, two recipients
    text = body_text(message)
    # Issuers in order of weight, and inside each, high before medium.
    positions = [
        text.index(marker)
        for marker in ("== Novitas (2 changes)", "-- HIGH --", "L82.0 -> -", "-- MEDIUM --",
                       "- -> L57.1", "== Palmetto GBA (1 change)", "- -> C44.91",
                       "== Acme Health (2 changes)", "- -> tralokinumab")
    ]  # fmt: skip
    assert positions == sorted(positions)
    assert "Effective 2026-12-27 (effective in 45 days)" in text
    assert '"L82.0 Inflamed seborrheic keratosis (group 1)"' in text  # the evidence
    assert "Source: https://www.example.org/cms/A57520?ver=2" in text
    assert "at least 12 weeks" in text
    assert "L40.0" not in text and "Psoriasis" not in text  # noise and baselines stay out

    html = body_html(message)
    links = re.findall(r'href="(https://monitor\.example\.org/changes/(\d+)/page\?[^"]+)"', html)
    assert len(links) == 5
    config = config_for(str(store.engine.url), 25)
    for url, change_id in links:
        query = dict(p.split("=") for p in url.replace("&amp;", "&").split("?")[1].split("&"))
        assert verify_change_link(config.api, int(change_id), int(query["expires"]), query["sig"])
    assert 'href="https://www.example.org/acme//policies/dupixent.pdf?ver=2"' in html
    assert "style=" in html and "<style" not in html  # inline CSS only


def test_profiles_get_only_the_changes_their_filters_select(store: Store) -> None:
    _week(store)
    inbox = Inbox()
    _digest(
        store,
        inbox,
        [
            {"name": "derm", "addresses": ["derm@example.org"], "codes": ["L82*"]},
            {"name": "acme", "addresses": ["acme@example.org"], "payers": ["acme health"]},
            {
                "name": "novitas-high",
                "addresses": ["nh@example.org"],
                "contractors": ["Novitas"],
                "min_severity": "high",
            },
            {"name": "biologics", "addresses": ["bio@example.org"], "drugs": ["tralokinumab"]},
            {"name": "nothing", "addresses": ["none@example.org"], "sources": ["elsewhere"]},
        ],
    )
    by_address = {str(m["To"]): body_text(m) for m in inbox.messages()}
    # No change for "nothing": an empty digest is not sent.
    assert set(by_address) == {
        "derm@example.org",
        "acme@example.org",
        "nh@example.org",
        "bio@example.org",
    }
    # L82* matches the article that had L82.0/L82.1 (both of its changes), nothing else.
    assert "A57520" in by_address["derm@example.org"]
    assert "A56610" not in by_address["derm@example.org"]
    assert "dupixent" not in by_address["derm@example.org"]
    assert "Acme Health (2 changes)" in by_address["acme@example.org"]
    assert "A57520" not in by_address["acme@example.org"]
    assert "L82.0 -> -" in by_address["nh@example.org"]
    assert "L57.1" not in by_address["nh@example.org"]  # medium: below the profile's floor
    assert "tralokinumab" in by_address["bio@example.org"]
    assert "A57520" not in by_address["bio@example.org"]


def test_a_profile_gets_each_change_in_one_digest_only(store: Store) -> None:
    _week(store)
    inbox = Inbox()
    recipients = [{"name": "billing", "addresses": ["a@example.org"]}]
    _digest(store, inbox, recipients)
    later = NOW + dt.timedelta(days=1)
    _digest(store, inbox, recipients, now=later)  # nothing new: no second (empty) digest
    assert len(inbox.messages()) == 1
    _digest(store, inbox, recipients, now=later, notifications={"send_empty_digest": True})
    messages = inbox.messages()
    assert len(messages) == 2
    assert str(messages[1]["Subject"]).startswith("No policy changes")
    assert "No changes since the last digest." in body_text(messages[1])


def _pending(title: str, *, kind: str = "code_removed", evidence: str = "") -> PendingChange:
    change = ChangeRecord(
        id=7,
        source="cms",
        document_id="A1",
        title=title,
        kind=kind,
        field="icd10_covered",
        before=title,
        after=None,
        severity="high",
        effective_date=TODAY,
        detected_at=NOW,
        url="javascript:alert(1)",
        version="2",
        previous_version="1",
        evidence=evidence or title,
        baseline=False,
    )
    return PendingChange(
        event_id=1, created_at=NOW, change=change, facets=ChangeFacets(contractors=(NOVITAS,))
    )


def test_hostile_titles_render_inert_and_truncated(store: Store) -> None:
    hostile = '<script>alert("x")</script> {{ 7*7 }} {% for x in y %}' + "A" * 10_000
    skin = cms_doc("A57520", hostile, codes=[icd("L82.0", hostile)])
    publish_version(store, skin, version=1, baseline=True)
    publish_version(store, replace(skin, codes=frozenset()), version=2)
    inbox = Inbox()
    _digest(store, inbox, [{"name": "billing", "addresses": ["a@example.org"]}])
    message = inbox.messages()[0]
    html, text = body_html(message), body_text(message)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "{{ 7*7 }}" in html and "49" not in html  # data, never evaluated as a template
    # Clipped: titles to 160 characters, evidence to 500, the whole message stays small.
    assert "A" * 500 not in html and "A" * 500 not in text
    assert len(html) < 20_000 and len(str(message["Subject"])) <= 180
    assert "\n" not in str(message["Subject"])

    # A document URL that is not http(s) never becomes a link.
    config = config_for(str(store.engine.url), 25)
    rendered = render_changes(
        [_pending(hostile)], kind="alert", profile="x", api=config.api, now=NOW
    )
    assert "javascript:" not in rendered.html
    assert "Source:" not in rendered.text


def test_checklist_changes_have_their_own_section() -> None:
    config = config_for("sqlite://", 25)
    rendered = render_changes(
        [
            _pending("Billing and Coding: Skin Lesions"),
            replace(
                _pending("Dupixent checklist"),
                change=replace(
                    _pending("Dupixent checklist").change,
                    id=8,
                    kind="checklist_changed",
                    after="new item: 12 weeks of topical corticosteroid",
                ),
            ),
        ],
        kind="digest",
        profile="billing",
        api=config.api,
        now=NOW,
    )
    section = rendered.text.split("== Affected PA checklists ==")[1]
    assert "Dupixent checklist: new item: 12 weeks of topical corticosteroid" in section
    assert "effective today" in section
    assert "Affected PA checklists" in rendered.html
    assert "Skin Lesions" not in section


def test_the_digest_is_written_at_each_scheduled_time_once(store: Store) -> None:
    daily = Schedule.parse("0 7 * * *")
    start = dt.datetime(2026, 11, 12, 6, 0, tzinfo=dt.UTC)
    assert latest_slot(daily, start, start + dt.timedelta(minutes=59)) is None
    assert latest_slot(daily, start, start + dt.timedelta(hours=2)) == start.replace(hour=7)
    # Missed for three days: one digest, for the latest slot.
    assert latest_slot(daily, start, start + dt.timedelta(days=3, hours=2)) == dt.datetime(
        2026, 11, 15, 7, 0, tzinfo=dt.UTC
    )

    _week(store)
    config = config_for(str(store.engine.url), 25)
    sender = Sender(store, config)
    profile = config.recipients[0]
    assert sender.planner.digest(profile, start) == 0  # first sight: schedule starts now
    assert sender.planner.digest(profile, start + dt.timedelta(minutes=30)) == 0
    assert sender.planner.digest(profile, start + dt.timedelta(hours=1)) == 1  # 07:00
    assert sender.planner.digest(profile, start + dt.timedelta(hours=2)) == 0  # done already
    deliveries = sender.notify.deliveries()
    assert [d.kind for d in deliveries] == ["digest"]


def test_digest_cli_previews_without_sending_then_sends(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _week(store)
    inbox = Inbox()
    with smtp_server(inbox) as server:
        path = tmp_path / "monitor.toml"
        path.write_text(f"""
[database]
url = "{store.engine.url}"

[email]
host = "127.0.0.1"
port = {server.port}
from_address = "monitor@example.org"

[[recipients]]
name = "billing"
addresses = ["billing@example.org"]
""")
        preview = tmp_path / "digest.html"
        assert main(["--config", str(path), "digest", "--preview", str(preview)]) == 0
        assert "Removal of Benign Skin Lesions" in preview.read_text()
        assert inbox.messages() == []
        assert main(["--config", str(path), "digest", "--send"]) == 0
        assert len(inbox.messages()) == 1
        capsys.readouterr()
        assert main(["--config", str(path), "outbox", "--status", "sent"]) == 0
        out = capsys.readouterr().out
        assert "digest" in out and "billing@example.org" in out and "1 sent" in out
