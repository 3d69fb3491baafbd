"""The suite's shared fixtures give the same thing as the slow way they replace: a copy of the
session's migrated SQLite file is the database a fresh migration makes.

Two fresh migrations already differ in the order of a table's foreign-key clauses and of index
creation (Alembic's batch mode iterates sets), so databases are compared as described by SQLite:
columns in order, foreign keys, indexes, triggers and views, every row, and the pragmas."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_support import migrated_sqlite

from monitor.store.core import Store
from monitor.store.db import current_revision, make_engine, schema_head

_PRAGMAS = (
    "user_version",
    "application_id",
    "journal_mode",
    "page_size",
    "auto_vacuum",
    "encoding",
)


def _foreign_keys(conn: sqlite3.Connection, table: str) -> list[list[tuple[object, ...]]]:
    """A table's foreign keys without their ids (which number them in clause order)."""
    keys: dict[int, list[tuple[object, ...]]] = {}
    for key_id, *rest in conn.execute(f'PRAGMA foreign_key_list("{table}")').fetchall():
        keys.setdefault(key_id, []).append(tuple(rest))
    return sorted(sorted(columns) for columns in keys.values())


def _database(path: Path) -> dict[str, object]:
    """Everything SQLite says about the database, independent of clause and creation order."""
    conn = sqlite3.connect(path)
    try:
        described: dict[str, object] = {
            name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in _PRAGMAS
        }
        objects = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        described["objects"] = [(kind, name, table) for kind, name, table, _ in objects]
        described["triggers and views"] = [
            sql for kind, _, _, sql in objects if kind in ("trigger", "view")
        ]
        for kind, name, _, _ in objects:
            if kind != "table":
                continue
            indexes = conn.execute(f'PRAGMA index_list("{name}")').fetchall()
            described[name] = {
                "columns": conn.execute(f'PRAGMA table_xinfo("{name}")').fetchall(),
                "foreign keys": _foreign_keys(conn, name),
                "indexes": sorted(
                    (index[1:], conn.execute(f'PRAGMA index_xinfo("{index[1]}")').fetchall())
                    for index in indexes
                ),
                "rows": sorted(map(repr, conn.execute(f'SELECT * FROM "{name}"').fetchall())),
            }
        return described
    finally:
        conn.close()


def test_a_copied_migrated_sqlite_file_is_a_freshly_migrated_database(
    tmp_path: Path, migrated_sqlite_template: Path
) -> None:
    fresh = tmp_path / "fresh.db"
    Store.open(f"sqlite:///{fresh}").close()
    url = migrated_sqlite(migrated_sqlite_template, tmp_path / "copied.db")
    copied = tmp_path / "copied.db"
    assert copied.read_bytes() == migrated_sqlite_template.read_bytes()
    assert _database(copied) == _database(fresh)
    described = _database(copied)
    assert described["journal_mode"] == "wal"
    assert described["alembic_version"]["rows"] == [repr((schema_head(),))]  # type: ignore[index]
    assert ("table", "document_versions", "document_versions") in described["objects"]  # type: ignore[operator]
    engine = make_engine(url)
    try:
        assert current_revision(engine) == schema_head()
    finally:
        engine.dispose()


def test_the_migrated_database_url_is_at_the_head(migrated_database_url: str) -> None:
    engine = make_engine(migrated_database_url)
    try:
        assert current_revision(engine) == schema_head()
    finally:
        engine.dispose()
