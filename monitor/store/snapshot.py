"""Rewrite `monitor/store/schema_sqlite.json`: the schema the migrations build in a new SQLite
database, which `monitor.store.db.create_sqlite_schema` then builds without them.

    python -m monitor.store.snapshot [--check]

Run it after adding a migration (tests/test_sqlite_snapshot.py fails until it is run). With
``--check`` it only says whether the file is current (exit status 1 when it is not).

Two runs of the migrations do not write the same text: Alembic's batch mode, which rebuilds a
SQLite table to alter it, writes the table's foreign keys in an order that changes from one
process to the next. So "current" means the same schema (`schema_facts`), not the same bytes.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
from pathlib import Path

from monitor.store.db import (
    SQLITE_SNAPSHOT,
    make_engine,
    schema_head,
    snapshot_statements,
    sqlite_snapshot,
)


def migrate(path: Path) -> None:
    """Build the newest schema in a new SQLite file `path` with the migrations (Alembic)."""
    from alembic import command

    from monitor.store.db import _alembic_config

    engine = make_engine(f"sqlite:///{path}")
    try:
        config = _alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def migrated_snapshot() -> str:
    """The snapshot file's text for a database the migrations just built."""
    with tempfile.TemporaryDirectory(prefix="policy-monitor-snapshot-") as scratch:
        path = Path(scratch) / "schema.db"
        migrate(path)
        database = sqlite3.connect(path)
        try:
            statements = snapshot_statements(database)
        finally:
            database.close()
    body = {"revision": schema_head(), "statements": statements}
    return json.dumps(body, indent=1, ensure_ascii=False) + "\n"


def schema_facts(database: sqlite3.Connection) -> dict[str, object]:
    """What a SQLite database's schema is, in a form two equal schemas share: each table's
    columns in order (name, type, not null, default, key), its foreign keys, indexes,
    triggers and views, every row of every table, and each statement's text with its lines
    in sorted order (Alembic writes a rebuilt table's clauses in varying order, one a line;
    the rest of what the text says, a CHECK or a COLLATE, is still compared)."""
    facts: dict[str, object] = {}
    rows = database.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
    ).fetchall()
    for kind, name, table, sql in rows:
        key = f"{kind} {name}"
        facts[key] = {"table": table, "sql": _clauses(sql)}
        if kind != "table":
            continue
        quoted = '"' + name.replace('"', '""') + '"'
        facts[key] = {
            "table": table,
            "sql": _clauses(sql),
            "columns": database.execute(f"PRAGMA table_xinfo({quoted})").fetchall(),
            "foreign_keys": sorted(
                row[2:] for row in database.execute(f"PRAGMA foreign_key_list({quoted})")
            ),
            "indexes": sorted(
                (row[1:], database.execute(f'PRAGMA index_xinfo("{row[1]}")').fetchall())
                for row in database.execute(f"PRAGMA index_list({quoted})")
            ),
            "rows": sorted(map(repr, database.execute(f"SELECT * FROM {quoted}"))),  # noqa: S608
        }
    for pragma in ("user_version", "application_id", "auto_vacuum"):
        facts[f"pragma {pragma}"] = database.execute(f"PRAGMA {pragma}").fetchone()
    return facts


def _clauses(sql: str | None) -> list[str]:
    """A statement's lines, sorted, each without its spacing and trailing comma."""
    return sorted(line.strip().rstrip(",").rstrip() for line in (sql or "").splitlines())


def snapshot_facts(statements: list[str] | tuple[str, ...]) -> dict[str, object]:
    """`schema_facts` of a database built from snapshot statements."""
    database = sqlite3.connect(":memory:")
    try:
        for statement in statements:
            database.execute(statement)
        return schema_facts(database)
    finally:
        database.close()


def migrated_facts() -> dict[str, object]:
    """`schema_facts` of a database the migrations just built."""
    with tempfile.TemporaryDirectory(prefix="policy-monitor-snapshot-") as scratch:
        path = Path(scratch) / "schema.db"
        migrate(path)
        database = sqlite3.connect(path)
        try:
            return schema_facts(database)
        finally:
            database.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the file is current")
    args = parser.parse_args(argv)
    if args.check:
        snapshot = sqlite_snapshot()
        current = (
            snapshot is not None
            and snapshot[0] == schema_head()
            and snapshot_facts(snapshot[1]) == migrated_facts()
        )
        print(f"{SQLITE_SNAPSHOT}: {'current' if current else 'OUT OF DATE'}")
        return 0 if current else 1
    SQLITE_SNAPSHOT.write_text(migrated_snapshot(), encoding="utf-8")
    print(f"wrote {SQLITE_SNAPSHOT} (revision {schema_head()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
