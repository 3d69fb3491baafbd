"""What every router of the API shares: the store dependency, the path and query parameter
types, and the 404 answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status
from pydantic import AfterValidator

from monitor.store.core import Store

MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL; larger ones cannot exist
HealthCheck = Callable[[], tuple[bool, str]]
Today = Callable[[], dt.date]


# async: FastAPI hands a plain `def` dependency to its thread pool, which costs more than the
# indexed lookups of the hottest routes (they run on the event loop for that reason).
async def get_store(request: Request) -> Store:
    """The store of the app serving the request (`create_app` puts it in ``app.state``)."""
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Text = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]
OptionalText = Annotated[str | None, Query(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]


# Dates the API accepts: a wide margin round any real policy, and far enough from datetime's
# own limits (years 1 and 9999) that no offset, timezone or day added overflows (a 500 before).
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 12, 31, tzinfo=dt.UTC)
MAX_PAGE = 500  # most items one list answer holds; larger `limit`s are 422


def _moment_in_range(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None:
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        if not EARLIEST <= aware <= LATEST:
            raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}")
    return value


def _date_in_range(value: dt.date | None) -> dt.date | None:
    if value is not None and not EARLIEST.date() <= value <= LATEST.date():
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}")
    return value


AsOf = Annotated[
    dt.date | None,
    Query(description="Date of service: only what applies then"),
    AfterValidator(_date_in_range),
]
KnownAt = Annotated[
    dt.datetime | None,
    Query(description="Only versions published by this moment count (UTC without an offset)"),
    AfterValidator(_moment_in_range),
]
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"At most {MAX_PAGE}")]
After = Annotated[int, Query(ge=0, le=MAX_ID, description="Cursor: `next` of the last page")]


def root_of(request: Request) -> str:
    """The path the API is mounted under ("" at the root), for links in answers."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} not found")
