"""Engines and schema: SQLite (WAL, foreign keys) or PostgreSQL, migrated by Alembic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import StoreError

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout."""
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            _ensure_sqlite_directory(url)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        raise StoreError(f"cannot use database {url!r}: {exc}") from exc
    return engine


def _ensure_sqlite_directory(url: str) -> None:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:" and not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Reads through a memory map instead of read() calls: a rule lookup touches ~50 rows on as
    # many pages, and this took a third off it (bench/api.py). Address space, not memory.
    cursor.execute("PRAGMA mmap_size=1073741824")
    cursor.close()


def _alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision this code knows; refuse a newer database."""
    script = ScriptDirectory.from_config(_alembic_config())
    try:
        current = current_revision(engine)
        if current is not None and script.get_revision(current) is None:
            raise StoreError(
                f"database schema revision {current!r} is newer than this program knows "
                f"(head {script.get_current_head()!r}); upgrade policy-monitor"
            )
        if current == script.get_current_head():
            return
        config = _alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except StoreError:
        raise
    except Exception as exc:  # alembic raises its own and SQLAlchemy's errors
        if type(exc).__module__.startswith(("alembic", "sqlalchemy")):
            raise StoreError(f"cannot migrate database {engine.url!r}: {exc}") from exc
        raise
