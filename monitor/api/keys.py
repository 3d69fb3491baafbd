"""HTTP routes for API keys (scope ``admin``, the only routes that need it): list the keys and
revoke one. Keys are still created with `policy-monitor apikey create`, on the host: a key is
shown once, and an HTTP answer passes through proxies and their logs. Included by
`monitor.api.app`."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict

from monitor.api.auth import AdminAccess, ApiKeyError, revoke_api_key
from monitor.api.deps import After, PageLimit, StoreDep
from monitor.store.api_keys import ApiKeyInfo, list_api_keys

log = logging.getLogger("policy_monitor.api")
router = APIRouter(tags=["keys"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or an unknown or revoked one"},
    403: {"description": "The key's scope does not allow this (needs admin)"},
}
KeyRef = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")]


class ApiKeyOut(BaseModel):
    """A key as the store knows it: never the key, nor its hash."""

    model_config = ConfigDict(from_attributes=True, extra="forbid")

    id: int
    name: str
    prefix: str
    scope: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


def _out(info: ApiKeyInfo) -> ApiKeyOut:
    return ApiKeyOut(
        id=info.id,
        name=info.name,
        prefix=info.prefix,
        scope=info.scope.value,
        created_at=info.created_at,
        revoked_at=info.revoked_at,
    )


@router.get("/keys", response_model=list[ApiKeyOut], responses=_ERRORS)
def keys(
    store: StoreDep, _admin: AdminAccess, after: After = 0, limit: PageLimit = 100
) -> list[ApiKeyOut]:
    """API keys, live and revoked (scope `admin`): at most `limit`, ordered by id; the next
    page is `after` = the last id of this one."""
    return [_out(info) for info in list_api_keys(store, after=after, limit=limit)]


@router.post(
    "/keys/{name_or_id}/revoke",
    response_model=ApiKeyOut,
    responses={**_ERRORS, 404: {"description": "No live key with that name or id"}},
)
def revoke(store: StoreDep, name_or_id: KeyRef, admin: AdminAccess) -> ApiKeyOut:
    """Revoke a live key (scope `admin`): its requests fail with 401 from now on here, and
    within seconds in servers running elsewhere."""
    try:
        info = revoke_api_key(store, name_or_id)
    except ApiKeyError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    log.info("API key %s (#%d) revoked by key %s", info.name, info.id, admin.name)
    return _out(info)
