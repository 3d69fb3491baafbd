"""Durations in criteria text ("at least 8 weeks", "3-month trial", "≥ 28 consecutive days"),
normalised to days and classified by what they bound: a minimum trial, a maximum, a look-back
window ("within the past 90 days"), a dosing frequency ("every 2 weeks") or an age.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from diffing.extract.folded import finditer_in_place, lowered_pattern
from diffing.extract.memo import per_text

DAYS_PER_MONTH = 30.4375  # 365.25 / 12: 3 months -> 91, 6 -> 183, 12 -> 365
DAYS_PER_UNIT = {"day": 1.0, "week": 7.0, "month": DAYS_PER_MONTH, "year": 365.0}

_UNITS = {
    "day": "day",
    "days": "day",
    "week": "week",
    "weeks": "week",
    "wk": "week",
    "wks": "week",
    "month": "month",
    "months": "month",
    "mo": "month",
    "mos": "month",
    "year": "year",
    "years": "year",
    "yr": "year",
    "yrs": "year",
}

ONES = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_ONES_RE = "|".join(sorted(ONES, key=len, reverse=True))
_TENS_RE = "|".join(TENS)
NUMBER = rf"(?:\d+(?:\.\d+)?|(?:{_TENS_RE})(?:[\s-](?:{_ONES_RE}))?|{_ONES_RE})"

MINIMUM_PREFIX = (
    r"≥|>=|=>|at least|(?:a )?minimum (?:duration|period|length) of(?: at least)?"
    r"|(?:a )?duration of at least|a minimum of|minimum of|a minimum|minimum|no less than"
    r"|not less than|no fewer than|greater than|more than|longer than|in excess of|over|>"
)
MAXIMUM_PREFIX = (
    r"≤|<=|=<|no more than|not more than|not to exceed|no longer than|up to|a maximum of"
    r"|maximum of|a maximum|maximum|less than|fewer than|<"
)

_DURATION = re.compile(
    rf"(?:(?P<min>{MINIMUM_PREFIX})\s*|(?P<max>{MAXIMUM_PREFIX})\s*)?"
    rf"(?<![\w.])(?P<num>{NUMBER})(?:\s*\(\d+\))?"
    r"(?:\s*-\s*|\s+)?(?P<consecutive>consecutive[\s-]+)?"
    r"(?P<unit>days?|weeks?|wks?|months?|mos?|years?|yrs?)\b"
    r"(?P<suffix>(?:\s*-\s*|\s+)(?:supply|trial|course|period|duration))?",
    re.IGNORECASE,
)
# `_DURATION` for lower-cased ASCII text: the same matches, case-sensitive (faster).
_DURATION_LOWERED = lowered_pattern(_DURATION)
# A pre-check: every duration has one of `_DURATION`'s units, whole, with the same flags, so a
# text without one has none. ("mo" alone, the old pre-check, is in most sentences: "more".)
_ANY_UNIT = re.compile(r"(?:days?|weeks?|wks?|months?|mos?|years?|yrs?)\b", re.IGNORECASE)
_LOOKBACK_BEFORE = re.compile(
    r"(?:\b(?:within|in|during|over|throughout|for)\s+(?:the\s+)?"
    r"(?:past|last|previous|preceding|prior|most recent)\s*|\bwithin\s+(?:the\s+)?)$",
    re.IGNORECASE,
)
_LOOKBACK_AFTER = re.compile(r"^\s*(?:prior to|before|preceding|of the (?:request|date))\b", re.I)
_FREQUENCY_BEFORE = re.compile(r"(?:\b(?:every|each|per|once|twice|q)\s*|/\s*)$", re.IGNORECASE)
_AGE_AFTER = re.compile(r"^\s*(?:of\s+age|old|of\s+age\s+or|and\s+(?:older|up)|or\s+older)\b", re.I)
_AGE_BEFORE = re.compile(r"\b(?:aged?|ages)\s*(?:of\s*)?(?:≥|>=|at least)?\s*$", re.IGNORECASE)


class DurationKind(StrEnum):
    MINIMUM = "minimum"  # "at least 8 weeks", "for greater than 4 weeks"
    MAXIMUM = "maximum"  # "no more than 6 months", "up to 12 months"
    PLAIN = "plain"  # "a 3 month trial", "for 12 months"
    LOOKBACK = "lookback"  # "within the past 90 days": when, not how long
    FREQUENCY = "frequency"  # "every 2 weeks"
    AGE = "age"  # "12 years of age"


@dataclass(frozen=True, kw_only=True, slots=True)
class Duration:
    start: int
    end: int
    days: int
    kind: DurationKind
    text: str

    @property
    def is_trial_length(self) -> bool:
        """Whether this can be how long a prerequisite must have been tried."""
        return self.kind in (DurationKind.MINIMUM, DurationKind.PLAIN)


def parse_number(text: str) -> float | None:
    """ "12", "2.5", "eight", "twenty-eight" -> the number; anything else -> None."""
    text = text.strip().lower()
    try:
        return float(text)
    except ValueError:
        pass
    if text in ONES:
        return float(ONES[text])
    parts = re.split(r"[\s-]+", text)
    if parts[0] in TENS and (len(parts) == 1 or (len(parts) == 2 and parts[1] in ONES)):
        return float(TENS[parts[0]] + (ONES[parts[1]] if len(parts) == 2 else 0))
    return None


def to_days(number: float, unit: str) -> int:
    """Days in `number` `unit`s; months are a twelfth of 365.25 days, rounded."""
    return round(number * DAYS_PER_UNIT[_UNITS[unit.lower()]])


def _group(text: str, match: re.Match[str], name: str) -> str | None:
    """The text of `match`'s group `name` in `text` (`match` may be of the text lower-cased),
    None when the group took no part."""
    start, end = match.span(name)
    return None if start < 0 else text[start:end]


def find_durations(text: str) -> list[Duration]:
    """Every duration in `text`, in order, with its kind."""
    found: list[Duration] = []
    if not _ANY_UNIT.search(text):
        return found
    for match in finditer_in_place(_DURATION, _DURATION_LOWERED, text):
        minimum, maximum = _group(text, match, "min"), _group(text, match, "max")
        number = parse_number(_group(text, match, "num") or "")
        if number is None or number <= 0:
            continue
        before = text[: match.start()]
        after = text[match.end() :]
        if _AGE_AFTER.match(after) or _AGE_BEFORE.search(before):
            kind = DurationKind.AGE
        elif _LOOKBACK_BEFORE.search(before) or _LOOKBACK_AFTER.match(after):
            kind = DurationKind.LOOKBACK
        elif not minimum and not maximum and _FREQUENCY_BEFORE.search(before):
            kind = DurationKind.FREQUENCY
        elif minimum:
            kind = DurationKind.MINIMUM
        elif maximum:
            kind = DurationKind.MAXIMUM
        else:
            kind = DurationKind.PLAIN
        found.append(
            Duration(
                start=match.start(),
                end=match.end(),
                days=to_days(number, _group(text, match, "unit") or ""),
                kind=kind,
                text=text[match.start() : match.end()],
            )
        )
    return found


# `find_durations` remembered for short texts (`diffing.extract.memo`): what the extractor and the
# tree call, sentence after sentence and item after item, many of them a payer's recurring ones.
remembered_durations = per_text(find_durations)
