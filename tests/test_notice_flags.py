"""Notice-period flags: a change first seen 2026-03-02 that takes effect 2026-03-15 gave 13 days'
notice (short_notice under the default 30), one effective 2026-02-20 is retroactive, one
effective 2026-05-01 gave enough notice, one whose document states no date gets no flag. Shown
in `changes` (table, JSON, --flag), the API (flags, ?flag=, change page, metrics), the digest and
the alert email."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import (
    SOURCE,
    PolicySpec,
    finish_run,
    payer_document,
    policy_text,
    serving,
    start_run,
)
from notify_support import Inbox, config_for, later, smtp_server

import monitor.pipeline.publish
from fixtures.smtp import body_html, body_text
from monitor.cli.main import main
from monitor.config import parse_config
from monitor.pipeline.publish import publish
from monitor.store.core import ChangeRecord, Store
from monitor.wording import notice_flags
from notifications.sender import Sender

FIRST_SEEN = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
# Document key -> the effective date its second version states (None: states none).
EFFECTIVE = {
    "/policies/drug/short.txt": "March 15, 2026",  # 13 days after first seen
    "/policies/drug/retro.txt": "February 20, 2026",  # 10 days before first seen
    "/policies/drug/ample.txt": "May 1, 2026",  # 60 days after first seen
    "/policies/drug/undated.txt": None,
}
SHORT, RETRO, AMPLE, UNDATED = EFFECTIVE


def test_the_rule_with_dates_spelled_out() -> None:
    seen = dt.date(2026, 3, 2)
    assert notice_flags(dt.date(2026, 3, 15), seen, 30) == ("short_notice",)
    assert notice_flags(dt.date(2026, 2, 20), seen, 30) == ("retroactive",)
    assert notice_flags(dt.date(2026, 5, 1), seen, 30) == ()
    assert notice_flags(None, seen, 30) == ()
    # The boundary: exactly notice_days later is enough notice; the day it is seen is not.
    assert notice_flags(dt.date(2026, 4, 1), seen, 30) == ()
    assert notice_flags(dt.date(2026, 3, 31), seen, 30) == ("short_notice",)
    assert notice_flags(seen, seen, 30) == ("short_notice",)
    assert notice_flags(dt.date(2026, 3, 15), seen, 10) == ()


def _text(effective: str | None, weeks: int) -> str:
    text = policy_text(PolicySpec(weeks=weeks, effective=effective or "January 1, 2026"))
    if effective is None:
        text = "\n".join(
            line for line in text.splitlines() if not line.startswith("Effective Date")
        )
    return text


def _publish_four(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each document: a baseline version effective 2026-01-01 (the undated one states no date),
    then, first seen 2026-03-02, a version whose trial goes from 8 to 12 weeks."""
    ctx = start_run(store, baseline=True)
    for key, effective in EFFECTIVE.items():
        baseline_date = None if effective is None else "January 1, 2026"
        publish(store, ctx, *payer_document(key, _text(baseline_date, 8)))
    finish_run(store, ctx)
    monkeypatch.setattr(monitor.pipeline.publish, "utcnow", lambda: FIRST_SEEN)
    ctx = start_run(store, baseline=False)
    for key, effective in EFFECTIVE.items():
        publish(store, ctx, *payer_document(key, _text(effective, 12)))
    finish_run(store, ctx)
    monkeypatch.undo()


@pytest.fixture
def published(migrated_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    store = Store.open(migrated_database_url)
    try:
        _publish_four(store, monkeypatch)
        yield store
    finally:
        store.close()


def _step_change(records: list[ChangeRecord], key: str) -> ChangeRecord:
    (found,) = [r for r in records if r.document_id == key and r.kind.startswith("step_therapy")]
    return found


def test_store_flags_each_change_against_its_dates(published: Store) -> None:
    records = published.changes(include_baseline=False)
    short, retro, ample, undated = (_step_change(records, key) for key in EFFECTIVE)
    assert short.first_seen == dt.date(2026, 3, 2)
    assert short.effective_date == dt.date(2026, 3, 15)
    assert short.flags == ("short_notice",)
    assert short.flag_notes == ("short notice: effective 13 days after first seen",)
    assert retro.effective_date == dt.date(2026, 2, 20)
    assert retro.flags == ("retroactive",)
    assert ample.effective_date == dt.date(2026, 5, 1)
    assert ample.flags == ()
    assert undated.effective_date is None
    assert undated.flags == ()
    assert all(r.flags == () for r in published.changes() if r.baseline)
    # A source allowed 10 days' notice: 13 days is enough.
    relaxed = published.changes(include_baseline=False, notice_days={SOURCE: 10})
    assert _step_change(relaxed, SHORT).flags == ()
    kept = published.changes(flag="retroactive")
    assert kept and {r.document_id for r in kept} == {RETRO}


def _config_file(tmp_path: Path, url: str, notice_days: int | None = None) -> Path:
    notice = f"notice_days = {notice_days}\n" if notice_days is not None else ""
    path = tmp_path / "monitor.toml"
    path.write_text(
        f'[database]\nurl = "{url}"\n\n[[sources]]\nname = "{SOURCE}"\nkind = "payer_policies"\n'
        f'payer = "Acme Health"\ndocuments = ["https://payer.example/policies/drug/short.txt"]\n'
        f"{notice}"
    )
    return path


def test_changes_cli_shows_and_filters_flags(
    published: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(_config_file(tmp_path, str(published.engine.url.render_as_string(False))))
    assert main(["--config", path, "changes", "--format", "json", "--no-baseline"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    steps = {r["document_id"]: r for r in rows if r["kind"].startswith("step_therapy")}
    assert steps[SHORT]["flags"] == ["short_notice"]
    assert steps[SHORT]["effective_date"] == "2026-03-15"
    assert steps[SHORT]["detected_at"].startswith("2026-03-02")
    assert steps[SHORT]["notice_days"] == 30
    assert steps[RETRO]["flags"] == ["retroactive"]
    assert steps[AMPLE]["flags"] == []
    assert steps[UNDATED]["flags"] == []

    assert main(["--config", path, "changes", "--format", "json", "--flag", "short_notice"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and {r["document_id"] for r in rows} == {SHORT}

    assert main(["--config", path, "changes", "--flag", "retroactive"]) == 0
    table = capsys.readouterr().out
    assert "RETROACTIVE" in table and "retro.txt" in table and "short.txt" not in table

    # notice_days = 10 in the source's config: 13 days' notice is enough.
    path = str(_config_file(tmp_path, str(published.engine.url.render_as_string(False)), 10))
    assert main(["--config", path, "changes", "--format", "json", "--flag", "short_notice"]) == 0
    assert capsys.readouterr().out == ""


def test_api_feed_filter_change_page_and_metrics(published: Store) -> None:
    with serving(published) as api, api.client() as client:
        feed = client.get("/changes", params={"include_baseline": "false", "limit": 100}).json()
        steps = {c["document_id"]: c for c in feed["items"] if c["kind"].startswith("step_therapy")}
        assert steps[SHORT]["flags"] == ["short_notice"]
        assert steps[SHORT]["effective_date"] == "2026-03-15"
        assert steps[RETRO]["flags"] == ["retroactive"]
        assert steps[AMPLE]["flags"] == [] and steps[UNDATED]["flags"] == []

        only = client.get("/changes", params={"flag": "short_notice"}).json()["items"]
        assert only and {c["document_id"] for c in only} == {SHORT}
        assert client.get("/changes", params={"flag": "late"}).status_code == 422

        page = client.get(f"/changes/{steps[SHORT]['id']}/page")
        assert page.status_code == 200
        assert 'data-flag="short_notice"' in page.text
        assert "Short notice: effective 13 days after first seen" in page.text
        page = client.get(f"/changes/{steps[AMPLE]['id']}/page")
        assert "notice-flag" not in page.text.split("</style>", 1)[1]

        metrics = client.get("/metrics").text
        counts = {
            flag: sum(1 for c in feed["items"] if flag in c["flags"])
            for flag in ("short_notice", "retroactive")
        }
        assert counts["short_notice"] >= 1 and counts["retroactive"] >= 1
        for flag, count in counts.items():
            line = f'policy_monitor_notice_flagged_changes{{flag="{flag}",source="{SOURCE}"}}'
            assert f"{line} {float(count)}" in metrics


def test_api_judges_by_the_served_configs_notice_days(published: Store) -> None:
    # notice_days = 10: the change effective 13 days after it was first seen gave enough notice.
    config = parse_config(
        {"sources": [{"name": SOURCE, "kind": "payer_policies", "payer": "Acme Health",
                      "documents": ["https://payer.example/a.txt"], "notice_days": 10}]}
    )  # fmt: skip
    with serving(published, config=config) as api, api.client() as client:
        assert client.get("/changes", params={"flag": "short_notice"}).json()["items"] == []


def test_digest_and_alert_emails_show_the_flags(published: Store, database_url: str) -> None:
    inbox = Inbox()
    # The outbox rows are written at the real time of publishing; past the alert window:
    now = later(120)
    with smtp_server(inbox) as server:
        config = config_for(database_url, server.port, notifications={"alert_min_severity": "low"})
        sender = Sender(published, config)
        assert sender.planner.plan(now) >= 1  # the alert (the digest is not due yet)
        sender.planner.digest(config.recipients[0], now, force=True)
        report = sender.deliver_due(now + dt.timedelta(seconds=60))
        assert report.failed == report.retrying == 0
        messages = inbox.messages()
    subjects = [m["Subject"] for m in messages]
    assert len(messages) == 2 and sum(s.startswith("Alert:") for s in subjects) == 1
    for message in messages:
        for body in (body_text(message), body_html(message)):
            assert "Short notice: effective 13 days after first seen" in body
            assert "Retroactive: effective 10 days before first seen" in body
