"""Domain objects that travel between the pipeline stages: frozen, typed, keyword-only."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """How urgently a billing team must look at a change (rules in `diffing.severity`)."""

    NOISE = "noise"  # stored, never alerted: only stamps, layout, reflow or ids changed
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    # The two versions' texts contradict the change (diffing.verify): an extraction error, not a
    # policy change. Stored and shown apart, never alerted; `Change.claimed_severity` keeps what
    # it would have been.
    UNVERIFIED = "unverified"

    @property
    def rank(self) -> int:
        return {"noise": -1, "unverified": -1, "low": 0, "medium": 1, "high": 2}[self.value]


class ChangeKind(StrEnum):
    """What kind of thing changed between two versions of a document."""

    DOCUMENT_ADDED = "document_added"
    DOCUMENT_RETIRED = "document_retired"
    STATUS_CHANGED = "status_changed"
    UPCOMING_VERSION = "upcoming_version"
    CODE_ADDED = "code_added"
    CODE_REMOVED = "code_removed"
    CODE_GROUP_CHANGED = "code_group_changed"
    # The same code left one coverage list of a document and entered the other list of the same
    # code system (not covered -> covered, or covered -> not covered): one change, `field` the
    # code, `before`/`after` the tables ("hcpcs_noncovered" -> "hcpcs"). `code_group_changed`
    # stays the move between numbered groups of one table (CMS Article ICD-10 groups).
    CODE_COVERAGE_CHANGED = "code_coverage_changed"
    DATE_CHANGED = "date_changed"
    TITLE_CHANGED = "title_changed"
    SECTION_CHANGED = "section_changed"
    DOCUMENT_WITHDRAWN = "document_withdrawn"
    # A document reported withdrawn that a complete listing names again.
    DOCUMENT_REINSTATED = "document_reinstated"
    STEP_THERAPY_ADDED = "step_therapy_added"
    STEP_THERAPY_REMOVED = "step_therapy_removed"
    STEP_THERAPY_CHANGED = "step_therapy_changed"
    PRIOR_AUTH_ADDED = "prior_auth_added"
    PRIOR_AUTH_REMOVED = "prior_auth_removed"
    APPROVAL_PERIOD_CHANGED = "approval_period_changed"
    THRESHOLD_ADDED = "threshold_added"
    THRESHOLD_REMOVED = "threshold_removed"
    THRESHOLD_CHANGED = "threshold_changed"
    AGE_LIMIT_CHANGED = "age_limit_changed"
    SPECIALTY_CHANGED = "specialty_changed"
    DRUG_ADDED = "drug_added"
    DRUG_REMOVED = "drug_removed"
    NOISE_ONLY = "noise_only"
    # From the criteria tree (diffing.tree.diff): a criterion that is neither a step, a
    # threshold nor an age (a diagnosis, an exclusion, documentation, a response, a dose), or an
    # indication block, added, removed or changed, named by its indication and branch.
    CRITERION_ADDED = "criterion_added"
    CRITERION_REMOVED = "criterion_removed"
    CRITERION_CHANGED = "criterion_changed"
    # A MAC bulletin seen for the first time after the source's baseline (diffing.mentions).
    BULLETIN_PUBLISHED = "bulletin_published"
    # Written by the publisher (not the criteria diff): a PA checklist item added, removed or
    # changed, e.g. "Dupixent / Acme Health: item 2 now requires 12 weeks".
    CHECKLIST_CHANGED = "checklist_changed"
    # A row of a document's table (an Excel PDL sheet) added, removed or changed
    # (diffing.parse.xlsx.table_row_changes); `field` names the sheet.
    TABLE_ROW_ADDED = "table_row_added"
    TABLE_ROW_REMOVED = "table_row_removed"
    TABLE_ROW_CHANGED = "table_row_changed"


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
    # Source-specific facts: ("last_modified", …), ("payer", "Acme Health"), …
    source_meta: tuple[tuple[str, str], ...] = ()

    def meta(self, key: str) -> str | None:
        return next((value for name, value in self.source_meta if name == key), None)


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


@dataclass(frozen=True, kw_only=True, slots=True, order=True)
class CodePair:
    """An Article's ICD-10 covered group supports a CPT/HCPCS code (from the group paragraph:
    "... provide coverage for CPT codes: 11200, 11201 ..."). The ICD-10 codes of the group are
    the `CodeRef`s with that `group`; the pair is stored once per (group, code)."""

    icd10_group: int
    code: str  # CPT or HCPCS, upper case
    paragraph: str = field(default="", compare=False)  # the group paragraph, clean text


@dataclass(frozen=True, kw_only=True, slots=True)
class Section:
    """A named block of clean text (HTML and entity noise removed).

    `page_offsets` maps character offsets in `text` to PDF pages: ((0, 1), (812, 2)) means the
    text from offset 812 on is on page 2. Empty when the source has no pages (HTML, CMS).
    """

    name: str
    text: str
    page_offsets: tuple[tuple[int, int], ...] = field(default=(), compare=False)

    def page_at(self, offset: int) -> int | None:
        page = None
        for start, number in self.page_offsets:
            if start > offset:
                break
            page = number
        return page


@dataclass(frozen=True, kw_only=True, slots=True)
class Table:
    """A table found in a document: rows of clean cell text, the first row usually a header."""

    rows: tuple[tuple[str, ...], ...]
    page: int | None = None
    section: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyDocument:
    """A parsed payer document: clean sections and tables, noise removed (`diffing.parse`)."""

    title: str
    content_type: str  # "pdf", "html" or "text"
    sections: tuple[Section, ...]
    tables: tuple[Table, ...] = ()
    # Document-level facts the parser found in metadata or the header block:
    # ("policy_number", "CG-SURG-90"), ("effective_date", "2026-03-01"), ("last_review", …)
    meta: tuple[tuple[str, str], ...] = ()
    pages: int = 0
    # The first and last lines of each page as printed, furniture included: what a later parse
    # of the next version (or of a sibling document) compares its own page edges with
    # (`parse_document(…, related=…)`). Not part of the document's value.
    page_edges: tuple[tuple[str, ...], ...] = field(default=(), compare=False, repr=False)

    def meta_value(self, key: str) -> str | None:
        return next((value for name, value in self.meta if name == key), None)


@dataclass(frozen=True, kw_only=True, slots=True)
class Evidence:
    """Where an extracted value came from: the sentence, and its page and section."""

    sentence: str
    page: int | None = None
    section: str | None = None


# Extracted payer criteria. `evidence` never takes part in equality, so the diff compares
# values; each type's `key` says which two items are "the same criterion" across versions.


@dataclass(frozen=True, kw_only=True, slots=True)
class DrugMention:
    name: str  # canonical generic name, lower case: "dupilumab"
    drug_class: str | None = None  # "IL-4 receptor antagonist", "JAK inhibitor", …
    evidence: Evidence | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, ...]:
        return (self.name,)


@dataclass(frozen=True, kw_only=True, slots=True)
class StepTherapy:
    """A trial the patient must have had first: "topical corticosteroid for at least 8 weeks"."""

    prerequisite: str  # canonical: "topical corticosteroid", "methotrexate", "phototherapy", …
    drug: str | None = None  # the drug the policy governs, when known ("dupilumab")
    indication: str | None = None  # "atopic dermatitis", when known
    count_required: int = 1  # "two of the following" -> 2
    min_duration_days: int | None = None  # "at least 8 weeks" -> 56
    evidence: Evidence | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str | None, ...]:
        return (self.drug, self.indication, self.prerequisite)


@dataclass(frozen=True, kw_only=True, slots=True)
class PriorAuth:
    required: bool
    drug: str | None = None
    evidence: Evidence | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str | None, ...]:
        return (self.drug,)


@dataclass(frozen=True, kw_only=True, slots=True)
class ApprovalPeriod:
    phase: str  # "initial" or "reauthorization"
    days: int  # months are round(N * 30.4375) days: "6 months" -> 183, "1 year" -> 365
    drug: str | None = None
    indication: str | None = None
    evidence: Evidence | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str | None, ...]:
        return (self.drug, self.indication, self.phase)


@dataclass(frozen=True, kw_only=True, slots=True)
class Threshold:
    """A severity threshold: BSA >= 10 %, EASI >= 16, IGA >= 3, PASI >= 12, Hurley stage II …"""

    measure: str  # "BSA", "EASI", "IGA", "PASI", "DLQI", "Hurley stage", "lesion size"
    op: str  # ">=", ">", "<=", "<", "="
    value: float
    unit: str = ""  # "%", "mm", ""
    indication: str | None = None
    evidence: Evidence | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str | None, ...]:
        return (self.indication, self.measure, self.op[:1])


@dataclass(frozen=True, kw_only=True, slots=True)
class AgeLimit:
    op: str  # ">=" (minimum age) or "<=" (maximum age)
    years: int
    indication: str | None = None
    evidence: Evidence | None = field(default=None, compare=False)
    # The bound in the policy's own unit ("<= 6 months" under two years); None: `years` years.
    amount: int | None = field(default=None, compare=False)
    unit: str = field(default="years", compare=False)

    @property
    def shown(self) -> str:
        amount = self.years if self.amount is None else self.amount
        return f"{amount} {self.unit}"

    @property
    def key(self) -> tuple[str | None, ...]:
        return (self.indication, self.op)


@dataclass(frozen=True, kw_only=True, slots=True, order=True)
class TableRow:
    """One row of a list table (a PDL's drug row, a workbook sheet's row), diffed as a row."""

    table: str  # the sheet or section the table is in
    cells: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class RevisionEntry:
    date: dt.date | None
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
    code_pairs: frozenset[CodePair] = frozenset()  # CMS Articles with group paragraphs
    sections: tuple[Section, ...] = ()
    # Payer policies (empty for CMS documents):
    payer: str | None = None
    policy_number: str | None = None
    drugs: tuple[DrugMention, ...] = ()
    step_therapy: tuple[StepTherapy, ...] = ()
    prior_auth: tuple[PriorAuth, ...] = ()
    approval_periods: tuple[ApprovalPeriod, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    age_limits: tuple[AgeLimit, ...] = ()
    prescriber_specialties: tuple[str, ...] = ()  # sorted, lower case: ("dermatologist", …)
    revision_history: tuple[RevisionEntry, ...] = ()
    table_rows: tuple[TableRow, ...] = ()  # rows of list tables (PDLs), in document order
    # Indication blocks, branches and AND/OR groups (a `diffing.tree.CriteriaTree`; None for
    # CMS documents and for payer criteria stored before trees). Typed `object` so this module
    # need not import the tree package (an import loop); read it with `diffing.tree.tree_of`.
    criteria_tree: object | None = field(default=None, compare=False)

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
    # Set by `diffing.verify` on an UNVERIFIED change: the severity the diff gave it, and why the
    # texts contradict it with the evidence from each ("81458 is still listed in the new text …").
    claimed_severity: Severity | None = None
    contradiction: str | None = None


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
