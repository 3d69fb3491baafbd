"""API keys and scopes: create, revoke and list keys; check them on every request.

Scopes are ordered ``read`` < ``review`` < ``admin``; a key holds its scope and every lower
one (a ``review`` key can read, an ``admin`` key can do everything). A key is presented as
``Authorization: Bearer KEY`` or ``X-API-Key: KEY``. No key, an unknown key or a revoked key is
401 (with ``WWW-Authenticate``); a valid key without the scope an endpoint needs is 403.

Keys look like ``ppm_<12 hex>_<43 url-safe chars>``. The middle part is a non-secret prefix that
finds the row; the store keeps only the sha256 of the whole key, compared in constant time.
Keys are printed once at creation and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from monitor.api.deps import StoreDep
from monitor.errors import MonitorError
from monitor.store import api_keys
from monitor.store.api_keys import ApiKeyInfo, ApiKeyNameTaken, Scope
from monitor.store.core import Store

_KEY_PATTERN = re.compile(r"ppm_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.@-]{1,100}")
WWW_AUTHENTICATE = 'Bearer realm="policy-monitor"'


class ApiKeyError(MonitorError):
    """An API key could not be created, found or revoked."""


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who a request comes from: the key's id, name and scope (never the key itself)."""

    key_id: int
    name: str
    scope: Scope


def _digest(key: str) -> str:
    # sha256, not bcrypt/argon2: slow hashes protect guessable passwords. These keys carry 256
    # random bits, so no hash speed makes guessing feasible, and a fast hash keeps the check
    # per request in microseconds instead of the ~100 ms a password hash is tuned to take.
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(store: Store, name: str, scope: str) -> str:
    """Create a key and return it: the only time it exists in clear (only its hash is kept)."""
    if not _NAME_PATTERN.fullmatch(name):
        raise ApiKeyError(f"key name {name!r} must be 1-100 letters, digits, '_', '.', '@' or '-'")
    try:
        chosen = Scope(scope)
    except ValueError:
        raise ApiKeyError(
            f"scope {scope!r} is not one of {', '.join(s.value for s in Scope)}"
        ) from None
    prefix = secrets.token_hex(6)
    key = f"ppm_{prefix}_{secrets.token_urlsafe(32)}"
    try:
        api_keys.add_api_key(store, name=name, prefix=prefix, key_sha256=_digest(key), scope=chosen)
    except ApiKeyNameTaken as exc:
        raise ApiKeyError(str(exc)) from None
    return key


def revoke_api_key(store: Store, name_or_id: str) -> ApiKeyInfo:
    """Revoke the live key with this name (or id). Its requests fail with 401 from now on in
    this process, and within `AUTH_CACHE_SECONDS` in servers running elsewhere."""
    matches = api_keys.revoke_live_key(store, name_or_id)
    if not matches:
        raise ApiKeyError(f"no live API key named (or with id) {name_or_id!r}")
    if len(matches) > 1:
        raise ApiKeyError(f"{name_or_id!r} matches several keys; revoke by name or by id")
    forget_cached_keys()  # after the commit: a lookup meanwhile cannot re-cache it as live
    return matches[0]


class AuthFailure(Exception):
    """Why a presented key was refused (the message never contains the key)."""


# Keys that authenticated in the last few seconds, by the sha256 of the presented key: a poller
# or claim scrubber sends the same key hundreds of times a second, and the lookup (a pooled
# connection and a query, ~0.25 ms) was a quarter of a rule lookup's cost. The price: a revoked
# key keeps working in a running server for at most AUTH_CACHE_SECONDS. Failures are not cached.
AUTH_CACHE_SECONDS = 5.0
_AUTH_CACHE_SIZE = 1024
_auth_cache: dict[tuple[int, str], tuple[float, Principal]] = {}


def authenticate(store: Store, presented: str) -> Principal:
    """The principal of a presented key, or `AuthFailure` when it is unknown or revoked."""
    digest = _digest(presented.strip())
    cache_key = (id(store), digest)
    cached = _auth_cache.get(cache_key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    principal = _authenticate(store, presented, digest)
    if len(_auth_cache) >= _AUTH_CACHE_SIZE:
        _auth_cache.clear()
    _auth_cache[cache_key] = (time.monotonic() + AUTH_CACHE_SECONDS, principal)
    return principal


def forget_cached_keys() -> None:
    """Drop every cached authentication (after a revocation in this process)."""
    _auth_cache.clear()


def _authenticate(store: Store, presented: str, digest: str) -> Principal:
    match = _KEY_PATTERN.fullmatch(presented.strip())
    if match is None:
        raise AuthFailure("malformed API key")
    stored = api_keys.find_key(store, match.group(1))
    if stored is None or not hmac.compare_digest(stored.key_sha256, digest):
        raise AuthFailure("unknown API key")
    if stored.revoked:
        raise AuthFailure("API key revoked")
    return Principal(key_id=stored.id, name=stored.name, scope=stored.scope)


_bearer = HTTPBearer(
    auto_error=False, description="`Authorization: Bearer KEY` (a key from `apikey create`)"
)
_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The same key in an `X-API-Key` header"
)


def presented_key(bearer: HTTPAuthorizationCredentials | None, header: str | None) -> str | None:
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return header or None


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": WWW_AUTHENTICATE}
    )


def check_access(request: Request, store: Store, key: str | None, needed: Scope) -> Principal:
    """401 without a valid key, 403 when the key's scope does not include `needed`."""
    if key is None:
        raise unauthorized("an API key is required (Authorization: Bearer KEY or X-API-Key)")
    try:
        principal = authenticate(store, key)
    except AuthFailure as exc:
        raise unauthorized(str(exc)) from None
    if not principal.scope.includes(needed):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"API key {principal.name!r} has scope {principal.scope.value!r}; "
            f"this needs {needed.value!r}",
        )
    request.state.principal = principal
    return principal


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
HeaderKey = Annotated[str | None, Security(_header)]


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency admitting keys whose scope includes `scope` (401 without a valid
    key, 403 with too small a scope); it returns the `Principal`. Use it as
    ``Depends(require_scope("read"))``, in ``dependencies=[...]`` or in an ``Annotated`` type."""
    needed = Scope(scope)  # a typo fails at import time, not at the first request

    # async: FastAPI runs a plain `def` dependency in its thread pool, and that hand-off costs
    # more than the indexed key lookup itself (~0.1 ms), which therefore runs on the loop.
    async def dependency(
        request: Request,
        store: StoreDep,
        bearer: BearerCredentials = None,
        header: HeaderKey = None,
    ) -> Principal:
        return check_access(request, store, presented_key(bearer, header), needed)

    return dependency


ReadAccess = Annotated[Principal, Depends(require_scope(Scope.READ))]
ReviewAccess = Annotated[Principal, Depends(require_scope(Scope.REVIEW))]
AdminAccess = Annotated[Principal, Depends(require_scope(Scope.ADMIN))]
