"""For `policy-monitor demo`: the digest of what is in the outbox, as text, and sending it."""

from __future__ import annotations

import datetime as dt

from monitor.config import Config, RecipientProfile
from monitor.store.core import Store, utcnow
from monitor.store.outbox import NotifyStore
from notifications.planner import Planner
from notifications.select import effective_profiles
from notifications.sender import RoundReport, Sender

DEMO_PROFILE = RecipientProfile(name="demo", addresses=("billing@demo.invalid",))


def _profile(config: Config) -> RecipientProfile:
    return next((p for p in effective_profiles(config) if p.digest), DEMO_PROFILE)


def show_digest(store: Store, config: Config, *, now: dt.datetime | None = None) -> str:
    """The plain-text digest of every announced change not yet in a digest (after week 2:
    the week-2 changes), for the first digest profile or an unfiltered one. Sends nothing
    and claims nothing."""
    planner = Planner(NotifyStore(store), config)
    rendered = planner.preview(_profile(config), now or utcnow())
    return rendered.text


def send_digest(store: Store, config: Config, *, now: dt.datetime | None = None) -> RoundReport:
    """Write every digest profile's digest now and deliver it over `config.email`'s SMTP."""
    sender = Sender(store, config)
    try:
        now = now or utcnow()
        for profile in effective_profiles(config):
            if profile.digest:
                sender.planner.digest(profile, now, force=True)
        return sender.deliver_due(now)
    finally:
        sender.close()
