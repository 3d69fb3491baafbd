"""Secrets and forged lines in logs (issue 16, findings 7 and 8): every secret variable the
config names is masked whatever it is called, so are a generated link secret and variables
named like secrets; a reviewer name with a line break cannot forge a second log line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import THREE_VERSIONS, publish_versions, serving

from monitor.config import ApiConfig, parse_config
from monitor.links import link_secret
from monitor.logs import configure_logging
from monitor.store.core import Store

RELAY_PASSWORD = "relay-pa55word-not-for-logs"
HOOK_SECRET = "hook-secret-not-for-logs-0123"


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging("INFO", "text", stream=stream)
    yield stream
    for handler in root.handlers[:]:
        if handler.get_name() == "policy_monitor":
            root.removeHandler(handler)
    root.setLevel(level)


def test_renamed_and_webhook_secret_variables_are_masked(
    logged: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_PW", RELAY_PASSWORD)
    monkeypatch.setenv("HOOK_SIGNING", HOOK_SECRET)
    parse_config(
        {
            "email": {"password_env": "RELAY_PW"},
            "webhooks": [
                {"name": "scrubber", "url": "https://hooks.example", "secret_env": "HOOK_SIGNING"}
            ],
        }
    )
    log = logging.getLogger("policy_monitor.test")
    log.warning("relay said: 535 bad password %s", RELAY_PASSWORD)
    log.warning("signing with %s", HOOK_SECRET, extra={"detail": HOOK_SECRET})
    text = logged.getvalue()
    assert RELAY_PASSWORD not in text and HOOK_SECRET not in text
    assert text.count("***") == 3


def test_link_secrets_and_secret_named_variables_are_masked(
    logged: io.StringIO, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env_secret = "an-environment-link-secret-of-32-bytes-or-more"
    monkeypatch.setenv("POLICY_MONITOR_LINK_SECRET", env_secret)
    monkeypatch.setenv("SOME_OTHER_API_TOKEN", "token-nobody-configured")
    log = logging.getLogger("policy_monitor.test")
    log.warning("a %s and a %s", env_secret, "token-nobody-configured")
    monkeypatch.delenv("POLICY_MONITOR_LINK_SECRET")
    generated = link_secret(ApiConfig(link_secret_file=str(tmp_path / "secret"))).decode()
    log.warning("generated %s", generated)
    text = logged.getvalue()
    assert env_secret not in text and "token-nobody-configured" not in text
    assert generated not in text


def test_a_reviewer_name_with_a_line_break_cannot_forge_a_log_line(
    logged: io.StringIO, tmp_path: Path
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.store.db'}")
    publish_versions(store, THREE_VERSIONS)
    forged = "alice\n2026-01-01 00:00:00,000 WARNING policy_monitor.api: admin key revoked\r"
    try:
        with serving(store) as api, api.client("review") as client:
            change = store.changes()[0].id
            answer = client.post(f"/changes/{change}/review", json={"reviewer": forged})
            assert answer.status_code == 201
    finally:
        store.close()
    lines = [line for line in logged.getvalue().splitlines() if "reviewed by" in line]
    assert len(lines) == 1
    assert "alice\\n2026-01-01" in lines[0]
    assert not any(
        line.startswith("2026-01-01 00:00:00,000") for line in logged.getvalue().splitlines()
    )


def test_exception_tracebacks_keep_their_lines(logged: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("policy_monitor.test").exception("failed")
    assert "Traceback (most recent call last):\n" in logged.getvalue()
