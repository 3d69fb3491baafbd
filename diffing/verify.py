"""Every change checked against both versions' text before it is published.

A change is a claim about the two texts: "81458 was removed" says the new text no longer lists
81458. When the texts contradict the claim (the code is still in the new text, the "added" code
was already in the old one, the old duration is still written where the new one is claimed) the
extraction was wrong, not the policy: the change is kept but demoted to `Severity.UNVERIFIED`,
never alerted, with both texts' evidence in `Change.contradiction`.

    verify_diff(diff, old_text, new_text) -> PolicyDiff
    verdicts(diff, old_text, new_text) -> list[Verdict]      # for reports and the benchmark
    document_text(document) -> str                           # the text a document is checked on
    extraction_collapsed(old_text, new_text, old, new) -> str | None  # a failure, not a change
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass

from diffing.model import Change, ChangeKind, Criteria, PolicyDiff, PolicyDocument, Severity

_SNIPPET = 60  # characters of context either side of a found phrase
# A line that records a code's removal still names the code: it is not "still listed".
_REMOVAL_WORDS = re.compile(
    r"\b(?:remov|delet|retir|terminat|discontinu|no longer|replaced|end[- ]dated)", re.IGNORECASE
)
# A change-log entry ("Added ICD-10 code L40.1", kept in the history of later versions) names
# the code without listing it: the verb comes just before the code, in the same cell or line.
_LOGGED_JUST_BEFORE = re.compile(
    r"\b(?:add(?:ed|ition of)|new(?:ly added)?|revis\w*|updat\w*)\b[^|\n]{0,40}$", re.IGNORECASE
)
_NUMBER_WORDS = {
    1: "one",
    2: "two",
    3: "three",
    4: "four",
    5: "five",
    6: "six",
    7: "seven",
    8: "eight",
    9: "nine",
    10: "ten",
    11: "eleven",
    12: "twelve",
    14: "fourteen",
    16: "sixteen",
    18: "eighteen",
    20: "twenty",
    24: "twenty-four",
}
_CHECKED_DURATION_FIELDS = {"min_duration_days"}


@dataclass(frozen=True, kw_only=True, slots=True)
class Verdict:
    """What the texts say about one change: `verified` unless they contradict it."""

    change: Change
    verified: bool
    reason: str = ""  # why it is unverified, with the evidence from each text
    old_evidence: str | None = None
    new_evidence: str | None = None


def document_text(document: PolicyDocument) -> str:
    """All of a parsed document's text, sections then table cells, one block per line."""
    parts = [section.text for section in document.sections]
    parts.extend(" | ".join(row) for table in document.tables for row in table.rows)
    return "\n".join(parts)


def verify_diff(diff: PolicyDiff, old_text: str, new_text: str) -> PolicyDiff:
    """`diff` with every change the texts contradict demoted to `Severity.UNVERIFIED`."""
    changes = tuple(_applied(v) for v in verdicts(diff, old_text, new_text))
    return dataclasses.replace(diff, changes=changes)


def verdicts(diff: PolicyDiff, old_text: str, new_text: str) -> list[Verdict]:
    """One verdict per change of `diff`, in order."""
    moved = _moved_codes(diff.changes)
    return [_verdict(change, old_text, new_text, moved) for change in diff.changes]


def _applied(verdict: Verdict) -> Change:
    if verdict.verified or verdict.change.severity is Severity.UNVERIFIED:
        return verdict.change
    return dataclasses.replace(
        verdict.change,
        severity=Severity.UNVERIFIED,
        claimed_severity=verdict.change.severity,
        contradiction=verdict.reason,
    )


def _moved_codes(changes: Iterable[Change]) -> set[str]:
    """Codes removed from one table and added to another: both texts name them by design.
    (`diffing.diff` reports a move between the covered and non-covered lists of one code
    system as one `code_coverage_changed`; this covers any other pairing, e.g. older diffs.)"""
    removed = {c.before for c in changes if c.kind is ChangeKind.CODE_REMOVED and c.before}
    added = {c.after for c in changes if c.kind is ChangeKind.CODE_ADDED and c.after}
    return removed & added


def _verdict(change: Change, old_text: str, new_text: str, moved: set[str]) -> Verdict:
    kind = change.kind
    if kind is ChangeKind.CODE_REMOVED and change.before and change.before not in moved:
        found = find_code(new_text, change.before)
        if found:
            return _contradicted(
                change, f"{change.before} is still listed in the new text", None, found
            )
    elif kind is ChangeKind.CODE_ADDED and change.after and change.after not in moved:
        # A change-log line ("Removed ICD-10 code L40.1") in the old text names the code
        # without listing it: a code put back is a real addition.
        found = find_code(old_text, change.after)
        if found:
            return _contradicted(
                change, f"{change.after} was already listed in the old text", found, None
            )
    elif kind is ChangeKind.CODE_COVERAGE_CHANGED and change.field:
        return _coverage_verdict(change, old_text, new_text)
    elif kind in (ChangeKind.DRUG_ADDED, ChangeKind.DRUG_REMOVED):
        return verify_drug_claim(change, old_text, new_text)
    elif change.before and change.after:
        patterns = _value_patterns(change)
        if patterns is not None:
            return _check_values(change, old_text, new_text, *patterns)
    return Verdict(change=change, verified=True)


def _coverage_verdict(change: Change, old_text: str, new_text: str) -> Verdict:
    """A code moved between a document's coverage lists is listed by both texts (under another
    heading in each): contradicted when either text does not name it at all. Which list a line
    belongs to is the extraction's reading; the texts alone cannot check it."""
    assert change.field is not None
    code = change.field
    old = find_code(old_text, code, count_removals=True)
    new = find_code(new_text, code, count_removals=True)
    if new is None:
        return _contradicted(change, f"{code} does not occur in the new text", old, None)
    if old is None:
        return _contradicted(change, f"{code} does not occur in the old text", None, new)
    return Verdict(change=change, verified=True, old_evidence=old, new_evidence=new)


def verify_drug_claim(change: Change, old_text: str, new_text: str) -> Verdict:
    """A `drug_removed` whose drug the new text still names, or a `drug_added` the old text
    already named, is contradicted. The drug counts as named by its generic (a biosimilar
    suffix or an antibody-conjugate prefix allowed) or by any brand either text or the change's
    evidence pairs with it ("Ibrance (palbociclib)"), or the dictionary knows for it."""
    removed = change.kind is ChangeKind.DRUG_REMOVED
    name = change.before if removed else change.after
    if not name:
        return Verdict(change=change, verified=True)
    other = new_text if removed else old_text
    for label, pattern in _drug_patterns(name, (old_text, new_text, change.evidence or "")):
        found = find_phrase(other, pattern)
        if found:
            why = (
                f"{label} is still named in the new text"
                if removed
                else f"{label} was already named in the old text"
            )
            return _contradicted(
                change, why, None if removed else found, found if removed else None
            )
    return Verdict(change=change, verified=True)


def _drug_patterns(name: str, texts: Iterable[str]) -> list[tuple[str, re.Pattern[str]]]:
    """(label, pattern) for a generic name and every brand of it: "Brand (generic)" pairs in
    `texts`, and the extractor dictionary's aliases."""
    from diffing.extract.vocabulary import DRUGS

    generic = re.escape(name)
    patterns = [
        (
            name,
            re.compile(
                rf"(?<![\w-])(?:(?:fam|ado)-)?{generic}(?:-[a-z]{{4}})?(?![\w-])", re.IGNORECASE
            ),
        )
    ]
    # The brand is capitalised (case-sensitive); the generic in any case.
    pair = re.compile(
        rf"(?<![\w-])([A-Z][A-Za-z0-9-]{{2,}})\s*[®™]?\s*\(\s*(?i:(?:fam|ado)-)?(?i:{generic})\b"
    )
    brands = {re.escape(m.group(1)) for text in texts for m in pair.finditer(text)}
    brands |= {alias for term in DRUGS if term.canonical == name for alias in term.aliases[1:]}
    for brand in sorted(brands):
        label = brand.replace("\\", "")
        patterns.append((label, re.compile(rf"(?<![\w-]){brand}(?![\w-])", re.IGNORECASE)))
    return patterns


def _contradicted(change: Change, why: str, old: str | None, new: str | None) -> Verdict:
    where = "; ".join(
        f"{side} text: …{snippet}…" for side, snippet in (("old", old), ("new", new)) if snippet
    )
    return Verdict(
        change=change, verified=False, reason=f"{why} ({where})", old_evidence=old, new_evidence=new
    )


def _check_values(
    change: Change, old_text: str, new_text: str, before: re.Pattern[str], after: re.Pattern[str]
) -> Verdict:
    """A value changed from `before` to `after`: contradicted when the new text still states
    the old value and nowhere the new one (or the old text already stated only the new one)."""
    new_has_before, new_has_after = find_phrase(new_text, before), find_phrase(new_text, after)
    if new_has_before and not new_has_after:
        why = f"the new text still says {change.before!r} and nowhere {change.after!r}"
        return _contradicted(change, why, None, new_has_before)
    old_has_before, old_has_after = find_phrase(old_text, before), find_phrase(old_text, after)
    if old_has_after and not old_has_before:
        why = f"the old text already says {change.after!r} and nowhere {change.before!r}"
        return _contradicted(change, why, old_has_after, None)
    return Verdict(change=change, verified=True)


def _value_patterns(change: Change) -> tuple[re.Pattern[str], re.Pattern[str]] | None:
    assert change.before is not None and change.after is not None
    kind = change.kind
    whole_numbers = change.before.isdigit() and change.after.isdigit()
    duration = kind is ChangeKind.APPROVAL_PERIOD_CHANGED or (
        kind is ChangeKind.STEP_THERAPY_CHANGED and change.field in _CHECKED_DURATION_FIELDS
    )
    if duration and whole_numbers:
        return _duration_pattern(int(change.before)), _duration_pattern(int(change.after))
    if kind is ChangeKind.AGE_LIMIT_CHANGED and whole_numbers:
        return _age_pattern(int(change.before)), _age_pattern(int(change.after))
    if kind is ChangeKind.THRESHOLD_CHANGED and change.field:
        before, after = _number(change.before), _number(change.after)
        if before is not None and after is not None:
            return _threshold_pattern(change.field, before), _threshold_pattern(change.field, after)
    return None


def _number(value: str) -> str | None:
    match = re.search(r"\d+(?:\.\d+)?", value)
    if match is None:
        return None
    number = match.group(0)
    return number.removesuffix(".0") if number.endswith(".0") else number


def _count(n: int) -> str:
    """`n` as written in a policy: "8", "eight", "eight (8)"."""
    word = _NUMBER_WORDS.get(n)
    digits = rf"{n}"
    if word is None:
        return rf"\b{digits}"
    return rf"(?:\b{digits}|\b{word}(?:\s*\(\s*{digits}\s*\))?)"


def _duration_pattern(days: int) -> re.Pattern[str]:
    """Every way a policy writes a duration of `days` days."""
    options = [rf"{_count(days)}[\s-]*(?:consecutive\s+|calendar\s+)?days?\b"]
    if days % 7 == 0:
        options.append(rf"{_count(days // 7)}[\s-]*(?:consecutive\s+)?weeks?\b")
    months = round(days / 30.4375)
    if months and round(months * 30.4375) == days:
        options.append(rf"{_count(months)}[\s-]*(?:consecutive\s+)?months?\b")
    if days % 365 == 0:
        options.append(rf"{_count(days // 365)}[\s-]*years?\b")
    if days == 365:
        options.append(r"\b(?:a|one)\s+year\b|\bannual(?:ly)?\b|\b12 months?\b")
    return re.compile("|".join(f"(?:{o})" for o in options), re.IGNORECASE)


def _age_pattern(years: int) -> re.Pattern[str]:
    count = _count(years)
    return re.compile(
        rf"{count}[\s-]*(?:years?|yrs?)\b"
        rf"|\bage[sd]?\s*(?:of\s*)?(?:[<>]=?|[≥≤]|at least|under|over|older than|younger than)?"
        rf"\s*{count}\b"
        rf"|{count}\s*(?:\+|and (?:older|over|above|younger|under))",
        re.IGNORECASE,
    )


def _threshold_pattern(measure: str, value: str) -> re.Pattern[str]:
    name = re.escape(measure)
    number = re.escape(value) + r"(?![\d.])"
    return re.compile(
        rf"\b{name}\b[^\n.;]{{0,60}}?(?<![\d.]){number}|(?<![\d.]){number}[^\n.;]{{0,40}}?\b{name}\b",
        re.IGNORECASE,
    )


def code_pattern(code: str) -> re.Pattern[str]:
    """A code as tables write it: alone, glued to its description ("81120IDH1"), an ICD-10
    code with or without its dot. Digits or a dot-digit must not continue it."""
    escaped = re.escape(code)
    if "." in code:
        head, tail = code.split(".", 1)
        escaped = rf"{re.escape(head)}\.?{re.escape(tail)}"
    return re.compile(rf"(?<![0-9A-Za-z]){escaped}(?![0-9]|\.[0-9A-Za-z])")


def find_code(text: str, code: str, *, count_removals: bool = False) -> str | None:
    """Context of the first place `text` lists `code` (a stated range that holds it counts);
    None when it does not. Lines recording its removal, and change-log entries recording its
    addition, do not count unless `count_removals`."""
    for match in code_pattern(code).finditer(text):
        if count_removals:
            return _snippet(text, match.start(), match.end())
        logged = _LOGGED_JUST_BEFORE.search(text, max(0, match.start() - 60), match.start())
        if not logged and not _REMOVAL_WORDS.search(_line(text, match.start())):
            return _snippet(text, match.start(), match.end())
    return _in_stated_range(text, code)


_RANGE = re.compile(
    r"(?<![0-9A-Za-z])(?P<low>[A-Z]?\d{4,5}[A-Z]?)\s*(?:-|–|through|thru|to)\s*"
    r"(?P<high>[A-Z]?\d{4,5}[A-Z]?)(?![0-9A-Za-z])"
)


def _in_stated_range(text: str, code: str) -> str | None:
    shape = re.fullmatch(r"([A-Z]?)(\d{4,5})([A-Z]?)", code)
    if shape is None:
        return None
    prefix, digits, suffix = shape.groups()
    for match in _RANGE.finditer(text):
        low = re.fullmatch(r"([A-Z]?)(\d+)([A-Z]?)", match.group("low"))
        high = re.fullmatch(r"([A-Z]?)(\d+)([A-Z]?)", match.group("high"))
        if low is None or high is None:
            continue
        same_shape = (low.group(1), low.group(3)) == (prefix, suffix) == (
            high.group(1),
            high.group(3),
        ) and len(low.group(2)) == len(digits) == len(high.group(2))
        first, last = int(low.group(2)), int(high.group(2))
        if same_shape and first <= int(digits) <= last and last - first <= 1000:
            return _snippet(text, match.start(), match.end())
    return None


def find_phrase(text: str, pattern: re.Pattern[str]) -> str | None:
    match = pattern.search(text)
    return _snippet(text, match.start(), match.end()) if match else None


def _line(text: str, offset: int, reach: int = 100) -> str:
    """The line around `offset`, at most `reach` characters either side (text captures can be
    one line for the whole document)."""
    start = max(text.rfind("\n", 0, offset) + 1, offset - reach)
    end = text.find("\n", offset)
    return text[start : min(end if end >= 0 else len(text), offset + reach)]


def _snippet(text: str, start: int, end: int) -> str:
    return " ".join(text[max(0, start - _SNIPPET) : end + _SNIPPET].split())


# --- extraction collapse ---------------------------------------------------------------------

COLLAPSE_MIN_CODES = 10  # below this an old code set is too small to judge
COLLAPSE_FOUND_SHARE = 0.5  # extraction found under half the old count …
COLLAPSE_STILL_LISTED = 0.8  # … while the new text still lists at least this share of them


def extraction_collapsed(
    old_text: str, new_text: str, old_criteria: Criteria, new_criteria: Criteria
) -> str | None:
    """Why the new version's extraction, not the policy, lost the codes; None when it did not.

    When the new criteria hold under half the old codes but the new text still lists most of
    the old codes, the parser or extractor failed on the new layout: the pipeline records an
    extraction failure against the run (keeping the version for re-extraction) instead of
    publishing mass removals or quarantining a real rewrite.
    """
    del old_text  # the old codes are the old criteria's; kept in the signature for symmetry
    old_codes = sorted({code.code for code in old_criteria.codes})
    new_codes = {code.code for code in new_criteria.codes}
    if len(old_codes) < COLLAPSE_MIN_CODES:
        return None
    if len(new_codes) >= COLLAPSE_FOUND_SHARE * len(old_codes):
        return None
    still = sum(1 for code in old_codes if find_code(new_text, code) is not None)
    if still < COLLAPSE_STILL_LISTED * len(old_codes):
        return None
    return (
        f"extraction collapsed: the new text still lists {still} of the {len(old_codes)} old "
        f"codes but extraction found {len(new_codes)} codes"
    )
