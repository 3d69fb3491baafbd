"""Which changes a profile or webhook wants, and how a digest groups them (pure functions).

The selection itself lives in `monitor.selection` (the API's feeds use it too); it is
re-exported here for the planner, the renderers and the commands that have always found it here.
"""

from __future__ import annotations

from monitor.config import Config, RecipientProfile
from monitor.selection import change_matches as change_matches
from monitor.selection import effective_profiles as effective_profiles
from monitor.selection import group_label as group_label
from monitor.selection import matches as matches
from monitor.selection import rank as rank
from monitor.selection import short_name as short_name

CHECKLIST_KIND = "checklist_changed"


def operators_profile(config: Config) -> RecipientProfile | None:
    """The profile named by `[notifications] operators_profile`, which hears of broken sources
    and quarantined versions; None when no such profile exists."""
    name = config.notifications.operators_profile
    return next((p for p in effective_profiles(config) if p.name == name), None)
