"""Which changes a profile or webhook wants, and how a digest groups them (pure functions)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from diffing.model import Severity
from monitor.config import ChangeFilters, Config, RecipientProfile
from monitor.store.outbox import ChangeFacets, PendingChange

CHECKLIST_KIND = "checklist_changed"
_CODE_TOKEN = re.compile(r"^[A-Z0-9][A-Z0-9.]{1,9}\b", re.IGNORECASE)
# Words that make contractor names long without telling them apart ("Novitas Solutions, Inc.").
_GENERIC = {"solutions", "healthcare", "administrators", "insurance", "corporation", "services"}


def effective_profiles(config: Config) -> tuple[RecipientProfile, ...]:
    """The [[recipients]] profiles; with none, `[email] recipients` as one unfiltered profile
    (how a config written before profiles existed keeps working)."""
    if config.recipients:
        return config.recipients
    if config.email.recipients:
        return (RecipientProfile(name="default", addresses=config.email.recipients),)
    return ()


def operators_profile(config: Config) -> RecipientProfile | None:
    """The profile named by `[notifications] operators_profile`, which hears of broken sources
    and quarantined versions; None when no such profile exists."""
    name = config.notifications.operators_profile
    return next((p for p in effective_profiles(config) if p.name == name), None)


def rank(severity: str) -> int:
    try:
        return Severity(severity).rank
    except ValueError:
        return Severity.LOW.rank


def _codes_of(pending: PendingChange) -> set[str]:
    codes = {c.upper() for c in pending.facets.codes}
    for text in (pending.change.before, pending.change.after):
        if text and (match := _CODE_TOKEN.match(text.strip())):
            codes.add(match.group(0).upper())
    return codes


def _names_match(wanted: Sequence[str], names: Iterable[str]) -> bool:
    lowered = [n.lower() for n in names]
    return any(w.lower() in name for w in wanted for name in lowered)


def matches(filters: ChangeFilters, pending: PendingChange, *, min_severity: str) -> bool:
    """True when `pending` passes every filter that is set (an empty filter lets all pass).
    `payers` and `contractors` are alternatives: a document has a payer or contractors."""
    change, facets = pending.change, pending.facets
    floor = max(rank(min_severity), rank(filters.min_severity))
    if rank(change.severity) < floor:
        return False
    if filters.sources and change.source not in filters.sources:
        return False
    if filters.payers or filters.contractors:
        by_payer = bool(filters.payers) and _names_match(filters.payers, [facets.payer or ""])
        by_contractor = bool(filters.contractors) and _names_match(
            filters.contractors, facets.contractors
        )
        if not (by_payer or by_contractor):
            return False
    if filters.codes:
        codes = _codes_of(pending)
        wanted = [c.upper() for c in filters.codes]
        if not any(
            (code.startswith(w[:-1]) if w.endswith("*") else code == w)
            for w in wanted
            for code in codes
        ):
            return False
    if filters.drugs:
        # Generic names and classes from the criteria; brand names usually only in the title.
        names = [*facets.drugs, change.title.lower()]
        if not _names_match(filters.drugs, names):
            return False
    return True


def short_name(name: str) -> str:
    """ "Novitas Solutions, Inc." -> "Novitas"; "Palmetto GBA" stays."""
    words = name.split(",")[0].split()
    while len(words) > 1 and words[-1].lower() in _GENERIC | {"service", "options"}:
        words.pop()
    return " ".join(words) or name


def group_label(pending: PendingChange) -> str:
    """Who issued the document: the payer, else its contractors, else CMS itself (NCDs)."""
    facets: ChangeFacets = pending.facets
    if facets.payer:
        return facets.payer
    if facets.contractors:
        return ", ".join(short_name(c) for c in facets.contractors)
    if pending.change.document_id.upper().startswith("NCD"):
        return "CMS (national)"
    return pending.change.source
