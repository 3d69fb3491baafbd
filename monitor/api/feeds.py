"""Atom feeds of changes per recipient profile: ``GET /feeds/{profile}.atom``, for feed readers
and for teams that would rather subscribe than get email.

A feed holds what the profile's digest would hold (announced changes passing the profile's
filters and `min_severity`; `monitor.selection`), newest first, at most `limit` entries found
among the newest `SCAN_WINDOW` announced changes. A `read` key admits, and so does a signed
feed URL (``GET /feeds/{profile}/link`` makes one): ``?expires=EPOCH&sig=HEX`` where ``sig`` is
HMAC-SHA256 of ``feed:{profile}:{expires}`` under the change-page link secret
(`monitor.links`), valid for that profile's feed only and for at most ``link_lifetime_days``.
Entries link to the signed change page, so a reader needs no key for those either.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from monitor.api.auth import (
    BearerCredentials,
    HeaderKey,
    ReadAccess,
    Scope,
    check_access,
    presented_key,
    unauthorized,
)
from monitor.api.changes import notice_days_of
from monitor.api.deps import StoreDep, not_found, root_of
from monitor.api.schemas import JSON_ERROR, KEY_ERRORS, NOT_FOUND
from monitor.config import ApiConfig, Config, RecipientProfile
from monitor.links import change_page_url, link_lifetime, link_secret
from monitor.report import describe, flag_label, kind_label
from monitor.selection import change_matches, effective_profiles, issuer
from monitor.store.core import ChangeRecord, Store
from monitor.store.outbox import ChangeFacets, NotifyStore

router = APIRouter(tags=["feeds"])

ATOM_TYPE = "application/atom+xml; charset=utf-8"
DEFAULT_ENTRIES = 50
MAX_ENTRIES = 200
# Announced changes looked at, newest first, to fill a feed: a narrow profile whose changes are
# older than this many announced changes gets a shorter feed rather than a slow request.
SCAN_WINDOW = 2000
ProfileName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]
_FEED_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"content": JSON_ERROR, "description": "No key and no valid signed feed URL"},
    403: {"content": JSON_ERROR, "description": "The key's scope does not allow this"},
    404: {"content": JSON_ERROR, "description": "No such recipient profile"},
}


class FeedLinkOut(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str
    url: str = Field(description="The feed's signed URL: give it to a feed reader as it is")
    expires_at: dt.datetime


def _signature(secret: bytes, profile: str, expires: int) -> str:
    # "feed:" keeps a feed signature from passing for a change page's ("change:") and back.
    return hmac.new(secret, f"feed:{profile}:{expires}".encode(), hashlib.sha256).hexdigest()


def feed_url(api: ApiConfig, profile: str, *, now: dt.datetime | None = None) -> tuple[str, int]:
    """The signed feed URL of `profile` and its expiry (Unix time), valid for the configured
    link lifetime from `now`."""
    now = now or dt.datetime.now(dt.UTC)
    expires = int((now + link_lifetime(api)).timestamp())
    sig = _signature(link_secret(api), profile, expires)
    return f"{api.public_url.rstrip('/')}/feeds/{profile}.atom?expires={expires}&sig={sig}", expires


def verify_feed_link(
    api: ApiConfig, profile: str, expires: int, sig: str, *, now: dt.datetime | None = None
) -> bool:
    """True when `sig` signs (profile, expires), unexpired and within the link lifetime."""
    now = now or dt.datetime.now(dt.UTC)
    if not now.timestamp() <= expires <= (now + link_lifetime(api)).timestamp():
        return False
    expected = _signature(link_secret(api), profile, expires)
    return hmac.compare_digest(expected.encode(), sig.encode("utf-8", "surrogateescape"))


def _profile(config: Config, name: str) -> RecipientProfile:
    found = next((p for p in effective_profiles(config) if p.name == name), None)
    if found is None:
        raise not_found(f"recipient profile {name!r}")
    return found


def feed_changes(
    request: Request, store: Store, profile: RecipientProfile, limit: int
) -> list[tuple[ChangeRecord, ChangeFacets]]:
    """The newest changes `profile` would be sent (its digest's selection), newest first."""
    records = store.changes(
        newest_first=True,
        include_baseline=False,
        min_severity="low",  # also leaves out noise and unverified claims: never announced
        limit=SCAN_WINDOW,
        notice_days=notice_days_of(request, store),
    )
    facets = NotifyStore(store).facets([r.id for r in records])
    chosen = []
    for record in records:
        facet = facets.get(record.id, ChangeFacets())
        if change_matches(profile, record, facet, min_severity=profile.min_severity):
            chosen.append((record, facet))
            if len(chosen) == limit:
                break
    return chosen


def _day_start(now: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(now.date(), dt.time.min, tzinfo=dt.UTC)


def _summary(change: ChangeRecord) -> str:
    lines = [describe(change, width=400)]
    if change.effective_date:
        lines.append(f"Effective {change.effective_date.isoformat()}")
    elif change.effective_note:
        lines.append(change.effective_note)
    lines += [flag_label(flag) for flag in change.flags]
    lines.append(f"Source: {change.source}, document {change.document_id} ({change.url})")
    return "\n".join(lines)


def render_feed(
    config: Config,
    profile: RecipientProfile,
    entries: list[tuple[ChangeRecord, ChangeFacets]],
    *,
    self_url: str,
    now: dt.datetime,
) -> bytes:
    """The Atom document. Its bytes change only when its entries do (or once a day, when the
    signed change-page links roll over), so ETags and If-None-Match spare feed readers."""
    from feedgen.feed import FeedGenerator  # imported on first feed: the CLI never needs it

    day = _day_start(now)
    feed = FeedGenerator()
    feed.id(f"urn:policy-monitor:feed:{profile.name}")
    feed.title(f"Policy changes for {profile.name}")
    feed.subtitle("Changes in payer and CMS coverage criteria, newest first")
    feed.link(href=self_url, rel="self", type="application/atom+xml")
    feed.link(href=config.api.public_url.rstrip("/") + "/changes", rel="alternate")
    feed.author({"name": "Payer Policy Monitor"})
    feed.generator("policy-monitor")
    feed.updated(max((c.detected_at for c, _ in entries), default=day))
    for change, facets in entries:
        entry = feed.add_entry(order="append")
        entry.id(f"urn:policy-monitor:change:{change.id}")
        entry.title(f"{change.severity.upper()} · {change.title} · {kind_label(change.kind)}")
        entry.link(href=change_page_url(config.api, change.id, now=day), rel="alternate")
        entry.author({"name": issuer(change, facets)})
        entry.published(change.detected_at)
        entry.updated(change.detected_at)
        entry.summary(_summary(change))
        entry.category(term=change.severity, label=f"severity {change.severity}")
        for flag in change.flags:
            entry.category(term=flag, label=flag_label(flag))
    xml: bytes = feed.atom_str(pretty=True)
    return xml


@router.get(
    "/feeds/{profile}.atom",
    response_class=Response,
    responses={200: {"content": {"application/atom+xml": {}}}, **_FEED_ERRORS},
)
def atom_feed(
    request: Request,
    store: StoreDep,
    profile: ProfileName,
    bearer: BearerCredentials = None,
    header: HeaderKey = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ENTRIES)] = DEFAULT_ENTRIES,
    expires: Annotated[int | None, Query(description="Signed feed URL: expiry (Unix time)")] = None,
    sig: Annotated[str | None, Query(max_length=128, description="Signed feed URL")] = None,
) -> Response:
    """The changes `profile`'s recipients would be sent, as Atom, newest first. A signed feed
    URL (`expires` and `sig`, from `/feeds/{profile}/link`) admits without a key, for this
    profile's feed only; otherwise a `read` key is needed."""
    config: Config = request.app.state.config
    signed = (
        expires is not None
        and sig is not None
        and verify_feed_link(config.api, profile, expires, sig)
    )
    if not signed:
        key = presented_key(bearer, header)
        if key is None and (expires is not None or sig is not None):
            raise unauthorized("this feed URL has expired or is not valid; ask for a new one")
        check_access(request, store, key, Scope.READ)
    chosen = _profile(config, profile)
    entries = feed_changes(request, store, chosen, limit)
    self_url = f"{config.api.public_url.rstrip('/')}{root_of(request)}/feeds/{profile}.atom"
    body = render_feed(config, chosen, entries, self_url=self_url, now=dt.datetime.now(dt.UTC))
    headers = {"Cache-Control": "private, no-cache", "Referrer-Policy": "no-referrer"}
    return Response(body, media_type=ATOM_TYPE, headers=headers)


@router.get(
    "/feeds/{profile}/link", response_model=FeedLinkOut, responses={**KEY_ERRORS, **NOT_FOUND}
)
def feed_link(request: Request, profile: ProfileName, _key: ReadAccess) -> FeedLinkOut:
    """A signed URL of `profile`'s feed, for a feed reader that cannot send a key (valid for
    `[api] link_lifetime_days`)."""
    config: Config = request.app.state.config
    _profile(config, profile)
    url, expires = feed_url(config.api, profile)
    return FeedLinkOut(
        profile=profile, url=url, expires_at=dt.datetime.fromtimestamp(expires, dt.UTC)
    )
