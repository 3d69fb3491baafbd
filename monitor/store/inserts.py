"""INSERT … ON CONFLICT for both backends: the one place that knows SQLite's and PostgreSQL's
spellings of "insert unless it exists" and "insert or update"."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

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
