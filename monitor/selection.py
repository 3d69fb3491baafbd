"""Which changes a recipient profile, webhook, notifier or feed wants, and who issued a change
(pure functions). Here rather than in `notifications/` so the API's feeds select exactly what
the outbox would send, without the API importing the sender's package."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from diffing.model import Severity
from monitor.config import ChangeFilters, Config, RecipientProfile
from monitor.store.core import ChangeRecord
from monitor.store.outbox import ChangeFacets, PendingChange

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


def rank(severity: str) -> int:
    try:
        return Severity(severity).rank
    except ValueError:
        return Severity.LOW.rank


def _codes_of(change: ChangeRecord, facets: ChangeFacets) -> set[str]:
    codes = {c.upper() for c in facets.codes}
    for text in (change.before, change.after):
        if text and (match := _CODE_TOKEN.match(text.strip())):
            codes.add(match.group(0).upper())
    return codes


def _names_match(wanted: Sequence[str], names: Iterable[str]) -> bool:
    lowered = [n.lower() for n in names]
    return any(w.lower() in name for w in wanted for name in lowered)


def matches(filters: ChangeFilters, pending: PendingChange, *, min_severity: str) -> bool:
    """True when `pending` passes every filter that is set (an empty filter lets all pass)."""
    return change_matches(filters, pending.change, pending.facets, min_severity=min_severity)


def change_matches(
    filters: ChangeFilters, change: ChangeRecord, facets: ChangeFacets, *, min_severity: str
) -> bool:
    """`matches` for a change read outside the outbox (a feed). `payers` and `contractors` are
    alternatives: a document has a payer or contractors."""
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
        codes = _codes_of(change, facets)
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


def issuer(change: ChangeRecord, facets: ChangeFacets) -> str:
    """Who issued the document: the payer, else its contractors, else CMS itself (NCDs)."""
    if facets.payer:
        return facets.payer
    if facets.contractors:
        return ", ".join(short_name(c) for c in facets.contractors)
    if change.document_id.upper().startswith("NCD"):
        return "CMS (national)"
    return change.source


def group_label(pending: PendingChange) -> str:
    """`issuer` of an outbox event."""
    return issuer(pending.change, pending.facets)
