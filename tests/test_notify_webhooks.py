"""Webhooks against a local HTTP server that checks the HMAC: one signed JSON POST per batch,
retried after a 503 with the same body and delivery id, logged; bad URLs refused."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from pathlib import Path

import pytest
from http_support import QuietHandler, loopback_http
from notify_support import cms_doc, config_for, icd, later, publish_version
from sqlite_support import migrated_sqlite

from monitor.errors import ConfigError
from monitor.store.core import Store
from monitor.store.outbox import NotifyStore
from notifications.sender import Sender

SECRET = "hook-secret-0123456789"


@dataclass
class Receiver:
    """What the webhook endpoint saw: (body, signature valid?, delivery id)."""

    failures_first: int = 1
    posts: list[tuple[bytes, bool, str]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    seen = Receiver()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.read_body()
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            valid = hmac.compare_digest(expected, self.headers["X-Policy-Monitor-Signature"])
            seen.posts.append((body, valid, self.headers["X-Policy-Monitor-Delivery"]))
            self.send_body(
                503 if len(seen.posts) <= seen.failures_first else (200 if valid else 401)
            )

    with loopback_http(Handler) as base_url:
        yield seen, f"{base_url}/hooks/policy"


@pytest.fixture
def store(tmp_path: Path, migrated_sqlite_template: Path) -> Iterator[Store]:
    opened = Store.open(migrated_sqlite(migrated_sqlite_template, tmp_path / "monitor.store.db"))
    yield opened
    opened.close()


def test_a_change_batch_is_posted_signed_and_retried_after_a_503(
    store: Store, receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen, url = receiver
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    article = cms_doc("A1", "Article", codes=[icd("L10.0"), icd("L11.0")])
    other = cms_doc("L2", "Elsewhere", codes=[icd("C44.1")])
    publish_version(store, article, version=1, baseline=True)
    publish_version(store, other, version=1, baseline=True)
    publish_version(store, dc_replace(article, codes=frozenset([icd("L10.0")])), version=2)
    publish_version(store, dc_replace(other, codes=frozenset()), version=2)
    hook = {
        "name": "scrubber",
        "url": url,
        "secret_env": "TEST_WEBHOOK_SECRET",
        "codes": ["L1*"],
        "timeout_seconds": 5.0,
    }
    config = config_for(str(store.engine.url), 25, recipients=[], webhooks=[hook])
    sender = Sender(store, config)

    first = sender.run_once(later(61))
    assert (first.planned, first.sent, first.retrying) == (1, 0, 1)
    assert sender.run_once(later(200)).sent == 1
    assert sender.run_once(later(400)).sent == 0

    assert len(seen.posts) == 2
    (body1, valid1, id1), (body2, valid2, id2) = seen.posts
    assert valid1 and valid2 and body1 == body2 and id1 == id2  # the same signed batch
    payload = json.loads(body2)
    assert payload["webhook"] == "scrubber"
    [change] = payload["changes"]  # the code filter kept L11.0 and left C44.1 out
    assert (change["document_id"], change["kind"], change["before"]) == (
        "A1",
        "code_removed",
        "L11.0",
    )
    assert change["issuer"] == "Novitas"
    assert change["change_url"].startswith("https://monitor.example.org/changes/")

    notify = NotifyStore(store)
    [delivery] = notify.deliveries()
    log = notify.attempts(delivery.id)
    assert [(outcome, detail) for _, outcome, detail in log] == [
        ("error", f"webhook to {url}: HTTP 503: "),
        ("sent", "HTTP 200"),
    ]


def test_a_webhook_without_its_secret_is_not_sent_unsigned(
    store: Store, receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen, url = receiver
    monkeypatch.delenv("TEST_WEBHOOK_SECRET", raising=False)
    article = cms_doc("A1", "Article", codes=[icd("L10.0")])
    publish_version(store, article, version=1, baseline=True)
    publish_version(store, dc_replace(article, codes=frozenset()), version=2)
    hook = {"name": "scrubber", "url": url, "secret_env": "TEST_WEBHOOK_SECRET"}
    config = config_for(str(store.engine.url), 25, recipients=[], webhooks=[hook])
    report = Sender(store, config).run_once(later(61))
    assert (report.sent, report.retrying) == (0, 1)
    assert seen.posts == []
    [delivery] = NotifyStore(store).deliveries()
    assert "TEST_WEBHOOK_SECRET" in (delivery.last_error or "")


@pytest.mark.parametrize("url", ["ftp://example.org/hook", "file:///etc/passwd", "example.org"])
def test_only_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(ConfigError, match="must be an http:// or https:// URL"):
        config_for("sqlite://", 25, webhooks=[{"name": "x", "url": url}])
