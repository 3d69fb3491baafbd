"""How stored values read to a person: durations in the policy's own unit ("12 weeks", not 84
days) and the dates a change takes effect. A leaf: the store, the reports, the emails and the
change page all word things the same way through it."""

from __future__ import annotations

import datetime as dt
import re

from diffing.extract.durations import ONES, TENS, parse_number

# Stored durations are days; a month is round(N * 30.4375) days when the extractor converted it
# ("6 months" -> 183), some policies count 30-day months ("120 days") or twelfths of a year.
_MONTH_DAYS = {
    days: n for n in range(24, 0, -1) for days in {round(n * 30.4375), round(n * 365 / 12), n * 30}
}
# The extractor's number words ("twelve", "twenty-four"), longest first so "twenty-four" is
# not read as "twenty".
_NUMBER_WORDS = sorted(
    {*ONES, *TENS, *(f"{ten}-{one}" for ten in TENS for one in ONES if ONES[one] < 10)},
    key=len,
    reverse=True,
)
_WRITTEN = re.compile(
    r"\b(\d{1,4}|"
    # The extractor's number words, longest first so "twenty-four" is not read as "twenty".
    + "|".join(
        sorted(
            {*ONES, *(f"{t}-{o}" for t in TENS for o in ONES if ONES[o] < 10), *TENS},
            key=len,
            reverse=True,
        )
    )
    + r")(?:\s*\(\d{1,4}\))?[\s-]*(day|week|month|year)s?\b",
    re.IGNORECASE,
)
# Change fields whose before/after values are day counts.
DURATION_FIELDS = frozenset({"min_duration_days"})
DURATION_KINDS = frozenset({"approval_period_changed"})
_STEP_DAYS = re.compile(r">= (\d{1,5}) days\b")
# A `code_coverage_changed` names the code tables a code moved between (`CodeRef.table`).
COVERAGE_KIND = "code_coverage_changed"
_COVERAGE_LISTS = {
    "hcpcs": "covered (CPT/HCPCS)",
    "hcpcs_noncovered": "not covered (CPT/HCPCS)",
    "icd10_covered": "covered (ICD-10)",
    "icd10_noncovered": "not covered (ICD-10)",
}


def _in_days(amount: int, unit: str) -> set[int]:
    unit = unit.lower()
    if unit == "day":
        return {amount}
    if unit == "week":
        return {amount * 7}
    if unit == "month":
        return {round(amount * 30.4375), round(amount * 365 / 12), amount * 30}
    return {amount * 365, round(amount * 365.25)}


def _plural(amount: int, unit: str) -> str:
    return f"{amount} {unit}{'' if amount == 1 else 's'}"


def duration(days: int, written: str | None = None) -> str:
    """`days` as a person reads it: as `written` says it when a phrase of `written` (the policy
    sentence) means that many days ("for a minimum of 12 weeks" -> "12 weeks"), else in the
    largest whole unit (84 -> "12 weeks", 183 -> "6 months", 365 -> "1 year", 10 -> "10 days")."""
    for match in _WRITTEN.finditer(written or ""):
        number, unit = match.group(1).lower(), match.group(2).lower()
        amount = int(parse_number(number) or 0)
        if days in _in_days(amount, unit):
            return _plural(amount, unit)
    if days > 0 and days % 365 == 0:
        return _plural(days // 365, "year")
    if days in _MONTH_DAYS and _MONTH_DAYS[days] >= 2:
        return _plural(_MONTH_DAYS[days], "month")
    if days > 0 and days % 7 == 0:
        return _plural(days // 7, "week")
    return _plural(days, "day")


def value_as_written(
    kind: str, field: str | None, value: str | None, evidence: str | None
) -> str | None:
    """A change's before or after value with its durations in the policy's unit, a coverage
    change's code tables as lists ("not covered (CPT/HCPCS)"); other values unchanged.
    `evidence` is the change's evidence (the policy sentence)."""
    if value is None:
        return None
    if (kind in DURATION_KINDS or field in DURATION_FIELDS) and value.isdigit():
        return duration(int(value), evidence)
    if kind == COVERAGE_KIND:
        return _COVERAGE_LISTS.get(value, value)
    if kind in ("step_therapy_added", "step_therapy_removed"):
        return _STEP_DAYS.sub(
            lambda m: f"for at least {duration(int(m.group(1)), evidence)}", value
        )
    return value


def not_stated(first_seen: dt.date) -> str:
    return f"effective date not stated; first seen {first_seen.isoformat()}"


def change_effective_date(
    stated: dt.date | None,
    previous_version_date: dt.date | None,
    *,
    has_previous: bool,
    detected: dt.date,
) -> dt.date | None:
    """The date a change takes effect, or None when the source gives none.

    `stated` is the date stored with the change (the new version's effective date as the
    source gave it). A date no newer than the previous version's and already past when the
    change was `detected` is the document's old date, not this change's: None. A date still
    ahead when detected is when the revised text takes effect, even if unchanged.
    """
    if stated is None:
        return None
    if (
        has_previous
        and previous_version_date is not None
        and stated <= previous_version_date
        and stated < detected
    ):
        return None
    return stated


DEFAULT_NOTICE_DAYS = 30
SHORT_NOTICE = "short_notice"
RETROACTIVE = "retroactive"
NOTICE_FLAGS = (SHORT_NOTICE, RETROACTIVE)


def notice_flags(
    effective: dt.date | None, first_seen: dt.date, notice_days: int = DEFAULT_NOTICE_DAYS
) -> tuple[str, ...]:
    """How much notice a change gave: ("retroactive",) when it took effect before it was first
    seen, ("short_notice",) when it takes effect fewer than `notice_days` days after, else ().
    A change with no stated effective date gets no flag: nothing says it came late."""
    if effective is None:
        return ()
    if effective < first_seen:
        return (RETROACTIVE,)
    if (effective - first_seen).days < notice_days:
        return (SHORT_NOTICE,)
    return ()


def notice_text(flag: str, effective: dt.date, first_seen: dt.date) -> str:
    """A flag as a person reads it: "short notice: effective 13 days after first seen"."""
    days = abs((effective - first_seen).days)
    if flag == RETROACTIVE:
        return f"retroactive: effective {_plural(days, 'day')} before first seen"
    return f"short notice: effective {_plural(days, 'day')} after first seen"
