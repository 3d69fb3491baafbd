"""Dates as payers write them ("March 1, 2026", "03/01/2026", "03.01.2026", "2026-03-01"), the
effective date and policy number in a header block, and revision-history entries.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from diffing.model import RevisionEntry, Table

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
DATE = re.compile(
    rf"(?<![\w/.-])(?:"
    rf"(?P<mname>{_MONTH})\.?\s+(?P<mday>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<myear>\d{{4}})"
    rf"|(?P<dday>\d{{1,2}})\s+(?P<dname>{_MONTH})\.?,?\s+(?P<dyear>\d{{4}})"
    r"|(?P<iyear>\d{4})-(?P<imonth>\d{1,2})-(?P<iday>\d{1,2})"
    r"|(?P<umonth>\d{1,2})[/.-](?P<uday>\d{1,2})[/.-](?P<uyear>\d{4}|\d{2})"
    r"|(?P<compact>(?:19|20)\d{6})"
    r")(?![\w/])",
    re.IGNORECASE,
)
_EFFECTIVE = re.compile(r"\beffective(?:\s+date)?\s*(?:[:\-–]|on|as of)?\s*", re.IGNORECASE)
_POLICY_NUMBER = re.compile(
    r"\b(?:(?:medical |coverage |clinical |drug )?policy|guideline|bulletin|CPB|reference)"
    r"\s*(?:number|no\.?|#|id)\s*[:.]?\s*(?P<number>[A-Z0-9][A-Z0-9.\-_]*\d[A-Z0-9.\-_]*)"
    r"|^\s*number\s*:\s*(?P<bare>[A-Z0-9][A-Z0-9.\-_]*\d[A-Z0-9.\-_]*)",
    re.IGNORECASE | re.MULTILINE,
)
_HISTORY_STOP = re.compile(r"^\s*instructions for use\b", re.IGNORECASE)
_HISTORY_HEADER = re.compile(
    r"^\s*(?:date|summary of changes|summary|action|description|changes?|revision"
    r"|policy history/revision information|history)\s*:?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class DateMatch:
    start: int
    end: int
    date: dt.date


def _from_match(match: re.Match[str]) -> dt.date | None:
    g = match.groupdict()
    try:
        if g["mname"]:
            return dt.date(int(g["myear"]), _MONTHS[g["mname"].lower()], int(g["mday"]))
        if g["dname"]:
            return dt.date(int(g["dyear"]), _MONTHS[g["dname"].lower()], int(g["dday"]))
        if g["iyear"]:
            return dt.date(int(g["iyear"]), int(g["imonth"]), int(g["iday"]))
        if g["umonth"]:
            year = int(g["uyear"])
            year = year + 2000 if year < 100 else year
            return dt.date(year, int(g["umonth"]), int(g["uday"]))
        compact = g["compact"]
        return dt.date(int(compact[:4]), int(compact[4:6]), int(compact[6:]))
    except ValueError:  # 02/30/2026: looks like a date, is not one
        return None


def find_dates(text: str) -> list[DateMatch]:
    out = []
    for match in DATE.finditer(text):
        date = _from_match(match)
        if date is not None:
            out.append(DateMatch(start=match.start(), end=match.end(), date=date))
    return out


def parse_date(text: str | None) -> dt.date | None:
    """The first date in `text`, in any of the supported formats."""
    if not text:
        return None
    found = find_dates(text)
    return found[0].date if found else None


def effective_date_in(text: str) -> dt.date | None:
    """The date after "Effective Date:" (or "Effective") in a header block."""
    for label in _EFFECTIVE.finditer(text):
        match = DATE.match(text, label.end())
        if match is not None:
            date = _from_match(match)
            if date is not None:
                return date
    return None


def policy_number_in(text: str) -> str | None:
    match = _POLICY_NUMBER.search(text)
    if match is None:
        return None
    return (match.group("number") or match.group("bare")).rstrip(".-_")


def revisions_from_lines(lines: list[str]) -> list[RevisionEntry]:
    """Entries of a history written as lines: a date starts an entry, on its own line
    ("03/01/2025" then the notes) or before its text ("9/1/2026 Policy implemented …")."""
    entries: list[tuple[dt.date, list[str]]] = []
    for line in lines:
        if _HISTORY_STOP.match(line):
            break
        match = DATE.match(line.strip())
        date = _from_match(match) if match else None
        if date is not None and match is not None:
            entries.append((date, [line.strip()[match.end() :].strip(" -–:|")]))
        elif entries and line.strip() and not _HISTORY_HEADER.match(line):
            entries[-1][1].append(line.strip())
    return [
        RevisionEntry(date=date, text=" ".join(part for part in parts if part))
        for date, parts in entries
    ]


def is_history_table(table: Table) -> bool:
    if not table.rows:
        return False
    header = " ".join(table.rows[0]).lower()
    return "date" in header and any(
        word in header for word in ("summary", "change", "action", "revision")
    )


def revisions_from_table(table: Table) -> list[RevisionEntry]:
    entries: list[RevisionEntry] = []
    for row in table.rows[1:]:
        cells = [cell.strip() for cell in row if cell.strip()]
        if not cells:
            continue
        date = parse_date(cells[0])
        text = " ".join(cells[1:]) if date is not None else " ".join(cells)
        if date is None and entries:
            # A row that continues the previous entry's notes.
            previous = entries.pop()
            entries.append(RevisionEntry(date=previous.date, text=f"{previous.text} {text}"))
        elif date is not None:
            entries.append(RevisionEntry(date=date, text=text))
    return entries
