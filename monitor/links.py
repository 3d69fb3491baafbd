"""Links to the change pages that emails carry: signed, so a reader needs no API key.

A link is ``{public_url}/changes/{id}/page?expires=EPOCH&sig=HEX`` where ``sig`` is
HMAC-SHA256(secret, "change:{id}:{expires}"). The API accepts a valid, unexpired signature in
place of an API key for that one page (and nothing else).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os

from monitor.config import ApiConfig

DEFAULT_LIFETIME = dt.timedelta(days=90)


def link_secret(api: ApiConfig) -> bytes:
    """The signing secret: $``api.link_secret_env`` when set, else one derived per database-less
    installation from the API public URL (good enough for a single host; set the variable in
    production so several instances agree and links survive a URL change)."""
    value = os.environ.get(api.link_secret_env)
    if value:
        return value.encode()
    return hashlib.sha256(b"policy-monitor-links:" + api.public_url.encode()).digest()


def _signature(secret: bytes, change_id: int, expires: int) -> str:
    message = f"change:{change_id}:{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def change_page_url(
    api: ApiConfig,
    change_id: int,
    *,
    now: dt.datetime | None = None,
    lifetime: dt.timedelta = DEFAULT_LIFETIME,
) -> str:
    now = now or dt.datetime.now(dt.UTC)
    expires = int((now + lifetime).timestamp())
    sig = _signature(link_secret(api), change_id, expires)
    base = api.public_url.rstrip("/")
    return f"{base}/changes/{change_id}/page?expires={expires}&sig={sig}"


def verify_change_link(
    api: ApiConfig, change_id: int, expires: int, sig: str, *, now: dt.datetime | None = None
) -> bool:
    """True when `sig` signs (change_id, expires) and `expires` is in the future."""
    now = now or dt.datetime.now(dt.UTC)
    if expires < now.timestamp():
        return False
    expected = _signature(link_secret(api), change_id, expires)
    # Bytes, not str: compare_digest refuses non-ASCII str (a forged link would be a 500).
    return hmac.compare_digest(expected.encode(), sig.encode("utf-8", "surrogateescape"))
