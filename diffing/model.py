"""Domain objects that travel between the pipeline stages: frozen, typed, keyword-only."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """How urgently a billing team must look at a change (rules in `diffing.severity`)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return {"low": 0, "medium": 1, "high": 2}[self.value]


class ChangeKind(StrEnum):
    """What kind of thing changed between two versions of a document."""

    DOCUMENT_ADDED = "document_added"
    DOCUMENT_RETIRED = "document_retired"
    STATUS_CHANGED = "status_changed"
    UPCOMING_VERSION = "upcoming_version"
    CODE_ADDED = "code_added"
    CODE_REMOVED = "code_removed"
    CODE_GROUP_CHANGED = "code_group_changed"
    DATE_CHANGED = "date_changed"
    TITLE_CHANGED = "title_changed"
    SECTION_CHANGED = "section_changed"


class CodeSystem(StrEnum):
    HCPCS = "hcpcs"  # CPT and HCPCS Level II share one table in CMS data
    ICD10 = "icd10"
    HCPCS_MODIFIER = "hcpcs_modifier"


class CoverageFlag(StrEnum):
    COVERED = "covered"
    NONCOVERED = "noncovered"


@dataclass(frozen=True, kw_only=True, slots=True)
class RawDocument:
    """Bytes fetched by a source, before any parsing."""

    source: str
    key: str  # the document's id at its source, e.g. "L33979", "A57520", "NCD 250.1"
    url: str
    content: bytes
    content_type: str
    fetched_at: dt.datetime
    source_version: str | None = None  # the source's own version id, when it has one
    etag: str | None = None
    title: str = ""
    doc_type: str = ""


@dataclass(frozen=True, kw_only=True, slots=True, order=True)
class CodeRef:
    """One code in one of a document's code tables."""

    system: CodeSystem
    flag: CoverageFlag
    code: str
    group: int | None = field(default=None, compare=False)
    description: str = field(default="", compare=False)

    @property
    def table(self) -> str:
        """The code table's name as reported in changes: hcpcs, icd10_covered, …"""
        if self.flag is CoverageFlag.NONCOVERED:
            return f"{self.system.value}_noncovered"
        if self.system is CodeSystem.ICD10:
            return "icd10_covered"
        return self.system.value


@dataclass(frozen=True, kw_only=True, slots=True)
class Section:
    """A named block of clean text (HTML and entity noise removed)."""

    name: str
    text: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Criteria:
    """What a document version says, as data: the thing that is diffed."""

    document_id: str
    doc_type: str
    title: str
    version: str | None
    status: str  # "active" or "retired"
    effective_date: dt.date | None = None
    retirement_date: dt.date | None = None
    notice_end_date: dt.date | None = None
    contractors: tuple[str, ...] = ()
    codes: frozenset[CodeRef] = frozenset()
    sections: tuple[Section, ...] = ()

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)


@dataclass(frozen=True, kw_only=True, slots=True)
class Change:
    """One typed difference between two versions, with its severity and evidence."""

    kind: ChangeKind
    severity: Severity
    field: str | None = None
    before: str | None = None
    after: str | None = None
    evidence: str | None = None
    effective_date: dt.date | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyDiff:
    """All changes from one version of a document to the next."""

    document_id: str
    old_version: str | None
    new_version: str | None
    changes: tuple[Change, ...]

    @property
    def is_empty(self) -> bool:
        return not self.changes
