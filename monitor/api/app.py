"""The HTTP API (FastAPI): `create_app` composes one router per area — rule tables and PA
checklists (`rules`), quarantine, operations (health, metrics), documents, changes.

Every endpoint but ``/healthz`` needs an API key (`monitor.api.auth`: scopes read < review <
admin; `keys` is the admin area). Reads answer with an ETag and honour ``If-None-Match``;
every list pages with ``limit`` (at most 500, 1000 for rules) and a cursor. The OpenAPI
document is at ``/openapi.json``.
"""

from __future__ import annotations

import datetime as dt
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from monitor.api import (
    changes,
    compare,
    coverage,
    documents,
    feeds,
    keys,
    operations,
    quarantine,
    rules,
    sources,
)
from monitor.api.deps import HealthCheck, Today
from monitor.api.metrics import metrics_registry
from monitor.api.server import BodyLimitMiddleware, ETagMiddleware
from monitor.config import Config
from monitor.errors import StoreError
from monitor.links import link_secret
from monitor.store.core import Store

log = logging.getLogger("policy_monitor.api")


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def create_app(
    store: Store,
    config: Config,
    *,
    health: HealthCheck | None = None,
    today: Today = _utc_today,
) -> FastAPI:
    """The API over `store`. `health` reports whether the caller's machinery (the daemon's
    scheduler) lives, as (ok, reason); `today` is injected so tests fix "effective in N days"."""
    app = FastAPI(
        title="Payer Policy Monitor API",
        version="1",
        description=(
            "Documents, their versions and criteria, the change feed, reviews and the change "
            "page; rule tables and PA checklists. Every endpoint but `/healthz` needs an API "
            "key (`policy-monitor apikey create`), sent as `Authorization: Bearer KEY` or "
            "`X-API-Key: KEY`. Scopes: `read` < `review` < `admin`; a key holds its scope and "
            "every lower one. GET answers carry an ETag; send `If-None-Match` to get 304."
        ),
    )
    # Fail at start, not at the first signed link: no secret, or one under 32 bytes, is a
    # configuration error (a generated one is created now, and the log says where).
    link_secret(config.api)
    app.state.store = store
    app.state.config = config
    app.state.health = health
    app.state.today = today
    app.state.metrics = metrics_registry(store)
    app.add_middleware(ETagMiddleware)
    # Added last, so outermost: a body over the limit is refused before routing and keys.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=config.api.max_body_bytes)

    @app.exception_handler(StoreError)
    def database_error(_request: Request, exc: StoreError) -> JSONResponse:
        log.error("database error in the API: %s", exc)
        return JSONResponse(
            {"detail": "the database is unavailable; try again later"}, status_code=503
        )

    # The rule routes before the documents': /documents/{source}/{key:path} takes any path
    # below it, and would shadow a more specific rule route added there later.
    for area in (rules, coverage, quarantine, operations, documents, changes, keys):
        app.include_router(area.router)
    app.include_router(sources.router)  # GET /sources: last runs and what failed
    app.include_router(compare.router)  # GET /compare: one drug across payers
    app.include_router(feeds.router)  # GET /feeds/{profile}.atom: a profile's changes as Atom
    return app
