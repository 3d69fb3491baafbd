"""Database secrets (issue 16, finding 7): a SQLite file is created 0600, no error message or
`/healthz` answer shows a PostgreSQL password, and a driver that fails to load is reported
without the URL's password."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import httpx
import pytest

from monitor.api.app import create_app
from monitor.api.server import ApiServer
from monitor.config import parse_config
from monitor.errors import StoreError
from monitor.store.core import Store
from monitor.store.db import make_engine

PASSWORD = "Sup3r-S3cret-pg-pw"


def test_a_new_sqlite_database_and_its_wal_are_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "monitor.store.db"
    store = Store.open(f"sqlite:///{path}")
    try:
        store.changes()
        for file in path.parent.iterdir():
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
    finally:
        store.close()


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    Store.open(f"sqlite:///{path}").close()
    path.chmod(0o644)
    Store.open(f"sqlite:///{path}").close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_driver_that_fails_to_load_does_not_print_the_password() -> None:
    url = f"postgresql+nosuchdriver://monitor:{PASSWORD}@db.internal:5432/policies"
    with pytest.raises(StoreError) as failed:
        make_engine(url)
    assert PASSWORD not in str(failed.value)
    assert failed.value.__cause__ is None and failed.value.__suppress_context__ is not False
    assert "***" in str(failed.value)


def test_an_unreachable_postgres_shows_no_password_in_errors_or_healthz(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"postgresql+psycopg://monitor:{PASSWORD}@127.0.0.1:1/test"
    with pytest.raises(StoreError) as failed:
        Store.open(url)
    assert PASSWORD not in str(failed.value)
    gone = Store.open(url, migrate=False)
    try:
        app = create_app(gone, parse_config({}))
        with ApiServer(app) as server, httpx.Client(base_url=server.url) as client:
            answer = client.get("/healthz")
        assert answer.status_code == 503
        assert answer.json()["reason"] == "database unavailable"
        assert "127.0.0.1" not in answer.text and "monitor" not in answer.text
    finally:
        gone.close()
    assert PASSWORD not in caplog.text
