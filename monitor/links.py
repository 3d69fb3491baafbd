"""Links to the change pages that emails carry: signed, so a reader needs no API key.

A link is ``{public_url}/changes/{id}/page?expires=EPOCH&sig=HEX`` where ``sig`` is
HMAC-SHA256(secret, "change:{id}:{expires}"). The API accepts a valid, unexpired signature in
place of an API key for that one page (and nothing else).

The secret is never derived from anything a reader can see: it comes from
$``api.link_secret_env`` (at least 32 bytes), or is generated once into ``api.link_secret_file``
(mode 0600) and read from there afterwards. Nothing is signed or verified without one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from monitor.config import DEFAULT_LINK_SECRET_FILE, ApiConfig
from monitor.errors import ConfigError
from monitor.logs import register_secret

MIN_SECRET_BYTES = 32
log = logging.getLogger("policy_monitor.links")


def _secret_from_file(path: Path) -> bytes:
    try:
        # O_EXCL: of two processes starting together, one creates the file, the other reads it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(
            f"cannot create the link secret file {str(path)!r}: {exc.strerror or exc}",
            key="api.link_secret_file",
        ) from exc
    else:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(secrets.token_urlsafe(48) + "\n")
        log.warning(
            "generated a secret for change-page links in %s (mode 0600); instances that "
            "share a database must share it: copy it or set the environment variable",
            path,
        )
    try:
        value = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the link secret file {str(path)!r}: {exc.strerror or exc}",
            key="api.link_secret_file",
        ) from exc
    if len(value) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"the link secret file {str(path)!r} holds fewer than {MIN_SECRET_BYTES} bytes",
            key="api.link_secret_file",
        )
    register_secret(value.decode("utf-8", "replace"))
    return value


def link_secret(api: ApiConfig) -> bytes:
    """The signing secret: $``api.link_secret_env`` when set (at least 32 bytes, else a
    `ConfigError`), else the content of ``api.link_secret_file``, generated on first use."""
    value = os.environ.get(api.link_secret_env, "")
    if value:
        if len(value.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"${api.link_secret_env} is shorter than {MIN_SECRET_BYTES} bytes; "
                "use e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`",
                key="api.link_secret_env",
            )
        return value.encode()
    return _secret_from_file(Path(api.link_secret_file or DEFAULT_LINK_SECRET_FILE))


def _signature(secret: bytes, change_id: int, expires: int) -> str:
    message = f"change:{change_id}:{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def link_lifetime(api: ApiConfig) -> dt.timedelta:
    return dt.timedelta(days=api.link_lifetime_days)


def change_page_url(
    api: ApiConfig,
    change_id: int,
    *,
    now: dt.datetime | None = None,
    lifetime: dt.timedelta | None = None,
) -> str:
    now = now or dt.datetime.now(dt.UTC)
    lifetime = min(lifetime or link_lifetime(api), link_lifetime(api))
    expires = int((now + lifetime).timestamp())
    sig = _signature(link_secret(api), change_id, expires)
    base = api.public_url.rstrip("/")
    return f"{base}/changes/{change_id}/page?expires={expires}&sig={sig}"


def verify_change_link(
    api: ApiConfig, change_id: int, expires: int, sig: str, *, now: dt.datetime | None = None
) -> bool:
    """True when `sig` signs (change_id, expires), `expires` is in the future and no further
    away than the configured lifetime (a link cannot outlive the policy it was made under)."""
    now = now or dt.datetime.now(dt.UTC)
    if not now.timestamp() <= expires <= (now + link_lifetime(api)).timestamp():
        return False
    expected = _signature(link_secret(api), change_id, expires)
    # Bytes, not str: compare_digest refuses non-ASCII str (a forged link would be a 500).
    return hmac.compare_digest(expected.encode(), sig.encode("utf-8", "surrogateescape"))
