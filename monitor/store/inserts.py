"""INSERT … ON CONFLICT for both backends: the one place that knows SQLite's and PostgreSQL's
spellings of "insert unless it exists" and "insert or update"."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from monitor.errors import StoreError
from monitor.store.types import Transaction


def insert_ignoring_duplicates(
    txn: Transaction,
    model: type,
    rows: Sequence[Mapping[str, object]],
    *,
    keys: Sequence[str] | None = None,
    update: Sequence[str] = (),
) -> int:
    """INSERT `rows` (all with the same columns); a row that conflicts with a stored one on
    `keys` (on any unique constraint when None) is skipped, or, with `update`, overwrites the
    stored row's `update` columns. Returns how many rows were written."""
    if not rows:
        return 0
    shape = (
        txn.get_bind().dialect.name,
        model,
        tuple(rows[0]),
        tuple(keys) if keys is not None else None,
        tuple(update),
    )
    # One row (a published version's payload): the statement as cacheable text; several: the
    # construct, whose executemany SQLAlchemy batches into multi-row INSERT … RETURNING.
    statement = _one_row_statement(*shape) if len(rows) == 1 else _statement(*shape)
    # RETURNING counts what was written: rowcount is -1 for this statement on psycopg.
    # On the session's connection: a statement on a Table is not the ORM's, and the session's
    # execute only added its own per-call cost (it does not autoflush a Core statement either).
    return len(txn.connection().execute(statement, list(rows)).all())


@functools.lru_cache(maxsize=64)
def _statement(
    dialect: str,
    model: type,
    columns: tuple[str, ...],
    keys: tuple[str, ...] | None,
    update: tuple[str, ...],
) -> Any:
    """Built once per shape, values bound at execution: SQLAlchemy does not cache the
    compiled form of an ON CONFLICT insert built with literal values, and compiling it twice
    per published version was a tenth of a full CMS baseline (bench/cms_full_scale.py)."""
    insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
    table = model.__table__  # type: ignore[attr-defined]
    statement = insert_(table).values({name: bindparam(name) for name in columns})
    if update:
        assert keys is not None, "an upsert names the columns it conflicts on"
        statement = statement.on_conflict_do_update(
            index_elements=list(keys), set_={name: statement.excluded[name] for name in update}
        )
    else:
        statement = statement.on_conflict_do_nothing(
            index_elements=list(keys) if keys is not None else None
        )
    return statement.returning(*table.primary_key.columns)


@functools.lru_cache(maxsize=64)
def _one_row_statement(
    dialect: str,
    model: type,
    columns: tuple[str, ...],
    keys: tuple[str, ...] | None,
    update: tuple[str, ...],
) -> Any:
    """`_statement` compiled once to text with typed parameters. SQLAlchemy 2.0 gives an ON
    CONFLICT insert no cache key, so it compiled `_statement` again on every execution (a
    twentieth of a CMS baseline's GIL time, one payload per published version); a `text()`
    is cached, and its parameters keep the columns' types (their bind processing)."""
    table = model.__table__  # type: ignore[attr-defined]
    named = (postgresql.dialect if dialect == "postgresql" else sqlite.dialect)(paramstyle="named")
    sql = str(_statement(dialect, model, columns, keys, update).compile(dialect=named))
    return text(sql).bindparams(*(bindparam(name, type_=table.c[name].type) for name in columns))


def insert_ids_in_order(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, object]]
) -> list[int]:
    """INSERT `rows` into `table` (its key an integer `id`) and return their ids in the order
    of the rows."""
    ids = _sqlite_ids_in_order(connection, table, rows)
    if ids is None:
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        ids = list(connection.execute(statement, list(rows)).scalars())
    return ids


_LARGEST_ROWID = 2**63 - 1


def _sqlite_ids_in_order(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, object]]
) -> list[int] | None:
    """Insert `rows` into `table` (SQLite, several rows) and return their ids in the order
    given; None (nothing inserted) elsewhere.

    SQLite may return RETURNING rows in any order, so SQLAlchemy keeps the order by inserting
    one row per statement (a first fetch of 1,000 payer pages: 2,000 statements for its
    changes and checklists). SQLite gives a new row of a table whose integer key is its rowid
    the largest rowid plus one, until the largest possible is taken (then a random free one).
    No other connection writes between the largest id read here and the insert: SQLite has
    one writer, and a transaction whose snapshot another writer has moved past is refused the
    write (SQLITE_BUSY_SNAPSHOT in WAL mode) rather than let write on a stale read. So the
    rows get the ids that follow the largest, in order, and are the only rows above it."""
    if len(rows) < 2 or connection.dialect.name != "sqlite":
        return None
    before = connection.execute(select(func.max(table.c.id))).scalar_one() or 0
    if before > _LARGEST_ROWID - len(rows):
        return None  # near the end of the rowids: let SQLAlchemy keep the order its way
    connection.execute(insert(table), list(rows))
    ids = list(
        connection.execute(
            select(table.c.id).where(table.c.id > before).order_by(table.c.id)
        ).scalars()
    )
    if ids != list(range(before + 1, before + 1 + len(rows))):
        raise StoreError(f"new {table.name} rows did not get the ids that follow {before}")
    return ids
