"""The digest of the real pipeline's week-2 changes (fixture CMS API and payer site), sent
through aiosmtpd; its HTML rendered by headless Chromium in a test of its own, skipped (before
any work) when Chromium is not installed."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from notify_support import Inbox, body_html, body_text, run_fixture_weeks, smtp_server

from monitor.config import EmailConfig, parse_config
from monitor.store.core import Store
from notifications.demo import send_digest, show_digest

pytestmark = pytest.mark.slow

NOW = dt.datetime(2026, 11, 12, 7, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def week2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pipeline")
    run_fixture_weeks(f"sqlite:///{directory / 'monitor.store.db'}")
    return directory / "monitor.store.db"


def test_the_week2_digest_lists_the_scenario_grouped_by_contractor_and_payer(
    week2: Path, tmp_path: Path
) -> None:
    database = tmp_path / "monitor.store.db"
    shutil.copy(week2, database)
    url = f"sqlite:///{database}"
    store = Store.open(url)
    try:
        config = parse_config(
            {
                "database": {"url": url},
                "api": {"public_url": "https://monitor.example.org"},
                "recipients": [{"name": "billing", "addresses": ["billing@example.org"]}],
            }
        )
        text = show_digest(store, config, now=NOW)
        # The changes of the week-2 scenario, under their issuers; no baseline, no noise.
        for expected in ("A57520", "L82.0", "L34009", "NCD 270.1", "== Acme Health",
                         "Dupixent", "8 weeks -> 12 weeks", "BSA"):  # fmt: skip
            assert expected in text, expected
        assert "L34938" not in text and "skyrizi" not in text.lower()  # noise-only versions
        inbox = Inbox()
        with smtp_server(inbox) as server:
            smtp = EmailConfig(host="127.0.0.1", port=server.port)
            report = send_digest(store, replace(config, email=smtp), now=NOW)
        assert report.sent == 1
        [message] = inbox.messages()
        # The same digest as shown, but for the date line (show_digest's clock is NOW too).
        assert body_text(message).replace("\r\n", "\n") == text
        assert "high" in str(message["Subject"]) and "Acme Health" in str(message["Subject"])
        assert "A57520" in body_html(message) and "Acme Health" in body_html(message)
    finally:
        store.close()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed: nothing to render with")
def test_the_week2_digest_html_renders_in_headless_chromium(week2: Path, tmp_path: Path) -> None:
    database = tmp_path / "monitor.store.db"
    shutil.copy(week2, database)
    url = f"sqlite:///{database}"
    store = Store.open(url)
    try:
        config = parse_config(
            {
                "database": {"url": url},
                "api": {"public_url": "https://monitor.example.org"},
                "recipients": [{"name": "billing", "addresses": ["billing@example.org"]}],
            }
        )
        inbox = Inbox()
        with smtp_server(inbox) as server:
            smtp = EmailConfig(host="127.0.0.1", port=server.port)
            assert send_digest(store, replace(config, email=smtp), now=NOW).sent == 1
        [message] = inbox.messages()
    finally:
        store.close()
    html = tmp_path / "digest.html"
    html.write_text(body_html(message), encoding="utf-8")
    chromium = _chromium()
    assert chromium is not None
    png = tmp_path / "digest.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={png}",
         "--window-size=900,1400", html.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(data[16:20], "big") == 900  # width from the IHDR chunk
