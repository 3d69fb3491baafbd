"""Apprise notifiers (``[[notifiers]]``) against a real local receiver: Apprise's ``json://``
posts to a ThreadingHTTPServer on 127.0.0.1. One message per change batch, through the same
outbox as email: retried after the receiver fails, sent once across a re-run and a crashed
sender, and the URL's token never reaches a log line or the database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from pathlib import Path
from typing import Any

import pytest
from http_support import QuietHandler, loopback_http
from notify_support import cms_doc, config_for, icd, later, payer_doc, publish_version

from monitor.cli.main import main
from monitor.config import Config, parse_config
from monitor.errors import ConfigError
from monitor.logs import configure_logging
from monitor.store.core import Store, utcnow
from monitor.store.outbox import NotifyStore
from notifications.sender import Sender

TOKEN = "T0kenVa1ueXyZ42"  # looks generated: masked wherever it would be logged
PASSWORD = "chat-Pa55word"


@dataclass
class Receiver:
    """What the chat endpoint saw: (path, JSON body, Authorization header)."""

    failures_first: int = 0
    posts: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)
    port: int = 0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    seen = Receiver()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.read_body()
            seen.posts.append((self.path, json.loads(body), self.headers.get("Authorization")))
            self.send_body(503 if len(seen.posts) <= seen.failures_first else 200)

    with loopback_http(Handler) as base_url:
        seen.port = int(base_url.rsplit(":", 1)[1])
        yield seen


@pytest.fixture
def store(migrated_database_url: str) -> Iterator[Store]:
    opened = Store.open(migrated_database_url)
    yield opened
    opened.close()


def _url(receiver: Receiver) -> str:
    return f"json://bot:{PASSWORD}@127.0.0.1:{receiver.port}/chat/{TOKEN}"


def _config(store: Store, notifiers: list[dict[str, Any]], **settings: Any) -> Config:
    base = config_for(
        str(store.engine.url.render_as_string(hide_password=False)),
        25,
        recipients=[],
        notifications={"alert_window_seconds": 60, "lease_seconds": 30.0, **settings},
    )
    return dc_replace(base, notifiers=parse_config({"notifiers": notifiers}).notifiers)


def _publish_changes(store: Store) -> None:
    """Two changed documents: a CMS article losing a code, a payer policy with a new title."""
    article = cms_doc("A1", "Lesion removal", codes=[icd("L10.0"), icd("L11.0")])
    policy = payer_doc("dupixent", "Dupixent (dupilumab)", drugs=("dupilumab",))
    publish_version(store, article, version=1, baseline=True)
    publish_version(store, policy, version=1, baseline=True, source="acme", kind="payer_policies")
    publish_version(store, dc_replace(article, codes=frozenset([icd("L10.0")])), version=2)
    publish_version(
        store,
        payer_doc(
            "dupixent",
            "Dupixent (dupilumab)",
            drugs=("dupilumab",),
            indication="Coverage criteria. Prior authorization is required for dupilumab.",
        ),
        version=2,
        source="acme",
        kind="payer_policies",
    )


def test_a_batch_is_delivered_once_retried_after_a_failure_and_not_resent(
    store: Store, receiver: Receiver
) -> None:
    receiver.failures_first = 1
    _publish_changes(store)
    config = _config(store, [{"name": "billing-chat", "url": _url(receiver)}])
    sender = Sender(store, config)

    first = sender.run_once(later(61))
    assert (first.planned, first.sent, first.retrying) == (1, 0, 1)
    assert sender.run_once(later(200)).sent == 1
    # A second round, and a restarted sender (a fresh instance), find nothing left to send.
    assert sender.run_once(later(400)) == dataclasses.replace(first, planned=0, retrying=0)
    restarted = Sender(store, config)
    assert restarted.run_once(later(600)).sent == 0

    assert len(receiver.posts) == 2
    (path1, body1, auth1), (path2, body2, auth2) = receiver.posts
    assert auth1 == auth2
    assert path1 == path2 == f"/chat/{TOKEN}"
    assert body1 == body2  # the retry sends the stored message, unchanged
    assert auth1 is not None and auth1.startswith("Basic ")  # the URL's user:password went along
    assert body2["title"] == "Policy monitor: 2 change(s), 1 high"
    lines = body2["message"].splitlines()
    # Highest severity first; each change with its issuer, what changed, its date and flags,
    # and a signed change-page link on the next line.
    assert lines[0].startswith("HIGH Novitas · Lesion removal: code removed")
    assert "L11.0" in lines[0] and "SHORT NOTICE" in lines[0]
    assert lines[2].startswith("MEDIUM Acme Health · Dupixent (dupilumab): ")
    assert "Prior authorization is required" in lines[2]
    for link in (lines[1], lines[3]):
        assert link.strip().startswith("https://monitor.example.org/changes/")
        assert "&sig=" in link

    notify = NotifyStore(store)
    [delivery] = notify.deliveries()
    assert (delivery.channel, delivery.kind, delivery.status) == ("apprise", "notifier", "sent")
    assert delivery.recipient == "billing-chat (json://…)"
    outcomes = [outcome for _, outcome, _ in notify.attempts(delivery.id)]
    assert outcomes == ["error", "sent"]


def test_a_sender_that_died_holding_the_delivery_leaves_it_to_be_sent_once(
    store: Store, receiver: Receiver
) -> None:
    _publish_changes(store)
    config = _config(store, [{"name": "billing-chat", "url": _url(receiver)}])
    now = later(61)
    crashed = Sender(store, config, owner="crashed-instance")
    assert crashed.planner.plan(now) == 1  # written, then the process dies before sending
    notify = NotifyStore(store)
    [pending] = notify.deliveries()
    lease = now + dt.timedelta(seconds=config.notifications.lease_seconds)
    assert notify.claim_delivery(pending.id, owner="crashed-instance", now=now, lease_until=lease)

    survivor = Sender(store, config, owner="survivor")
    assert survivor.run_once(now + dt.timedelta(seconds=1)).sent == 0  # still leased
    assert receiver.posts == []
    after_lease = lease + dt.timedelta(seconds=1)
    assert survivor.run_once(after_lease).sent == 1
    assert survivor.run_once(after_lease + dt.timedelta(seconds=120)).sent == 0
    # The crashed instance cannot mark what it no longer holds: nothing goes out twice.
    assert not notify.mark_sent(pending.id, owner="crashed-instance", now=utcnow(), detail="late")
    assert len(receiver.posts) == 1
    [delivery] = notify.deliveries()
    assert delivery.status == "sent" and delivery.attempts == 1


def test_filters_choose_what_a_notifier_hears(store: Store, receiver: Receiver) -> None:
    _publish_changes(store)
    notifiers = [
        {"name": "derm-chat", "url": _url(receiver), "drugs": ["dupilumab"]},
        {"name": "cms-chat", "url": _url(receiver), "sources": ["nothing-such"]},
    ]
    report = Sender(store, _config(store, notifiers)).run_once(later(61))
    assert (report.planned, report.sent) == (1, 1)
    [(_path, body, _auth)] = receiver.posts
    assert "Dupixent" in body["message"] and "Lesion removal" not in body["message"]


def test_the_url_token_never_reaches_a_log_line_or_the_database(
    store: Store, receiver: Receiver
) -> None:
    receiver.failures_first = 1
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    apprise_level = logging.getLogger("apprise").level
    configure_logging("DEBUG", "text", stream=stream)
    try:
        _publish_changes(store)
        config = _config(store, [{"name": "billing-chat", "url": _url(receiver)}])
        logging.getLogger("policy_monitor.test").warning("configured %s", _url(receiver))
        sender = Sender(store, config)
        sender.run_once(later(61))
        sender.run_once(later(200))
    finally:
        for handler in root.handlers[:]:
            if handler.get_name() == "policy_monitor":
                root.removeHandler(handler)
        root.setLevel(level)
        logging.getLogger("apprise").setLevel(apprise_level)
    logged = stream.getvalue()
    assert "configured ***" in logged
    assert "failed, attempt 1" in logged  # the failure was logged …
    assert "billing-chat (json://…)" in logged  # … naming the notifier
    assert TOKEN not in logged and PASSWORD not in logged
    notify = NotifyStore(store)
    stored = [
        (d.recipient, d.last_error or "", d.body_text, d.subject) for d in notify.deliveries()
    ] + [(detail or "",) for d in notify.deliveries() for _, _, detail in notify.attempts(d.id)]
    assert stored and not any(
        TOKEN in value or PASSWORD in value for row in stored for value in row
    )
    assert len(receiver.posts) == 2


def test_an_url_apprise_does_not_know_fails_once_for_good(store: Store) -> None:
    _publish_changes(store)
    config = _config(store, [{"name": "nowhere", "url": "nosuchservice://abc/def"}])
    report = Sender(store, config).run_once(later(61))
    assert (report.sent, report.failed, report.retrying) == (0, 1, 0)
    [delivery] = NotifyStore(store).deliveries()
    assert delivery.status == "failed"
    assert "Apprise does not understand this URL" in (delivery.last_error or "")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_config_checks_notifiers_without_quoting_the_url(database_url: str) -> None:
    with pytest.raises(ConfigError) as bad_url:
        parse_config({"notifiers": [{"name": "x", "url": f"slack {TOKEN}"}]})
    assert "must be an Apprise URL" in str(bad_url.value) and TOKEN not in str(bad_url.value)
    with pytest.raises(ConfigError, match="token"):
        parse_config({"notifiers": [{"name": "x", "url": "json://h/p", "token": "t"}]})
    with pytest.raises(ConfigError, match="used twice"):
        parse_config(
            {"notifiers": [{"name": "x", "url": "json://h/p"}, {"name": "x", "url": "json://h/q"}]}
        )
    with pytest.raises(ConfigError, match="min_severity"):
        parse_config({"notifiers": [{"name": "x", "url": "json://h/p", "min_severity": "huge"}]})
    parsed = parse_config({"notifiers": [{"name": "x", "url": "json://h/p", "codes": ["L40*"]}]})
    assert parsed.notifiers[0].codes == ("L40*",)


def test_outbox_deliver_sends_to_notifiers_and_lists_them_without_the_url(
    store: Store, receiver: Receiver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _publish_changes(store)
    path = tmp_path / "monitor.toml"
    path.write_text(
        f'[database]\nurl = "{store.engine.url.render_as_string(hide_password=False)}"\n\n'
        "[notifications]\nalert_window_seconds = 0\n\n"
        f'[[notifiers]]\nname = "billing-chat"\nurl = "{_url(receiver)}"\n'
        'min_severity = "high"\n'
    )
    assert main(["--config", str(path), "outbox", "deliver"]) == 0
    assert "1 message(s) written; 1 delivered" in capsys.readouterr().out
    assert main(["--config", str(path), "outbox", "deliver"]) == 0
    assert "0 message(s) written; 0 delivered" in capsys.readouterr().out
    assert main(["--config", str(path), "outbox"]) == 0
    listed = capsys.readouterr().out
    assert "notifier" in listed and "billing-chat (json://…)" in listed and "1 sent" in listed
    assert TOKEN not in listed and PASSWORD not in listed
    [(_path, body, _auth)] = receiver.posts
    assert body["title"] == "Policy monitor: 1 change(s), 1 high"  # min_severity = "high"
