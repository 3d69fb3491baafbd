"""What every router of the API shares: the store dependency, the path and query parameter
types, and the 404 answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status

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


def root_of(request: Request) -> str:
    """The path the API is mounted under ("" at the root), for links in answers."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} not found")
