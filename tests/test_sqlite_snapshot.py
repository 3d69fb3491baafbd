"""A new SQLite database gets its schema from `monitor/store/schema_sqlite.json`, which must be
the schema the migrations build (`python -m monitor.store.snapshot` rewrites it)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from monitor.errors import StoreError
from monitor.store import db
from monitor.store.core import Store
from monitor.store.snapshot import migrated_facts, schema_facts, snapshot_facts

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def migrated() -> dict[str, object]:
    return migrated_facts()


def _facts(path: Path) -> dict[str, object]:
    database = sqlite3.connect(path)
    try:
        return schema_facts(database)
    finally:
        database.close()


def test_the_snapshot_is_the_schema_the_migrations_build(migrated: dict[str, object]) -> None:
    snapshot = db.sqlite_snapshot()
    assert snapshot is not None, f"{db.SQLITE_SNAPSHOT} missing or unreadable"
    revision, statements = snapshot
    assert revision == db.schema_head(), "run: python -m monitor.store.snapshot"
    assert snapshot_facts(statements) == migrated, "run: python -m monitor.store.snapshot"


def test_the_facts_compared_tell_schemas_apart(migrated: dict[str, object]) -> None:
    """The comparison above can fail: a missing index, a column's type, a trigger's body."""
    snapshot = db.sqlite_snapshot()
    assert snapshot is not None
    statements = snapshot[1]
    index = next(s for s in statements if s.startswith("CREATE INDEX"))
    trigger = next(s for s in statements if s.startswith("CREATE TRIGGER"))
    retyped = [s.replace("sha256 VARCHAR(64)", "sha256 TEXT", 1) for s in statements]
    for changed in (
        [s for s in statements if s != index],
        [s for s in statements if s != trigger],
        [s.replace("RAISE(ABORT", "RAISE(FAIL") if s == trigger else s for s in statements],
        retyped,
    ):
        assert snapshot_facts(changed) != migrated


def test_a_new_database_is_made_from_the_snapshot_without_alembic(
    tmp_path: Path, migrated: dict[str, object]
) -> None:
    path = tmp_path / "new.db"
    code = (
        "import sys; from monitor.store.core import Store; "
        f"Store.open({f'sqlite:///{path}'!r}).close(); "
        "print('alembic' in sys.modules)"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert answer.stdout.strip() == "False"
    assert _facts(path) == migrated
    store = Store.open(f"sqlite:///{path}")  # and it is at the newest revision
    try:
        assert db.current_revision(store.engine) == db.schema_head()
    finally:
        store.close()


def test_a_snapshot_of_another_revision_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated: dict[str, object]
) -> None:
    snapshot = db.sqlite_snapshot()
    assert snapshot is not None
    monkeypatch.setattr(db, "sqlite_snapshot", lambda: ("0001", snapshot[1]))
    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        assert db.create_sqlite_schema(engine) is False
    finally:
        engine.dispose()
    assert _facts(tmp_path / "old.db") == snapshot_facts(())  # nothing made
    Store.open(f"sqlite:///{tmp_path / 'old.db'}").close()  # the migrations make it
    assert _facts(tmp_path / "old.db") == migrated


def test_a_database_that_is_not_empty_is_left_to_the_migrations(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE theirs (x INTEGER)")
    other.commit()
    other.close()
    engine = db.make_engine(f"sqlite:///{path}")
    try:
        assert db.create_sqlite_schema(engine) is False
    finally:
        engine.dispose()
    assert list(_facts(path)) == ["table theirs", *(k for k in _facts(path) if "pragma" in k)]


def test_a_failed_creation_leaves_the_database_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated: dict[str, object]
) -> None:
    snapshot = db.sqlite_snapshot()
    assert snapshot is not None
    broken = (*snapshot[1], "CREATE TABLE broken (")
    monkeypatch.setattr(db, "sqlite_snapshot", lambda: (snapshot[0], broken))
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(StoreError, match="cannot create the schema of database"):
        Store.open(url)
    assert _facts(tmp_path / "x.db") == snapshot_facts(())
    monkeypatch.undo()
    Store.open(url).close()
    assert _facts(tmp_path / "x.db") == migrated


def test_processes_opening_one_new_database_at_once_make_one_schema(
    tmp_path: Path, migrated: dict[str, object]
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            start.wait()
            Store.open(url).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert _facts(tmp_path / "shared.db") == migrated


def test_sqlite_connections_have_the_connection_pragmas(tmp_path: Path) -> None:
    """Every pooled connection gets them (they are per connection, not stored in the file)."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    try:
        with engine.connect() as first, engine.connect() as second:
            for connection in (first, second):
                read = connection.exec_driver_sql
                assert read("PRAGMA cache_size").scalar_one() == -32768
                assert read("PRAGMA foreign_keys").scalar_one() == 1
                assert read("PRAGMA synchronous").scalar_one() == 1  # NORMAL
                assert read("PRAGMA journal_mode").scalar_one() == "wal"
    finally:
        engine.dispose()
