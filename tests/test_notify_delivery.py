"""Alerts and delivery through a real SMTP server: batching, an SMTP outage, permanent
refusals, several sender instances on one database (SQLite and PostgreSQL), TLS and AUTH."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import ssl
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from notify_support import (
    Inbox,
    body_text,
    cms_doc,
    config_for,
    held_port,
    icd,
    later,
    publish_version,
    smtp_server,
)
from sqlite_support import migrated_sqlite

from monitor.cli.main import main
from monitor.config import Config
from monitor.store.core import Store
from monitor.store.models.notify import NotifyMessage
from monitor.store.outbox import NotifyStore
from notifications.sender import Sender, backoff

CODES = [icd(f"L{n:02d}.0", f"Condition {n}") for n in range(10, 60)]  # 50 covered codes


@pytest.fixture
def store(migrated_database_url: str) -> Iterator[Store]:
    opened = Store.open(migrated_database_url)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(tmp_path: Path, migrated_sqlite_template: Path) -> Iterator[Store]:
    """For the SMTP transport tests, where the database does not matter."""
    opened = Store.open(migrated_sqlite(migrated_sqlite_template, tmp_path / "monitor.store.db"))
    yield opened
    opened.close()


def _fifty_removed(store: Store) -> None:
    """One update of one article: 50 covered codes removed, 50 high-severity changes."""
    article = cms_doc("A57520", "Billing and Coding: Removal of Benign Skin Lesions", codes=CODES)
    publish_version(store, article, version=1, baseline=True)
    result = publish_version(store, replace(article, codes=frozenset()), version=2)
    assert result.changes == 50


def _alerts_only(addresses: list[str]) -> list[dict[str, Any]]:
    return [{"name": "billing", "addresses": addresses, "digest": False}]


def test_fifty_high_changes_make_one_alert_after_the_batch_window(store: Store) -> None:
    _fifty_removed(store)
    inbox = Inbox()
    with smtp_server(inbox) as server:
        config = config_for(
            str(store.engine.url), server.port, recipients=_alerts_only(["a@example.org"])
        )
        sender = Sender(store, config)
        # Changes are still arriving (the newest is younger than the window): wait.
        assert sender.run_once(later(0)).planned == 0
        report = sender.run_once(later(61))
        assert (report.planned, report.sent) == (1, 1)
        assert sender.run_once(later(120)).planned == 0  # claimed: never alerted again
    [message] = inbox.messages()
    assert str(message["Subject"]) == "Alert: 50 high changes — Novitas"
    text = body_text(message)
    assert all(f"L{n:02d}.0 -> -" in text for n in range(10, 60))


def test_alerts_respect_the_threshold_and_the_profile_switch(store: Store) -> None:
    article = cms_doc("A1", "Article", codes=[icd("L10.0")])
    publish_version(store, article, version=1, baseline=True)
    # A covered code added is medium: below the default alert threshold (high).
    wider = replace(article, codes=frozenset([icd("L10.0"), icd("L11.0")]))
    publish_version(store, wider, version=2)
    inbox = Inbox()
    recipients = [
        {"name": "high", "addresses": ["high@example.org"], "digest": False},
        {"name": "off", "addresses": ["off@example.org"], "digest": False, "alerts": False},
    ]
    with smtp_server(inbox) as server:
        url = str(store.engine.url)
        config = config_for(url, server.port, recipients=recipients)
        Sender(store, config).run_once(later(61))
        assert inbox.messages() == []
        # Threshold lowered to medium: "high" dealt with the change already (it is never
        # reconsidered), "off" has alerts switched off, a new profile gets it.
        recipients.append({"name": "new", "addresses": ["new@example.org"], "digest": False})
        lower = config_for(
            url, server.port, recipients=recipients, notifications={"alert_min_severity": "medium"}
        )
        Sender(store, lower).run_once(later(61))
    assert [str(m["To"]) for m in inbox.messages()] == ["new@example.org"]


def test_an_smtp_outage_delays_but_loses_and_duplicates_nothing(store: Store) -> None:
    _fifty_removed(store)
    inbox = Inbox()
    down = held_port()  # refuses connections; no other process can take the port meanwhile
    port = down.getsockname()[1]
    addresses = [f"user{n}@example.org" for n in range(5)]
    config = config_for(str(store.engine.url), port, recipients=_alerts_only(addresses))
    sender = Sender(store, config)
    notify = NotifyStore(store)

    # Down: the first attempt fails, the other four are deferred without an attempt.
    report = sender.run_once(later(61))
    assert (report.planned, report.sent, report.retrying, report.deferred) == (1, 0, 1, 4)
    for seconds in (70, 80, 90):
        assert sender.run_once(later(seconds)).sent == 0
    pending = notify.deliveries(status="pending")
    assert len(pending) == 5
    # One attempt per round while the server is down: the refusal defers the rest.
    assert sum(d.attempts for d in pending) == 4
    assert all("ConnectionRefusedError" in (d.last_error or "") for d in pending if d.attempts)
    # The backlog is what /metrics shows operators.
    assert _backlog(store) == 5

    with smtp_server(inbox, sock=down):  # back, on the same port (the held socket)
        report = sender.run_once(later(200))
        assert report.sent == 5
        assert sender.run_once(later(400)).sent == 0
    keys = inbox.keys()
    assert sorted(to for _, to in keys) == addresses
    assert len(set(keys)) == len(keys) == 5  # one message id, each address once
    log = notify.attempts(notify.deliveries(status="sent")[0].id)
    assert log[-1][1] == "sent" and "250" in (log[-1][2] or "")
    assert _backlog(store) == 0


def _backlog(store: Store) -> float:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from monitor.api.metrics import metrics_registry

    text = generate_latest(metrics_registry(store)).decode()
    return next(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "policy_monitor_outbox_deliveries"
        and sample.labels["status"] == "pending"
    )


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    import random

    rng = random.Random(7)
    delays = [backoff(n, base=10, cap=100, rng=rng).total_seconds() for n in range(1, 8)]
    for attempt, delay in enumerate(delays, start=1):
        full = min(100, 10 * 2 ** (attempt - 1))
        assert full / 2 <= delay <= full
    assert len(set(delays)) == len(delays)  # jittered


class _Refusing(Inbox):
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("gone@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_a_refused_recipient_fails_at_once_and_can_be_retried(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fifty_removed(store)
    inbox = _Refusing()
    with smtp_server(inbox) as server:
        config = config_for(
            str(store.engine.url),
            server.port,
            recipients=_alerts_only(["ok@example.org", "gone@example.org"]),
        )
        report = Sender(store, config).run_once(later(61))
        assert (report.sent, report.failed) == (1, 1)
        [failed] = NotifyStore(store).deliveries(status="failed")
        assert failed.recipient == "gone@example.org" and failed.attempts == 1
        assert "550" in (failed.last_error or "")

        path = tmp_path / "monitor.toml"
        path.write_text(f'[database]\nurl = "{store.engine.url}"\n')
        capsys.readouterr()
        assert main(["--config", str(path), "outbox", "--status", "failed"]) == 0
        assert "gone@example.org" in capsys.readouterr().out
        assert main(["--config", str(path), "outbox", "retry", str(failed.id)]) == 0
        assert NotifyStore(store).deliveries(ids=[failed.id])[0].status == "pending"
        assert main(["--config", str(path), "outbox", "retry", str(failed.id)]) == 1


def test_several_instances_write_one_alert_and_send_each_delivery_once(store: Store) -> None:
    _fifty_removed(store)
    inbox = Inbox(delay_seconds=0.02)
    addresses = [f"user{n}@example.org" for n in range(24)]
    with smtp_server(inbox) as server:
        config = config_for(str(store.engine.url), server.port, recipients=_alerts_only(addresses))
        senders = [Sender(store, config, owner=f"instance-{n}") for n in range(3)]
        now = later(61)
        barrier = threading.Barrier(len(senders))
        errors: list[BaseException] = []

        def work(sender: Sender) -> None:
            try:
                barrier.wait()
                sender.run_once(now)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(s,)) for s in senders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        for sender in senders:  # whatever a lost race left is picked up
            sender.run_once(later(62))
    assert store.count(NotifyMessage) == 1
    keys = Counter(inbox.keys())
    assert sorted(to for _, to in keys) == sorted(addresses)
    assert set(keys.values()) == {1}


# -- TLS and AUTH ---------------------------------------------------------------------------


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


PASSWORD = "s3cret-Pa55word-for-the-relay"


def _authenticator(inbox: Inbox) -> Any:
    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and data.password.decode() == PASSWORD:
            inbox.auth_logins.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    return authenticate


def _tls_config(store: Store, port: int, security: str, cert: Path) -> Config:
    return config_for(
        str(store.engine.url),
        port,
        recipients=_alerts_only(["a@example.org"]),
        email_extra={
            "security": security,
            "username": "monitor",
            "password_env": "TEST_SMTP_PASSWORD",
            "ca_file": str(cert),
        },
    )


def test_starttls_with_auth_delivers_and_never_logs_the_password(
    sqlite_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = sqlite_store
    cert, key = _self_signed(tmp_path)
    _fifty_removed(store)
    inbox = Inbox()
    caplog.set_level(logging.DEBUG)
    with smtp_server(
        inbox,
        tls_context=_server_context(cert, key),
        require_starttls=True,
        authenticator=_authenticator(inbox),
        auth_required=True,
    ) as server:
        config = _tls_config(store, server.port, "starttls", cert)
        monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong-" + PASSWORD)
        report = Sender(store, config).run_once(later(61))
        assert (report.sent, report.retrying) == (0, 1)
        [pending] = NotifyStore(store).deliveries(status="pending")
        assert "authentication refused (535)" in (pending.last_error or "")
        monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
        assert Sender(store, config).run_once(later(200)).sent == 1
    assert inbox.auth_logins == ["monitor"]
    assert len(inbox.messages()) == 1
    assert caplog.records  # the failure was logged …
    assert PASSWORD not in caplog.text  # … without the password
    assert all(PASSWORD not in (d.last_error or "") for d in NotifyStore(store).deliveries())


def test_implicit_tls_checks_the_certificate(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path)
    (tmp_path / "other").mkdir()
    other_cert, _ = _self_signed(tmp_path / "other")
    store = sqlite_store
    _fifty_removed(store)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    inbox = Inbox()
    with smtp_server(
        inbox,
        ssl_context=_server_context(cert, key),
        authenticator=_authenticator(inbox),
        auth_require_tls=False,  # aiosmtpd only counts STARTTLS as TLS; this is implicit TLS
    ) as server:
        # Trusting another CA: the handshake fails, nothing is sent, the delivery waits.
        untrusted = _tls_config(store, server.port, "tls", other_cert)
        assert Sender(store, untrusted).run_once(later(61)).sent == 0
        assert "CERTIFICATE_VERIFY_FAILED" in (
            NotifyStore(store).deliveries(status="pending")[0].last_error or ""
        )
        trusted = _tls_config(store, server.port, "tls", cert)
        assert Sender(store, trusted).run_once(later(200)).sent == 1
    assert len(inbox.messages()) == 1 and inbox.auth_logins == ["monitor"]
