"""Signed change-page links (issue 16, finding 1): no secret derived from what readers see, a
secret of at least 32 bytes or one generated into a 0600 file, and ``expires`` capped."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import THREE_VERSIONS, Harness, publish_versions, serving

from monitor.config import ApiConfig, parse_config
from monitor.errors import ConfigError
from monitor.links import change_page_url, link_secret, verify_change_link
from monitor.store.core import Store

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Harness]:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.store.db'}")
    publish_versions(store, THREE_VERSIONS)
    try:
        with serving(store) as harness:
            yield harness
    finally:
        store.close()


def _old_derived_signature(public_url: str, change_id: int, expires: int) -> str:
    """What the links of 0.1 were signed with when no variable was set: public knowledge."""
    key = hashlib.sha256(b"policy-monitor-links:" + public_url.encode()).digest()
    return hmac.new(key, f"change:{change_id}:{expires}".encode(), hashlib.sha256).hexdigest()


def test_a_link_forged_with_the_old_derived_key_is_refused(
    api: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    change = api.store.changes()[0].id
    public_url = parse_config({}).api.public_url
    with api.client(scope=None) as anonymous:
        for expires in (2**31 - 1, int(dt.datetime.now(dt.UTC).timestamp()) + 3600):
            sig = _old_derived_signature(public_url, change, expires)
            forged = anonymous.get(f"/changes/{change}/page?expires={expires}&sig={sig}")
            # 401, as for every other invalid or expired link: no credential was accepted.
            assert forged.status_code == 401
    # Not with the variable unset either: then the secret is a generated file, not derived.
    monkeypatch.delenv("POLICY_MONITOR_LINK_SECRET")
    config = ApiConfig(link_secret_file=str(tmp_path / "secret"))
    expires = int(NOW.timestamp()) + 3600
    sig = _old_derived_signature(config.public_url, 5, expires)
    assert not verify_change_link(config, 5, expires, sig, now=NOW)


def test_expires_is_capped_at_the_configured_lifetime() -> None:
    config = ApiConfig()
    far = 2**31 - 1  # a link the real secret signed, but valid until 2038: never issued
    sig = hmac.new(link_secret(config), f"change:6:{far}".encode(), hashlib.sha256).hexdigest()
    assert not verify_change_link(config, 6, far, sig, now=NOW)
    short = dataclasses.replace(config, link_lifetime_days=7)
    url = change_page_url(short, 6, now=NOW, lifetime=dt.timedelta(days=365))
    expires = int(url.split("expires=", 1)[1].split("&", 1)[0])
    assert expires == int((NOW + dt.timedelta(days=7)).timestamp())
    assert verify_change_link(short, 6, expires, url.rsplit("sig=", 1)[1], now=NOW)


@pytest.mark.parametrize("value", ["x", "first secret", "a" * 31])
def test_a_short_secret_is_refused_for_signing_and_verifying(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("POLICY_MONITOR_LINK_SECRET", value)
    with pytest.raises(ConfigError, match="shorter than 32 bytes"):
        change_page_url(ApiConfig(), 1, now=NOW)
    with pytest.raises(ConfigError, match="shorter than 32 bytes"):
        verify_change_link(ApiConfig(), 1, int(NOW.timestamp()) + 60, "00", now=NOW)


def test_without_the_variable_a_secret_is_generated_once_into_a_0600_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("POLICY_MONITOR_LINK_SECRET")
    database = tmp_path / "data" / "monitor.store.db"
    config = parse_config({"database": {"url": f"sqlite:///{database}"}}).api
    assert config.link_secret_file == f"{database}.link-secret"
    database.parent.mkdir()
    caplog.set_level(logging.WARNING, logger="policy_monitor.links")
    url = change_page_url(config, 3, now=NOW)
    secret_file = Path(config.link_secret_file)
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(secret_file.read_bytes().strip()) >= 32
    assert "generated a secret for change-page links" in caplog.text
    caplog.clear()
    expires = int(url.split("expires=", 1)[1].split("&", 1)[0])
    assert verify_change_link(config, 3, expires, url.rsplit("sig=", 1)[1], now=NOW)
    assert "generated" not in caplog.text  # read, not generated again


def test_the_app_refuses_to_start_with_a_short_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from monitor.api.app import create_app

    monkeypatch.setenv("POLICY_MONITOR_LINK_SECRET", "too short")
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.store.db'}")
    try:
        with pytest.raises(ConfigError, match="shorter than 32 bytes"):
            create_app(store, parse_config({}))
    finally:
        store.close()
