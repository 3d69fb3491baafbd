"""Shared fixtures: databases (SQLite and PostgreSQL), the CMS fixture server, no internet;
the hypothesis profile every run uses; real documents parsed once per session."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings
from pg_support import POSTGRES_URL, postgres_available
from realdata_support import parse_real
from sqlite_support import migrated_sqlite

if TYPE_CHECKING:
    from monitor.store.core import Store

# A loaded 2-core CI machine misses hypothesis's 200 ms per-example deadline now and then, and
# a random seed makes a failure unrepeatable: property tests check logic, not speed, and the
# same examples every run. `HYPOTHESIS_PROFILE=dev` explores with fresh random examples.
settings.register_profile(
    "ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_LOOPBACK = {"127.0.0.1", "::1", "localhost", "::ffff:127.0.0.1"}
_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        if host not in _LOOPBACK:
            raise OSError(f"tests may not reach the network (tried {host!r})")
    return _real_connect(self, address)


# Change-page links need a secret of 32+ bytes; without the variable one would be generated into
# a file in the working directory. Tests of that path remove the variable themselves.
TEST_LINK_SECRET = "test-link-secret-0123456789abcdef0123456789"


@pytest.fixture(autouse=True, scope="session")
def _link_secret() -> Iterator[None]:
    # Session scope: set before any module- or session-scoped fixture builds an app.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLICY_MONITOR_LINK_SECRET", TEST_LINK_SECRET)
        yield


@pytest.fixture(autouse=True, scope="session")
def _terminal_width() -> Iterator[None]:
    """Tables are as wide as a run without a terminal makes them (`monitor.report`: 140
    columns), whatever the terminal the tests run in or the width pytest-xdist's workers set
    (COLUMNS=80): tests read whole table lines."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", "140")
        yield


@pytest.fixture(autouse=True, scope="session")
def _real_documents_parsed_once() -> Iterator[None]:
    """`payer_criteria` and `bench/real_pairs.py` (through `diffing.payer.parse_cached`, whose
    own cache keeps 64 documents) parse a real document of ../shared/realdata once per session,
    sharing the parse with the modules that call `realdata_support.parse_real` themselves.
    Other bytes are parsed as before (realdata_support.py)."""
    import diffing.payer

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(diffing.payer, "parse_document", parse_real)
        yield


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection off loopback fails at once instead of hanging."""
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections live in a fresh schema of database `test`, dropped afterwards."""
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
        ) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs on SQLite and on PostgreSQL (an empty database: nothing migrated)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitor.store.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A store on `database_url` (SQLite, then PostgreSQL), opened for the test and closed after
    it. A module that needs another store (migrated, on a given file) defines its own."""
    from monitor.store.core import Store

    opened = Store.open(database_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """A store on a SQLite file of the test's own, for tests only SQLite can run (a test on
    both backends takes `store`)."""
    from monitor.store.core import Store

    opened = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the head once per session (the migrations take about a second
    each time; tests/test_suite_fixtures.py checks a copy is the same database as a fresh one)."""
    from monitor.store.core import Store

    path = tmp_path_factory.mktemp("migrated-template") / "monitor.store.db"
    Store.open(f"sqlite:///{path}").close()
    leftovers = sorted(p.name for p in path.parent.iterdir() if p != path)
    assert leftovers == [], leftovers  # closed and checkpointed: the one file is the database
    return path


@pytest.fixture
def migrated_database_url(database_url: str, migrated_sqlite_template: Path) -> str:
    """`database_url` already at the schema head, for tests that open a store at once and are
    not about migrating: on SQLite a copy of the session's migrated file, on PostgreSQL the
    fresh schema migrated here (a schema cannot be copied)."""
    if database_url.startswith("sqlite:///"):
        return migrated_sqlite(migrated_sqlite_template, Path(database_url[len("sqlite:///") :]))
    from monitor.store.core import Store

    Store.open(database_url).close()
    return database_url
