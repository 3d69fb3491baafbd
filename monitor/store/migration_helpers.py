"""Shared pieces of the Alembic migrations: database-enforced immutability of published rows."""

from __future__ import annotations

from collections.abc import Iterable

from alembic import op


def create_immutability_triggers(tables: Iterable[str]) -> None:
    """Make the database itself refuse UPDATE and DELETE on `tables` (SQLite and PostgreSQL).

    PostgreSQL's ``refuse_mutation()`` function is created by revision 0001.
    """
    dialect = op.get_bind().dialect.name
    for table in tables:
        if dialect == "sqlite":
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} rows are immutable'); END"
                )
        elif dialect == "postgresql":
            op.execute(
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION refuse_mutation()"
            )


def drop_immutability_triggers(tables: Iterable[str]) -> None:
    dialect = op.get_bind().dialect.name
    for table in tables:
        if dialect == "sqlite":
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
        elif dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}")
