"""Two versions' criteria to typed changes. Pure: criteria in, `PolicyDiff` out.

Only what a biller acts on is reported: code-set membership, dates, status, title and the
sentences of criteria text. Re-encoded HTML, whitespace and version bumps with identical
content produce nothing because they do not survive `diffing.text` normalisation.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Set as AbstractSet

from diffing.diff_payer import payer_changes
from diffing.model import Change, ChangeKind, CodeRef, Criteria, PolicyDiff, Section, Severity
from diffing.parse.sections import CONTEXT, section_roles
from diffing.rows import row_changes
from diffing.severity import (
    code_change_severity,
    coverage_change_severity,
    date_change_severity,
    text_change_severity,
)
from diffing.text import sentences

_DATE_FIELDS = ("effective_date", "retirement_date", "notice_end_date")
_MAX_SENTENCES_SHOWN = 5
# Sections that record the document's own history, references or navigation: their changes
# are reported through structured fields (effective date, revision history) or are not
# criteria at all, so they never produce a text change.
ADMINISTRATIVE_SECTIONS = frozenset(
    {
        "policy history/revision information",
        "policy history",
        "revision information",
        "review history",
        "revision history",
        "references",
        "instructions for use",
        "table of contents",
        "contents",
        "related policies",
        "related documents",
    }
)
# Header-block sentences: policy number, dates and stamps (structured elsewhere).
ADMINISTRATIVE_SENTENCE = re.compile(
    r"^(policy number|guideline #|effective date|publish(ed)? date|last review(ed)?|"
    r"next review|printed on|proprietary information|page \d+ of \d+)\b",
    re.IGNORECASE,
)


def _code_evidence(code: CodeRef) -> str:
    parts = [code.code]
    if code.description:
        parts.append(code.description)
    if code.group is not None:
        parts.append(f"(group {code.group})")
    return " ".join(parts)


def _coverage_evidence(before: CodeRef, after: CodeRef) -> str:
    """The code as the new version lists it (the line the change page finds), and as the old
    one did when that reads otherwise."""
    old, new = _code_evidence(before), _code_evidence(after)
    return new if old == new else f"{new} (before: {old})"


def _coverage_moves(
    removed: AbstractSet[tuple[str, str]],
    added: AbstractSet[tuple[str, str]],
    old_codes: dict[tuple[str, str], CodeRef],
    new_codes: dict[tuple[str, str], CodeRef],
) -> dict[tuple[str, str], tuple[str, str]]:
    """Removed (table, code) keys whose code entered the other coverage list of the same code
    system: {removed key: added key}."""
    entered = {(new_codes[k].system, new_codes[k].code): k for k in added}
    moves: dict[tuple[str, str], tuple[str, str]] = {}
    for key in removed:
        code = old_codes[key]
        target = entered.get((code.system, code.code))
        if target is not None and new_codes[target].flag is not code.flag:
            moves[key] = target
    return moves


def _code_changes(old: Criteria, new: Criteria, effective: dt.date | None) -> list[Change]:
    old_codes = {(c.table, c.code): c for c in old.codes}
    new_codes = {(c.table, c.code): c for c in new.codes}
    removed = old_codes.keys() - new_codes.keys()
    added = new_codes.keys() - old_codes.keys()
    # A code that left "not covered" and entered "covered" (or back) is one coverage change,
    # not a removal plus an addition: both texts list it, in different lists.
    moves = _coverage_moves(removed, added, old_codes, new_codes)
    changes: list[Change] = []
    for key in sorted(removed - moves.keys()):
        code = old_codes[key]
        changes.append(
            Change(
                kind=ChangeKind.CODE_REMOVED,
                field=code.table,
                before=code.code,
                after=None,
                severity=code_change_severity(ChangeKind.CODE_REMOVED, code),
                evidence=_code_evidence(code),
                effective_date=effective,
            )
        )
    for key in sorted(added - set(moves.values())):
        code = new_codes[key]
        changes.append(
            Change(
                kind=ChangeKind.CODE_ADDED,
                field=code.table,
                before=None,
                after=code.code,
                severity=code_change_severity(ChangeKind.CODE_ADDED, code),
                evidence=_code_evidence(code),
                effective_date=effective,
            )
        )
    for key in sorted(moves):
        before, after = old_codes[key], new_codes[moves[key]]
        changes.append(
            Change(
                kind=ChangeKind.CODE_COVERAGE_CHANGED,
                field=after.code,
                before=before.table,
                after=after.table,
                severity=coverage_change_severity(before, after),
                evidence=_coverage_evidence(before, after),
                effective_date=effective,
            )
        )
    for key in sorted(old_codes.keys() & new_codes.keys()):
        before, after = old_codes[key], new_codes[key]
        if before.group != after.group:
            changes.append(
                Change(
                    kind=ChangeKind.CODE_GROUP_CHANGED,
                    field=after.table,
                    before=f"{before.code} group {before.group}",
                    after=f"{after.code} group {after.group}",
                    severity=Severity.MEDIUM,
                    evidence=_code_evidence(after),
                    effective_date=effective,
                )
            )
    return changes


def _take(pool: Counter[str], sentence: str) -> bool:
    """Remove one `sentence` from `pool`; False when there was none left to match."""
    if pool[sentence] > 0:
        pool[sentence] -= 1
        return True
    return False


def _criteria_sentences(text: str) -> list[str]:
    return [s for s in sentences(text) if not ADMINISTRATIVE_SENTENCE.match(s)]


def _explained(sentence: str, explained: AbstractSet[str]) -> bool:
    """Whether a structured change already reports this sentence (same or overlapping)."""
    return any(sentence in e or e in sentence for e in explained)


_DATE = re.compile(
    r"\b(?:\d{1,2}/\d{1,2}/\d{2,4}|\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2}"
    r"|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?\s+(?:\d{1,2},\s*)?\d{4})\b"
)
_DATED_ENTRY = re.compile(rf"^\W*(?:{_DATE.pattern})")


def _masked(sentences: list[str]) -> Counter[str]:
    return Counter(_DATE.sub("<date>", s) for s in sentences)


def _dates(sentences: list[str]) -> list[str]:
    return [m.group(0) for s in sentences for m in _DATE.finditer(s)]


def _history_sentences(text: str) -> set[str]:
    """Sentences that `text` writes only on dated-entry lines: a revision-history entry
    ("<date> - The purpose of this change request is … No policy is changed. (TN 123)") is
    history however many sentences it runs to, and a sentence it shares with criteria lines is
    not."""
    dated: set[str] = set()
    undated: set[str] = set()
    for line in text.split("\n"):
        (dated if _DATED_ENTRY.match(line) else undated).update(sentences(line))
    return dated - undated


def _only_history(
    removed: list[str], added: list[str], before: Section | None, after: Section | None
) -> bool:
    """Whether every changed sentence is a dated entry, or part of one (a revision-history or
    transmittal line, a listing's "9/3/2025 <policy title>"): it records a change, it makes
    none."""
    if all(_DATED_ENTRY.match(x) for x in removed + added):
        return True
    old = _history_sentences(before.text) if before and removed else set()
    new = _history_sentences(after.text) if after and added else set()
    return all(x in old for x in removed) and all(x in new for x in added)


def _section_changes(
    old: Criteria,
    new: Criteria,
    effective: dt.date | None,
    explained: AbstractSet[str] = frozenset(),
) -> list[Change]:
    changes: list[Change] = []
    names = [s.name for s in old.sections]
    names += [s.name for s in new.sections if s.name not in names]
    # Background, evidence, guidelines …: still diffed, but a change there is low severity.
    roles = dict(zip(names, section_roles(names), strict=True)) if new.payer is not None else {}
    for name in names:
        if name in ADMINISTRATIVE_SECTIONS:
            continue
        before_section, after_section = old.section(name), new.section(name)
        before = _criteria_sentences(before_section.text) if before_section else []
        after = _criteria_sentences(after_section.text) if after_section else []
        if before == after:
            continue
        # Sentences gone and sentences new, as multisets: moving a sentence is not a change.
        after_left = Counter(after)
        before_left = Counter(before)
        removed = [x for x in before if not _take(after_left, x)]
        added = [x for x in after if not _take(before_left, x)]
        if explained:
            removed = [x for x in removed if not _explained(x, explained)]
            added = [x for x in added if not _explained(x, explained)]
        if not removed and not added:
            continue
        if _masked(removed) == _masked(added):
            # Only dates differ ("Effective 01/01/2025" → "Effective 01/01/2026"): a date change
            # of that section, not a change of its text.
            changes.append(
                Change(
                    kind=ChangeKind.DATE_CHANGED,
                    field=name,
                    before=" ".join(_dates(removed)) or None,
                    after=" ".join(_dates(added)) or None,
                    severity=Severity.LOW,
                    evidence=(added or removed)[0],
                    effective_date=effective,
                )
            )
            continue
        changes.append(
            Change(
                kind=ChangeKind.SECTION_CHANGED,
                field=name,
                before=" ".join(removed[:_MAX_SENTENCES_SHOWN]) or None,
                after=" ".join(added[:_MAX_SENTENCES_SHOWN]) or None,
                severity=(
                    Severity.NOISE
                    if _only_history(removed, added, before_section, after_section)
                    else Severity.LOW
                    if roles.get(name) == CONTEXT
                    else text_change_severity(removed, added)
                ),
                evidence=(added or removed)[0],
                effective_date=effective,
            )
        )
    return changes


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def diff_criteria(old: Criteria | None, new: Criteria, *, today: dt.date) -> PolicyDiff:
    """Changes from `old` to `new`; `today` decides whether `new` is an upcoming version."""
    effective = new.effective_date
    if old is None:
        added = Change(
            kind=ChangeKind.DOCUMENT_ADDED,
            severity=Severity.MEDIUM,
            after=new.version,
            evidence=new.title,
            effective_date=effective,
        )
        return PolicyDiff(
            document_id=new.document_id, old_version=None, new_version=new.version, changes=(added,)
        )

    changes: list[Change] = []
    # An upcoming *version* (CMS: a future-effective version beside the current one). Sources
    # without version ids report the new effective date as a date change instead.
    upcoming = (
        effective is not None
        and effective > today
        and effective != old.effective_date
        and new.version is not None
        and new.version != old.version
    )
    if upcoming:
        changes.append(
            Change(
                kind=ChangeKind.UPCOMING_VERSION,
                field="version",
                before=old.version,
                after=new.version,
                severity=Severity.MEDIUM,
                evidence=f"version {new.version} takes effect on {_iso(effective)}"
                + (
                    f" (notice period ends {_iso(new.notice_end_date)})"
                    if new.notice_end_date
                    else ""
                ),
                effective_date=effective,
            )
        )
    retiring = old.status != "retired" and new.status == "retired"
    if old.status != new.status:
        retired = new.status == "retired"
        changes.append(
            Change(
                kind=ChangeKind.DOCUMENT_RETIRED if retired else ChangeKind.STATUS_CHANGED,
                field="status",
                before=old.status,
                after=new.status,
                severity=Severity.HIGH if retired else Severity.MEDIUM,
                evidence=(
                    f"retired as of {_iso(new.retirement_date)}"
                    if retired and new.retirement_date
                    else None
                ),
                effective_date=new.retirement_date if retired else effective,
            )
        )
    for field in _DATE_FIELDS:
        if upcoming and field in ("effective_date", "notice_end_date"):
            continue  # the upcoming-version change already carries these dates
        if field == "retirement_date" and retiring and old.retirement_date is None:
            continue  # the retirement change already says so, dated
        before_date, after_date = getattr(old, field), getattr(new, field)
        if before_date != after_date:
            changes.append(
                Change(
                    kind=ChangeKind.DATE_CHANGED,
                    field=field,
                    before=_iso(before_date),
                    after=_iso(after_date),
                    severity=date_change_severity(field, before_date, after_date),
                    effective_date=after_date if field != "notice_end_date" else effective,
                )
            )
    if old.title != new.title:
        changes.append(
            Change(
                kind=ChangeKind.TITLE_CHANGED,
                field="title",
                before=old.title,
                after=new.title,
                severity=Severity.LOW,
                effective_date=effective,
            )
        )
    changes.extend(_code_changes(old, new, effective))
    changes.extend(row_changes(old.table_rows, new.table_rows, effective_date=effective))
    structured, explained = payer_changes(old, new, effective)
    changes.extend(structured)
    changes.extend(_section_changes(old, new, effective, explained))
    return PolicyDiff(
        document_id=new.document_id,
        old_version=old.version,
        new_version=new.version,
        changes=tuple(changes),
    )
