"""INSERT … ON CONFLICT for both backends: the one place that knows SQLite's and PostgreSQL's
spellings of "insert unless it exists" and "insert or update"."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Executable, Table, bindparam, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

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
    # RETURNING counts what was written: rowcount is -1 for this statement on psycopg.
    # On the session's connection: a statement on a Table is not the ORM's, and the session's
    # execute only added its own per-call cost (it does not autoflush a Core statement either).
    connection = txn.connection()
    if len(rows) == 1:  # a published version's payload: straight to the driver
        return len(execute_on_driver(connection, _one_row_statement(*shape), rows[0]))
    # Several: the construct, whose executemany SQLAlchemy batches into multi-row INSERT …
    # RETURNING.
    return len(connection.execute(_statement(*shape), list(rows)).all())


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
    compiles once (`driver_statement`), and its parameters keep the columns' types (their
    bind processing)."""
    table = model.__table__  # type: ignore[attr-defined]
    named = (postgresql.dialect if dialect == "postgresql" else sqlite.dialect)(paramstyle="named")
    sql = str(_statement(dialect, model, columns, keys, update).compile(dialect=named))
    return text(sql).bindparams(*(bindparam(name, type_=table.c[name].type) for name in columns))


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A statement compiled for one dialect, as its driver takes it: the SQL, and for each
    parameter (in the order a positional driver binds them) its name and the bind processing
    of its type, as SQLAlchemy would have applied it."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    positional: bool

    def parameters(self, row: Mapping[str, object]) -> tuple[object, ...] | dict[str, object]:
        values = [
            row[name] if process is None else process(row[name])
            for name, process in zip(self.names, self.processors, strict=True)
        ]
        return tuple(values) if self.positional else dict(zip(self.names, values, strict=True))


@functools.lru_cache(maxsize=64)
def driver_statement(statement: Executable, dialect: Dialect) -> DriverStatement:
    """`statement` (its values all bound parameters) compiled once for `dialect`. A statement
    with a column default SQLAlchemy would fill in is refused: the driver would not fill it."""
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    if compiled.insert_prefetch or compiled.update_prefetch:
        defaulted = [c.name for c in (*compiled.insert_prefetch, *compiled.update_prefetch)]
        raise ValueError(f"give the defaulted columns {defaulted} their values")
    names: tuple[str, ...] = tuple(compiled.positiontup or compiled.bind_names.values())
    types = {compiled.bind_names[bind]: bind.type for bind in compiled.binds.values()}
    return DriverStatement(
        sql=str(compiled),
        names=names,
        processors=tuple(
            types[name].dialect_impl(dialect).bind_processor(dialect) for name in names
        ),
        positional=bool(compiled.positional),
    )


def execute_on_driver(
    connection: Connection, statement: Executable, row: Mapping[str, object]
) -> list[tuple[Any, ...]]:
    """Run `statement` with the values `row` on the driver's own cursor, in the connection's
    transaction, and return the rows it returns. What SQLAlchemy's execute of a compiled
    statement does per call (execution context, parameter dictionaries, result set-up) was
    a tenth of a full CMS baseline's publishing GIL time, for the three one-row inserts of each
    published version (bench/cms_full_scale.py). A driver error is raised as SQLAlchemy would
    have raised it (`DBAPIError.instance`)."""
    compiled = driver_statement(statement, connection.dialect)
    dbapi = connection.dialect.dbapi
    assert dbapi is not None
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(compiled.sql, compiled.parameters(row))
        return list(cursor.fetchall()) if cursor.description is not None else []
    except dbapi.Error as exc:
        raise DBAPIError.instance(compiled.sql, None, exc, dbapi.Error) from exc
    finally:
        cursor.close()


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
