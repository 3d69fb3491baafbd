"""Signed change-page links: valid, expired, forged, and garbage that must not crash."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest

from monitor.config import ApiConfig
from monitor.links import change_page_url, verify_change_link

API = ApiConfig(public_url="https://monitor.example.org/")
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def _parts(url: str) -> tuple[int, str]:
    query = parse_qs(urlsplit(url).query)
    return int(query["expires"][0]), query["sig"][0]


def test_a_link_verifies_for_its_change_only_and_until_it_expires() -> None:
    url = change_page_url(API, 42, now=NOW)
    assert url.startswith("https://monitor.example.org/changes/42/page?")
    expires, sig = _parts(url)
    assert verify_change_link(API, 42, expires, sig, now=NOW)
    assert not verify_change_link(API, 43, expires, sig, now=NOW)
    assert not verify_change_link(API, 42, expires + 1, sig, now=NOW)
    later = dt.datetime.fromtimestamp(expires + 1, tz=dt.UTC)
    assert not verify_change_link(API, 42, expires, sig, now=later)


def test_forged_signatures_are_refused_not_crashed_on() -> None:
    expires, _ = _parts(change_page_url(API, 7, now=NOW))
    for sig in ("", "00", "é" * 64, "\udcff" * 3, "x" * 10_000):
        assert not verify_change_link(API, 7, expires, sig, now=NOW)


def test_the_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API.link_secret_env, "first secret, at least thirty-two bytes")
    url = change_page_url(API, 5, now=NOW)
    expires, sig = _parts(url)
    assert verify_change_link(API, 5, expires, sig, now=NOW)
    monkeypatch.setenv(API.link_secret_env, "rotated secret, at least thirty-two bytes")
    assert not verify_change_link(API, 5, expires, sig, now=NOW)
