"""A change as people and other programs read it (`ChangeRecord`), worded from its stored row.

No SQLAlchemy here: the ORM read (`Store.changes`) and the plain-SQL read of the command line
(`monitor.store.plain_reads`) build the same records with these functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Protocol

from monitor.wording import (
    DEFAULT_NOTICE_DAYS,
    change_effective_date,
    not_stated,
    notice_flags,
    notice_text,
    value_as_written,
)

CHECKLIST_CHANGED = "checklist_changed"


@dataclass(frozen=True, kw_only=True)
class ChangeRecord:
    """A change as the CLI and the API show it (the DESIGN.md JSON fields and a few more)."""

    id: int
    source: str
    document_id: str
    title: str
    kind: str
    field: str | None
    before: str | None
    after: str | None
    severity: str
    effective_date: dt.date | None
    detected_at: dt.datetime
    url: str
    version: str
    previous_version: str | None
    evidence: str | None
    baseline: bool
    # An `unverified` claim (the two versions' texts contradict it): the severity it claimed,
    # and why the texts contradict it with each text's evidence. None for every other change.
    claimed_severity: str | None = None
    contradiction: str | None = None
    # Read-time wording (monitor.wording) below is kept out of the dataclass fields: the API's
    # answer model repeats exactly the fields, and the words are not stored data.

    def _read(self, name: str) -> object:
        return self.__dict__.get("_wording", {}).get(name)

    @property
    def stated_effective_date(self) -> dt.date | None:
        """The date stored with the change (the document's), even when it is not the change's."""
        value = self._read("stated")
        return value if isinstance(value, dt.date) else self.effective_date

    @property
    def same_fact_as(self) -> int | None:
        """For a checklist change restating a criterion change of the same version, that
        change's id (the record then carries its severity)."""
        value = self._read("same_fact_as")
        return value if isinstance(value, int) else None

    @property
    def stored_severity(self) -> str:
        """The severity stored at publish time (metrics count it); `severity` is the fact's."""
        value = self._read("stored_severity")
        return value if isinstance(value, str) else self.severity

    @property
    def before_text(self) -> str | None:
        """`before` with durations as the policy wrote them ("8 weeks" for 56)."""
        return value_as_written(self.kind, self.field, self.before, self.evidence)

    @property
    def after_text(self) -> str | None:
        return value_as_written(self.kind, self.field, self.after, self.evidence)

    @property
    def first_seen(self) -> dt.date:
        return self.detected_at.date()

    @property
    def effective_note(self) -> str:
        """ "" when the change has its effective date, else what to say instead."""
        return "" if self.effective_date else not_stated(self.first_seen)

    @property
    def effective_text(self) -> str:
        """ "2026-03-01", or "effective date not stated; first seen 2026-03-02"."""
        return self.effective_date.isoformat() if self.effective_date else self.effective_note

    @property
    def notice_days(self) -> int:
        """The notice its source should give (`notice_days` of the source's config)."""
        value = self._read("notice_days")
        return value if isinstance(value, int) else DEFAULT_NOTICE_DAYS

    @property
    def flags(self) -> tuple[str, ...]:
        """("short_notice",) or ("retroactive",) when the change gave less notice than its
        source's `notice_days` from when it was first seen; () otherwise, with no date, or
        for a baseline change (first seen when the monitor started, not when it was issued)."""
        if self.baseline:
            return ()
        return notice_flags(self.effective_date, self.first_seen, self.notice_days)

    @property
    def flag_notes(self) -> tuple[str, ...]:
        """The flags as people read them ("short notice: effective 13 days after first seen")."""
        if self.effective_date is None:
            return ()
        return tuple(notice_text(f, self.effective_date, self.first_seen) for f in self.flags)


class StoredChange(Protocol):
    """What the wording reads of a stored change: an ORM row or a plain one."""

    @property
    def id(self) -> int: ...
    @property
    def version_id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def field(self) -> str | None: ...
    @property
    def before(self) -> str | None: ...
    @property
    def after(self) -> str | None: ...
    @property
    def severity(self) -> str: ...
    @property
    def evidence(self) -> str | None: ...


@dataclass(frozen=True, kw_only=True)
class VersionLabel:
    """What a record says of a document version: its title, URL, label and effective date."""

    title: str
    url: str
    source_version: str | None
    version_number: int | None
    effective_date: dt.date | None

    @property
    def label(self) -> str:
        return self.source_version or str(self.version_number or "")


def as_utc(moment: dt.datetime) -> dt.datetime:
    """`moment` as an aware UTC datetime; a naive one is UTC already (SQLite stores them so)."""
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def change_record(
    change: StoredChange,
    *,
    source: str,
    document_id: str,
    version: VersionLabel,
    previous: VersionLabel | None,
    stated_effective_date: dt.date | None,
    detected_at: dt.datetime,
    baseline: bool,
    claimed_severity: str | None,
    contradiction: str | None,
    fact: tuple[int, str] | None,
    notice_days: int = DEFAULT_NOTICE_DAYS,
) -> ChangeRecord:
    """The record of one stored change, worded: `fact` is the criterion change it restates
    (`same_facts`), whose severity it then carries."""
    detected = as_utc(detected_at)
    effective = change_effective_date(
        stated_effective_date,
        previous.effective_date if previous is not None else None,
        has_previous=previous is not None,
        detected=detected.date(),
    )
    record = ChangeRecord(
        id=change.id,
        source=source,
        document_id=document_id,
        title=version.title,
        kind=change.kind,
        field=change.field,
        before=change.before,
        after=change.after,
        severity=fact[1] if fact else change.severity,
        effective_date=effective,
        detected_at=detected,
        url=version.url,
        version=version.label,
        previous_version=previous.label if previous is not None else None,
        evidence=change.evidence,
        baseline=baseline,
        claimed_severity=claimed_severity,
        contradiction=contradiction,
    )
    wording = {
        "stated": stated_effective_date,
        "same_fact_as": fact[0] if fact else None,
        "stored_severity": change.severity,
        "notice_days": notice_days,
    }
    object.__setattr__(record, "_wording", wording)  # frozen: set once, here
    return record


def _tokens(text: str | None) -> list[str]:
    return [t.strip(",;:()[]\"'").lower() for t in (text or "").split()]


def _changed_words(before: str | None, after: str | None) -> tuple[set[str], set[str]]:
    """The words `after` dropped from `before`, and the words it added."""
    old, new = _tokens(before), _tokens(after)
    removed: set[str] = set()
    added: set[str] = set()
    for op, i1, i2, j1, j2 in SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if op in ("delete", "replace"):
            removed.update(old[i1:i2])
        if op in ("insert", "replace"):
            added.update(new[j1:j2])
    return removed - {""}, added - {""}


def same_facts(
    changes: Sequence[StoredChange],
    siblings_of: Callable[[set[int]], Iterable[StoredChange]],
) -> dict[int, tuple[int, str]]:
    """For each checklist change of `changes` that restates a criterion change of the same
    document version (the words it drops are the criterion's before, the words it adds its
    after: "8 weeks" -> "12 weeks" against min_duration_days 56 -> 84), that change's id and
    severity. `siblings_of(version ids)` reads the changes of those versions that are not
    checklist changes, in id order; it is called only when there is a checklist change."""
    checklist = [c for c in changes if c.kind == CHECKLIST_CHANGED and c.before and c.after]
    if not checklist:
        return {}
    siblings: dict[int, list[StoredChange]] = {}
    for row in siblings_of({c.version_id for c in checklist}):
        siblings.setdefault(row.version_id, []).append(row)
    out: dict[int, tuple[int, str]] = {}
    for change in checklist:
        removed, added = _changed_words(change.before, change.after)
        if not removed and not added:
            continue
        for sibling in siblings.get(change.version_id, ()):
            said_before = {
                *_tokens(sibling.before),
                *_tokens(value_as_written(sibling.kind, sibling.field, sibling.before, None)),
                *_tokens(
                    value_as_written(sibling.kind, sibling.field, sibling.before, sibling.evidence)
                ),
            }
            said_after = {
                *_tokens(sibling.after),
                *_tokens(value_as_written(sibling.kind, sibling.field, sibling.after, None)),
                *_tokens(
                    value_as_written(sibling.kind, sibling.field, sibling.after, sibling.evidence)
                ),
            }
            if removed <= said_before and added <= said_after:
                out[change.id] = (sibling.id, sibling.severity)
                break
    return out
