"""Column types and handles of the store: UTC datetimes that come back aware on every backend,
and the transaction handle the pipeline passes back into the store's functions."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeAlias

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

# An open transaction of the store (`Store.session()`), for the functions of `monitor.store`
# that must run inside the caller's transaction. Callers outside the store only pass it on.
Transaction: TypeAlias = Session


def as_utc(moment: dt.datetime) -> dt.datetime:
    """`moment` as an aware UTC datetime; a naive one is UTC already (SQLite stores them so)."""
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """``DateTime(timezone=True)`` that stores UTC and always hands back aware UTC datetimes.

    SQLite has no time zones: SQLAlchemy writes the wall-clock digits and reads them back
    naive. Writing every value in UTC and reading it back as UTC makes both backends agree.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return as_utc(value) if isinstance(value, dt.datetime) else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        return as_utc(value) if isinstance(value, dt.datetime) else value
