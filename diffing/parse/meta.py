"""Document facts from a header block ("Policy Number: 2026D0045A", "Effective Date: …").

Dates come in every format payers use (May 1, 2025 / 05/01/2025 / 05.01.2025 / 2025-05-01) and
leave as ISO `YYYY-MM-DD`; a value that is not a real date is not reported.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

_MONTHS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sept?|oct|nov|dec)[a-z]*\.?"
_DATE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})\b"), "ymd"),
    (re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})\b"), "mdy"),
    (re.compile(_MONTH + r"\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b", re.IGNORECASE), "Mdy"),
    (re.compile(r"(\d{1,2})\s+" + _MONTH + r",?\s+(\d{4})\b", re.IGNORECASE), "dMy"),
)

# Header labels, by the meta key they fill. The value follows after ":", "#", dots or spaces.
# A label opens with a word, not a look-behind ("(?<!original )effective" reads
# "effective(?<!original effective)"): a pattern that opens with letters is searched for them
# alone, not tried at every position of a page.
_SEPARATOR = r"[\s:#.…\-–]*"
_DATE_LABELS: tuple[tuple[str, str], ...] = (
    ("effective_date", r"effective(?<!original effective)\s+date"),
    ("publish_date", r"publish(?:ed)?\s+date|date\s+published|publication\s+date"),
    ("next_review", r"next\s+review(?:\s+date)?|anticipated\s+review\s+date|scheduled\s+review"),
    (
        "last_review",
        r"last\s+review(?:ed)?(?:\s+date)?|date\s+of\s+last\s+review"
        r"|review(?<!next review)(?<!anticipated review)\s+date",
    ),
)
_DATE_LABEL_PATTERNS = tuple(
    (key, re.compile(f"(?:{label}){_SEPARATOR}", re.IGNORECASE)) for key, label in _DATE_LABELS
)
# The same, for ASCII text lower-cased: there IGNORECASE can only pair a letter with its ASCII
# other case, so these find what those do, at the same offsets, several times faster (a
# case-sensitive pattern that opens with a word is searched for that word alone).
_ASCII_DATE_LABEL_PATTERNS = tuple(
    (key, re.compile(f"(?:{label}){_SEPARATOR}")) for key, label in _DATE_LABELS
)
# Every date label says "date" or "review" (with the same flags): a text that says neither
# (most lines of a page) need not be searched for each label.
_DATE_LABEL_WORD = re.compile(r"date|review", re.IGNORECASE)
_LEADING_SEPARATOR = re.compile(r"^[\s:#.…\-–]*")
_NUMBER_LABEL = re.compile(
    r"(?:(?:medical\s+|clinical\s+|coverage\s+|reimbursement\s+)?policy|guideline|bulletin|cpb)"
    r"\s*(?:number|no\.?|#)|(?:^|\n)\s*number(?=\s*:)",
    re.IGNORECASE,
)
_NUMBER_VALUE = re.compile(r"[A-Z0-9][A-Z0-9.\-_/]*[A-Z0-9]|\d")
_KEY_ORDER = (
    "policy_number",
    "effective_date",
    "publish_date",
    "last_review",
    "next_review",
)


def parse_date(text: str) -> str | None:
    """ISO date at the start of `text` (after spaces), or None."""
    text = text.strip()
    for pattern, order in _DATE_PATTERNS:
        match = pattern.match(text)
        if not match:
            continue
        a, b, c = match.groups()
        try:
            if order == "ymd":
                year, month, day = int(a), int(b), int(c)
            elif order == "mdy":
                year, month, day = int(c), int(a), int(b)
            elif order == "Mdy":
                year, month, day = int(c), _MONTHS[a.lower()[:3]], int(b)
            else:
                year, month, day = int(c), _MONTHS[b.lower()[:3]], int(a)
            if year < 100:
                year += 2000 if year < 70 else 1900
            return dt.date(year, month, day).isoformat()
        except (ValueError, KeyError):
            return None
    return None


def header_meta(text: str) -> list[tuple[str, str]]:
    """Facts stated in a header block, first occurrence of each key."""
    found: dict[str, str] = {}
    searched, labels = text, _DATE_LABEL_PATTERNS
    if text.isascii():
        searched, labels = text.lower(), _ASCII_DATE_LABEL_PATTERNS  # the same offsets
    for key, label in labels if _DATE_LABEL_WORD.search(searched) else ():
        for match in label.finditer(searched):
            value = parse_date(text[match.end() : match.end() + 40])
            if value:
                found.setdefault(key, value)
                break
    for match in _NUMBER_LABEL.finditer(text):
        rest = text[match.end() : match.end() + 60]
        rest = _LEADING_SEPARATOR.sub("", rest)
        number = _NUMBER_VALUE.match(rest)
        if number and any(ch.isdigit() for ch in number.group(0)):
            found.setdefault("policy_number", number.group(0))
            break
    return list(found.items())


def merge_meta(*groups: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """One value per key, the first group that has it winning; known keys first, then by name."""
    merged: dict[str, str] = {}
    for group in groups:
        for key, value in group:
            if value and key not in merged:
                merged[key] = value

    def rank(key: str) -> tuple[int, str]:
        return (_KEY_ORDER.index(key) if key in _KEY_ORDER else len(_KEY_ORDER), key)

    return tuple((key, merged[key]) for key in sorted(merged, key=rank))
