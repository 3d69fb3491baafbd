"""Engines and schema: SQLite (WAL, foreign keys) or PostgreSQL, migrated by Alembic.

A SQLite file is created mode 0600 (it holds reviews and what signs links; SQLite gives its WAL
and shared-memory files the same mode). No error message shows a database URL's password.
SQLAlchemy loads when an engine is made: the plain read path (`monitor.store.plain_reads`) opens
a SQLite file and checks its schema with this module and the stdlib driver alone.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from monitor.errors import StoreError

if TYPE_CHECKING:
    import sqlite3

    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory
    from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"
# A new SQLite database's schema at the newest revision, as the migrations build it: what
# `sqlite3.Connection.iterdump` writes of a database just migrated (see `create_sqlite_schema`).
# Rewritten by `python -m monitor.store.snapshot` whenever a migration is added; a test holds it
# equal to what the migrations build, and a snapshot of another revision is never used.
SQLITE_SNAPSHOT = Path(__file__).parent / "schema_sqlite.json"


def safe_url(url: str) -> str:
    """`url` with its password as ***, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: show its scheme only
        return url.split(":", 1)[0] + ":…"


def scrub(text: str, url: str) -> str:
    """`text` (a driver's or SQLAlchemy's message) without the password of `url`, in the
    forms a message may quote it: as written, percent-decoded, and the whole URL."""
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
    except Exception:
        password = None
    text = text.replace(url, safe_url(url))
    if password:
        for form in {password, quote(password, safe="")}:
            text = text.replace(form, "***")
    return text


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.exc import SQLAlchemyError

    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            _prepare_sqlite_file(url)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        raise StoreError(
            f"cannot use database {safe_url(url)}: {scrub(f'{type(exc).__name__}: {exc}', url)}"
        ) from None  # the cause would print the URL again, password included
    return engine


def _prepare_sqlite_file(url: str) -> None:
    """The directory exists and the file is private: created 0600 before SQLite opens it
    (SQLite would create it 0644 under the usual umask), or tightened when it is older."""
    path = url.split(":///", 1)[-1].split("?", 1)[0]
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    database = Path(path)
    database.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(database, os.O_RDWR | os.O_CREAT, 0o600))
        if database.stat().st_mode & 0o077:
            database.chmod(0o600)
    except OSError:
        pass  # read-only or not ours: SQLite reports what matters when it opens the file


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Reads through a memory map instead of read() calls: a rule lookup touches ~50 rows on as
    # many pages, and this took a third off it (bench/api.py). Address space, not memory.
    cursor.execute("PRAGMA mmap_size=1073741824")
    # A 32 MiB page cache (SQLite's default is 2 MiB): a CMS baseline writes half a million
    # rule rows whose code index takes them in random order, and with the default cache its
    # pages spilled to the WAL in the middle of each batch's transaction to be read back and
    # written again: a full baseline made 1.73 million page writes and 340,000 reads, 0.92
    # million and 53,000 with this cache; 15.4-18.4 s instead of 17.6-22.1 s, and a peak RSS
    # of 191-199 MB instead of 264-269 MB (bench/cms_full_scale.py; the page counts from
    # strace -c). An upper bound, filled only as pages are used.
    cursor.execute("PRAGMA cache_size=-32768")
    cursor.close()


def _alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


_REVISION = re.compile(r"""^(down_)?revision\s*(?::[^=]*)?=\s*["']([^"']+)["']""", re.MULTILINE)


@functools.cache
def schema_head() -> str:
    """The newest migration's revision, read from the migration files themselves.

    Alembic (a fifth of a second to import) loads only when a database is not at this head:
    every command opens the database, and an up-to-date one is the common case. A history that
    is not one straight line is left to Alembic to judge."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for down, value in _REVISION.findall(path.read_text(encoding="utf-8")):
            (parents if down else revisions).add(value)
    heads = revisions - parents
    if len(heads) == 1:
        return heads.pop()
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_alembic_config()).get_current_head())


def current_revision(engine: Engine) -> str | None:
    """The schema revision stamped in the database (Alembic's `alembic_version` table)."""
    from sqlalchemy import inspect, text

    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:  # branches: let Alembic say what that means
        from alembic.runtime.migration import MigrationContext

        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    return str(rows[0]) if rows else None


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision this code knows; refuse a newer database."""
    try:
        current = current_revision(engine)
        if current is not None and current == schema_head():
            return
        if current is None and engine.dialect.name == "sqlite":
            if create_sqlite_schema(engine):
                return
            current = current_revision(engine)  # another connection may have made it meanwhile
            if current == schema_head():
                return
        from alembic import command
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(_alembic_config())
        if current is not None and not _known(script, current):
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
            url = engine.url.render_as_string(hide_password=False)
            raise StoreError(
                f"cannot migrate database {safe_url(url)}: {scrub(first_line(exc), url)}; "
                "'policy-monitor db check' says more"
            ) from None
        raise


@functools.cache
def sqlite_snapshot() -> tuple[str, tuple[str, ...]] | None:
    """(revision, statements) of `SQLITE_SNAPSHOT`; None when it is missing or unreadable."""
    import json

    try:
        body = json.loads(SQLITE_SNAPSHOT.read_text(encoding="utf-8"))
        return str(body["revision"]), tuple(str(s) for s in body["statements"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def create_sqlite_schema(engine: Engine) -> bool:
    """Build the newest schema in an empty SQLite database from `SQLITE_SNAPSHOT`: True when
    it did, False (nothing done) when the snapshot is not of the newest revision or the
    database is not empty, which Alembic then migrates as ever.

    The migrations build the same schema, but a new database then waited for Alembic to load
    and for every migration to run (0.2 s of a first run, on the path before anything is
    fetched; ~30 ms so). One transaction, begun IMMEDIATE: a second process creating the same
    file waits for it, then finds the schema made."""
    import sqlite3

    snapshot = sqlite_snapshot()
    if snapshot is None or snapshot[0] != schema_head():
        return False
    raw = engine.raw_connection()
    try:
        return _create_from(raw.driver_connection, snapshot[1])
    except sqlite3.Error as exc:
        url = engine.url.render_as_string(hide_password=False)
        raise StoreError(
            f"cannot create the schema of database {safe_url(url)}: {first_line(exc)}; "
            "'policy-monitor db check' says more"
        ) from None
    finally:
        raw.close()


def _create_from(database: Any, statements: tuple[str, ...]) -> bool:
    isolation = database.isolation_level
    database.isolation_level = None  # the transaction is begun and ended here
    try:
        database.execute("BEGIN IMMEDIATE")
        try:
            if database.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                database.execute("ROLLBACK")
                return False
            for statement in statements:
                database.execute(statement)
            database.execute("COMMIT")
        except BaseException:
            database.execute("ROLLBACK")
            raise
    finally:
        database.isolation_level = isolation
    return True


def snapshot_statements(database: sqlite3.Connection) -> list[str]:
    """What `SQLITE_SNAPSHOT` holds of a database just migrated: its dump, without the dump's
    own transaction."""
    return [s for s in database.iterdump() if s not in ("BEGIN TRANSACTION;", "COMMIT;")]


def _known(script: ScriptDirectory, revision: str) -> bool:
    """Whether this program's migrations include `revision` (Alembic raises for one it cannot
    find rather than answering None)."""
    from alembic.util import CommandError

    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


class DatabaseMissing(StoreError):
    """A read-only command found no database file where the config says it is."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory ones."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[-1].split("?", 1)[0]
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


def existing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, which a read-only command needs to exist (raises
    DatabaseMissing); None for other databases and in-memory ones."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise DatabaseMissing(
            f"no database at {path} (from [database] url {url!r}); run 'policy-monitor check' "
            f"to create it, or pass the --config that names the right one"
        )
    return path


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to the SQLite file `path` (which exists): nothing is created
    beside it, so a read-only directory works."""
    import sqlite3

    uri = path.resolve().as_uri()
    connection = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return connection
    except sqlite3.OperationalError as exc:
        connection.close()
        if "readonly" not in str(exc) and "unable to open" not in str(exc):
            raise
    # A WAL database in a directory we cannot write: SQLite cannot create the -shm file
    # beside it. No writer can be at work there either (it would have created it), so the
    # file is read as immutable.
    return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, timeout=30)


def make_read_only_engine(url: str) -> Engine:
    """An engine that never writes: a SQLite file opened read-only (it must exist; nothing is
    created beside it, so a read-only directory works), other databases as they are."""
    path = existing_sqlite_file(url)
    if path is None:
        return make_engine(url)
    from sqlalchemy import create_engine, event

    resolved = path.resolve()  # now: a later chdir does not move the database
    engine = create_engine("sqlite://", creator=lambda: connect_read_only(resolved))
    event.listen(engine, "connect", sqlite_read_pragmas)
    return engine


def sqlite_read_pragmas(dbapi_connection: Any, _record: object = None) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA mmap_size=1073741824")
    cursor.close()


def check_schema(engine: Engine, where: str) -> None:
    """Refuse a database whose schema is not this program's: missing, behind or newer."""
    from sqlalchemy.exc import SQLAlchemyError

    head = schema_head()
    try:
        current = current_revision(engine)
    except SQLAlchemyError as exc:
        raise StoreError(
            f"cannot read database {where}: {first_line(exc)}; 'policy-monitor db check' says more"
        ) from exc
    if current == head:
        return
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config())
    if current is None:
        raise StoreError(
            f"database {where} has no policy-monitor schema; run 'policy-monitor db upgrade' "
            f"(or 'policy-monitor check') first"
        )
    if not _known(script, current):
        raise StoreError(
            f"database schema revision {current!r} of {where} is newer than this program knows "
            f"(head {head!r}); upgrade policy-monitor"
        )
    raise StoreError(
        f"database {where} is at schema revision {current!r}, this program needs {head!r}; "
        f"run 'policy-monitor db upgrade' (read-only commands never migrate)"
    )


def first_line(exc: BaseException) -> str:
    """A database error in one line: the driver's message without the SQL and parameters."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return (text[0] if text else type(cause).__name__)[:300]
