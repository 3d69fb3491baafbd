"""HTTP routes for operators: ``/healthz`` (no key) and ``/metrics`` (Prometheus). Included
by `monitor.api.app`."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitor.api.auth import ReadAccess
from monitor.api.deps import HealthCheck, StoreDep
from monitor.api.schemas import KEY_ERRORS, HealthOut
from monitor.store.reads import database_answers

log = logging.getLogger("policy_monitor.api")
router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "Database or scheduler down"}},
)
def healthz(request: Request, store: StoreDep) -> JSONResponse:
    """Healthy when the database answers and (under `run`) the scheduler is alive. No key."""
    health: HealthCheck | None = request.app.state.health
    # No key is needed here, so the answer names what is down, never a library's message (a
    # driver's shows hosts and user names). The detail goes to the log.
    reason = None
    detail = database_answers(store)
    if detail is not None:
        reason = "database unavailable"
    elif health is not None:
        try:
            alive, why = health()  # the daemon's own words ("scheduler thread is not running")
        except Exception as exc:  # a broken probe is an unhealthy service, not a 500
            alive, why, detail = False, "health check failed", f"{type(exc).__name__}: {exc}"
        if not alive:
            reason = why or "unhealthy"
    if reason is not None:
        log.warning("health check: %s (%s)", reason, detail)
    body = HealthOut(status="ok" if reason is None else "unavailable", reason=reason)
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=200 if reason is None else 503,
        headers={"Cache-Control": "no-store"},
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **KEY_ERRORS},
)
def metrics(request: Request, _key: ReadAccess) -> Response:
    """Prometheus text format, read from the database at scrape time. Scope `read`: the
    figures are counts only, and a scraper should hold the least powerful key."""
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
