"""Age limits in one sentence: "18 years of age or older", "aged 12 years and older", "between
12 and 17 years", "under 18" (at most 17), "members younger than 6 are not eligible" (at least 6).

The model counts whole years, so "6 months of age and older" is a minimum age of 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from diffing.extract.durations import NUMBER, parse_number
from diffing.extract.folded import finditer_in_place, found_in, lowered_pattern
from diffing.extract.memo import per_text

_AGE_UNIT = r"(?P<unit>years?|yrs?|months?)"
_AGE_PATTERNS: tuple[tuple[re.Pattern[str], str | None], ...] = (
    # "between 12 and 17 years of age", "12 to 17 years old", "aged 6-11 years"
    (
        re.compile(
            rf"\b(?:between\s+|aged?\s+|ages\s+)(?P<low>{NUMBER})\s*(?:and|to|-|–|through)\s*"
            rf"(?P<high>{NUMBER})\s*{_AGE_UNIT}?",
            re.IGNORECASE,
        ),
        "range",
    ),
    (
        re.compile(
            rf"\b(?P<low>{NUMBER})\s*(?:to|-|–|through)\s*(?P<high>{NUMBER})\s*{_AGE_UNIT}"
            r"\s*(?:of\s+age|old)\b",
            re.IGNORECASE,
        ),
        "range",
    ),
    # "under 18", "younger than 18 years", "less than 12 years of age"
    (
        re.compile(
            rf"\b(?:under|younger than|less than|below)\s+(?:the\s+)?(?:age\s+(?:of\s+)?)?"
            rf"(?P<n>{NUMBER})(?!\s*(?:%|mm|mg|days?|weeks?))(?:\s*{_AGE_UNIT})?",
            re.IGNORECASE,
        ),
        "<",
    ),
    # "older than 17", "over the age of 18"
    (
        re.compile(
            rf"\b(?:older than|over)\s+(?:the\s+)?(?:age\s+(?:of\s+)?)?(?P<n>{NUMBER})"
            rf"(?:\s*{_AGE_UNIT})?",
            re.IGNORECASE,
        ),
        ">",
    ),
    # "age ≥ 18", "aged 12 years and older", "at least 18 years of age", "18 years or older"
    (
        re.compile(
            rf"(?:\b(?P<age_word>aged?|ages?)\s*(?:of\s*)?(?::\s*)?)?"
            rf"(?:(?P<ge>≥|>=|=>|at least|a minimum of|minimum of|no less than)\s*|(?P<gt>>)\s*"
            rf"|(?P<le>≤|<=|=<|no more than|at most)\s*)?"
            rf"(?<![\w.])(?P<n>{NUMBER})\s*{_AGE_UNIT}?(?P<rest>\s*(?:of\s+age|old))?"
            r"(?:\s*(?:,\s*)?(?P<sfx_ge>or older|and older|or above|and above|or greater|and up"
            r"|or over|\+)|\s*(?P<sfx_le>or younger|and younger|or less|or under|and under))?",
            re.IGNORECASE,
        ),
        None,
    ),
)


@dataclass(frozen=True, kw_only=True, slots=True)
class AgeFinding:
    op: str  # ">=" or "<="
    years: int
    text: str
    # The bound in the policy's own unit: months under two years ("<= 6 months"), else years.
    amount: int | None = None
    unit: str = "years"

    def __post_init__(self) -> None:
        if self.amount is None:
            object.__setattr__(self, "amount", self.years)


def _years(number: str, unit: str | None) -> int | None:
    value = parse_number(number)
    if value is None:
        return None
    if unit and unit.lower().startswith("m"):
        return int(value // 12)  # "6 months of age": the model counts whole years
    return int(value)


# Every pattern above reads a number, at a word start (after a space, `\b` or `(?<![\w.])`):
# most sentences have none, and are answered by this one search instead of five.
_ANY_NUMBER = re.compile(rf"\b(?:{NUMBER})", re.IGNORECASE)
_AGE_HINT = re.compile(r"age|year|yr|month|old|young|under|over|less than|below", re.IGNORECASE)
_AGE_HINT_LOWERED = lowered_pattern(_AGE_HINT)
# `_AGE_PATTERNS` for lower-cased ASCII text: the same matches, case-sensitive (faster).
_AGE_PATTERNS_LOWERED = tuple(lowered_pattern(pattern) for pattern, _ in _AGE_PATTERNS)
_ANY_NUMBER_LOWERED = lowered_pattern(_ANY_NUMBER)
_EXCLUDED = re.compile(
    r"\b(?:excluded|ineligible|not (?:be )?(?:covered|eligible|medically necessary|approved"
    r"|candidates?|appropriate|indicated|recommended|for use))\b",
    re.IGNORECASE,
)


def find_age_limits(text: str) -> list[AgeFinding]:
    """Age limits in a sentence; "patients under 18 are excluded" is a minimum age of 18."""
    found: list[tuple[int, AgeFinding]] = []
    taken: list[tuple[int, int]] = []
    hinted = found_in(_AGE_HINT, _AGE_HINT_LOWERED, text)
    if not hinted or not found_in(_ANY_NUMBER, _ANY_NUMBER_LOWERED, text):
        return []
    for (pattern, kind), lowered in zip(_AGE_PATTERNS, _AGE_PATTERNS_LOWERED, strict=True):
        for match in finditer_in_place(pattern, lowered, text):
            if any(s < match.end() and match.start() < e for s, e in taken):
                continue
            findings = _age_match(match, kind, text)
            if findings:
                taken.append((match.start(), match.end()))
                clause_start = text.rfind(";", 0, match.start()) + 1
                clause_end = text.find(";", match.end())
                clause = text[clause_start : clause_end if clause_end >= 0 else len(text)]
                if _EXCLUDED.search(clause) and len(findings) == 1:
                    findings = [_inverted(findings[0])]
                found.extend((match.start(), f) for f in findings)
    unique: list[AgeFinding] = []
    for _start, finding in sorted(found, key=lambda item: item[0]):
        if all((u.op, u.years) != (finding.op, finding.years) for u in unique):
            unique.append(finding)
    return unique


# `find_age_limits` remembered for short texts (`diffing.extract.memo`): what the extractor and the
# tree call, sentence after sentence and item after item, many of them a payer's recurring ones.
remembered_age_limits = per_text(find_age_limits)


def _inverted(finding: AgeFinding) -> AgeFinding:
    if finding.op == "<=":
        return AgeFinding(op=">=", years=finding.years + 1, text=finding.text)
    return AgeFinding(op="<=", years=finding.years - 1, text=finding.text)


def _age_match(match: re.Match[str], kind: str | None, text: str) -> list[AgeFinding]:
    findings = _age_match_years(match, kind, text)
    unit = match.groupdict().get("unit")
    if not findings or not unit or not unit.lower().startswith("m"):
        return findings
    out = []
    for finding in findings:
        number = _raw_number(match, finding)
        if number is None or number >= 24:
            out.append(finding)
        else:
            out.append(
                AgeFinding(
                    op=finding.op,
                    years=finding.years,
                    text=finding.text,
                    amount=number,
                    unit="months",
                )
            )
    return out


def _raw_number(match: re.Match[str], finding: AgeFinding) -> int | None:
    """The bound in months as the policy wrote it (adjusted for "under"/"over" like `years`)."""
    groups = match.groupdict()
    if groups.get("low") and groups.get("high"):
        raw = groups["low"] if finding.op == ">=" else groups["high"]
        value = parse_number(raw)
        return None if value is None else int(value)
    value = parse_number(groups.get("n") or "")
    if value is None:
        return None
    months = int(value)
    years = _years(groups["n"], groups.get("unit"))
    if years is not None and finding.years == years - 1:
        months -= 1
    elif years is not None and finding.years == years + 1:
        months += 1
    return months


# The groups of the last pattern that make its number a bound: without one it gives nothing.
_BOUND_GROUPS = ("sfx_le", "le", "sfx_ge", "ge", "gt")


def _age_match_years(match: re.Match[str], kind: str | None, text: str) -> list[AgeFinding]:
    groups = match.groupdict()
    if kind is None and not any(groups.get(name) for name in _BOUND_GROUPS):
        # A number no word makes a bound (most numbers of a sentence): no age limit below,
        # however the words around it speak of age, so they are not read.
        return []
    unit = groups.get("unit")
    # Read by span: `match` may be of the text lower-cased (`finditer_in_place`); its groups
    # are read only where case does not matter (numbers, units, which groups took part).
    whole = text[match.start() : match.end()]
    after = text[match.end() : match.end() + 12].lower()
    before = text[max(0, match.start() - 30) : match.start()].lower()
    said_age = bool(
        groups.get("age_word")
        or groups.get("rest")
        or re.match(r"\s*(?:of\s+age|old)\b", after)
        or re.search(r"\bage", whole, re.IGNORECASE)
        or re.search(
            r"\b(?:aged?|patients?|members?|individuals?|children|adults?|persons?|adolescents)"
            r"\s*\(?\s*$",
            before,
        )
    )
    if kind == "range":
        if not (said_age or (unit and unit.lower().startswith("y"))):
            return []  # "between 6 and 12 months" of therapy is no age
        low = _years(match.group("low"), unit)
        high = _years(match.group("high"), unit)
        if low is None or high is None or not low < high <= 120:
            return []
        return [
            AgeFinding(op=">=", years=low, text=whole),
            AgeFinding(op="<=", years=high, text=whole),
        ]
    years = _years(match.group("n"), unit)
    if years is None or years > 120:
        return []
    if unit and unit.lower().startswith("m") and not said_age:
        return []
    # "younger/older than" speak of age themselves; "under/over 10 years" may be anything.
    age_comparison = bool(re.match(r"(?:younger|older)\b", whole, re.IGNORECASE))
    if kind in ("<", ">") and not (said_age or age_comparison):
        return []
    if kind == "<":
        return [AgeFinding(op="<=", years=years - 1, text=whole)]
    if kind == ">":
        return [AgeFinding(op=">=", years=years + 1, text=whole)]
    if not said_age:
        return []
    if groups.get("sfx_le") or groups.get("le"):
        return [AgeFinding(op="<=", years=years, text=whole)]
    if groups.get("sfx_ge") or groups.get("ge") or groups.get("gt"):
        years = years + 1 if groups.get("gt") else years
        return [AgeFinding(op=">=", years=years, text=whole)]
    return []
