"""Walk a `PolicyDocument` and assemble its `Criteria`.

Sections are read line by line. Headings ("Atopic Dermatitis", "Initial Authorization",
"Dupixent (dupilumab)") set the indication, phase and drug the following sentences inherit; a
sentence ending "… ONE of the following:" opens a lead its list items inherit. Code sections and
code tables give codes, a history section or table the revision history; background, evidence
and reference sections are not criteria and are skipped.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from diffing.extract.codes import CodeRow, document_codes, is_code_table
from diffing.extract.dates import (
    effective_date_in,
    is_history_table,
    parse_date,
    policy_number_in,
    revisions_from_lines,
    revisions_from_table,
)
from diffing.extract.drugs import remembered_drug_names
from diffing.extract.sentences import (
    SentenceContext,
    SentenceFacts,
    extract_sentence,
    named_phase,
    sentence_drugs,
)
from diffing.extract.steps import ALL_OF, StepLead
from diffing.extract.vocabulary import DRUGS, INDICATIONS, find_terms, word_set
from diffing.model import (
    AgeLimit,
    ApprovalPeriod,
    CodeRef,
    CodeSystem,
    CoverageFlag,
    Criteria,
    DrugMention,
    Evidence,
    PolicyDocument,
    PriorAuth,
    RevisionEntry,
    Section,
    StepTherapy,
    Table,
    Threshold,
)
from diffing.parse.sections import (
    CODES,
    CONTEXT,
    CRITERIA,
    HISTORY,
    section_role,
    section_roles,
)
from diffing.rows import is_link_cell, is_list_table, table_rows
from diffing.text import sentences

DOC_TYPE = "payer_policy"

_MARKER = re.compile(
    r"^\s*(?:\(?(?P<number>\d{1,2})[.)]|\(?(?P<roman>[ivx]{2,5}|[IVX]{2,5})[.)]"
    r"|\(?(?P<letter>[A-Za-z])[.)]|(?P<bullet>[•·▪◦●○■□*\-–]))\s+"
)
_FRAGMENT_END = re.compile(
    r"(?:\b(?:e\.\s?g|i\.\s?e|etc|vs|approx|Dr|No|St|Fig|U\.S|al)\.|^\(?(?:[A-Za-z]|\d{1,2}"
    r"|[ivxIVX]{1,5})[.)])$"
)
_HEADING_WORDS = word_set(
    """
    criteria for the treatment of moderate severe moderate-to-severe to and chronic adult adults
    pediatric patients indication indications approval authorization authorisation initial
    coverage requirements request requests therapy continuation reauthorization
    re-authorization continued renewal in with a an medical necessity policy uses use part
    section drug drugs agents plaque disease or injection injections subcutaneous intravenous
    oral topical cream ointment tablets products biosimilars
    """
)
_CRITERION_END = re.compile(r"[.;]\s*$|[;,]\s*(?:and|or)\s*$", re.IGNORECASE)
_MAX_LIST_ITEM_WORDS = 18
_EVIDENCE_CHARS = 240
# Where a sentence ends in text whose line breaks are spaces; a table cell ends one too.
_SENTENCE_END = re.compile(r"[.!?]\s+(?=[A-Z0-9(\[])|\s\|\s")
_SENTENCE_REACH = 300


def extract_document(
    document: PolicyDocument,
    *,
    document_id: str,
    payer: str | None,
    version: str | None,
) -> Criteria:
    walker = _Walker(primary_drug=_primary_drug(document))
    walker.drugs.extend(sentence_drugs(document.title, SentenceContext()))
    names = [s.name for s in document.sections]
    kinds = dict(zip(names, (_KIND_OF_ROLE[r] for r in section_roles(names)), strict=True))
    for section in document.sections:
        walker.read_section(section, kinds[section.name])
    for table in document.tables:
        walker.read_table(table, kinds.get(table.section or "", _section_kind(table.section or "")))
    walker.drugs.extend(_named_drugs(document))
    return walker.criteria(document, document_id=document_id, payer=payer, version=version)


def _named_drugs(document: PolicyDocument) -> list[DrugMention]:
    """Every drug the document names by a USAN stem, a "Brand (generic)" pair or the dictionary
    (`drug_names`), anywhere: title, sections and tables (link targets excepted: a PA form's
    file name is no mention). Not the criteria sections only: which
    section a paragraph falls in, and whether a code list is a table, differs between a PDF and
    a text capture of the same policy, and a drug claim is checked against the whole text
    (`diffing.verify.verify_drug_claim`), so the set read must be the whole text's."""
    # Line breaks read as spaces: a PDF and a text capture break lines differently.
    blocks: list[tuple[str, Section | None, str | None, int | None]] = [
        (document.title, None, None, None)
    ]
    blocks.extend((s.text.replace("\n", " "), s, s.name, None) for s in document.sections)
    blocks.extend(
        (
            " | ".join(cell for cell in row if not is_link_cell(cell)),
            None,
            table.section,
            table.page,
        )
        for table in document.tables
        for row in table.rows
    )
    out: list[DrugMention] = []
    for text, paged, where, page in blocks:
        for found in remembered_drug_names(text):
            at = _first_mention(text, found.name)
            evidence = Evidence(
                sentence=_sentence_around(text, at)[:_EVIDENCE_CHARS].strip(),
                page=paged.page_at(at) if paged is not None else page,
                section=where,
            )
            out.append(DrugMention(name=found.name, drug_class=found.drug_class, evidence=evidence))
    return out


def _first_mention(text: str, name: str) -> int:
    """Offset of the first mention of `name` or of a dictionary brand of it (0 if neither)."""
    # The first case-insensitive match is the earliest of them all (every one was listed).
    literal = re.search(re.escape(name), text, re.IGNORECASE)
    mentions = [] if literal is None else [literal.start()]
    mentions += [m.start for m in find_terms(text, DRUGS) if m.canonical == name]
    return min(mentions, default=0)


def _sentence_around(text: str, at: int) -> str:
    low, high = max(0, at - _SENTENCE_REACH), min(len(text), at + _SENTENCE_REACH)
    start = low
    for match in _SENTENCE_END.finditer(text, low, at):
        start = match.end()
    end = _SENTENCE_END.search(text, at, high)
    return text[start : end.start() + 1 if end else high]


def _primary_drug(document: PolicyDocument) -> str | None:
    """The drug the title names, else the first one the criteria sections name."""
    texts = [document.title] + [
        s.text for s in document.sections if _section_kind(s.name) == "criteria"
    ]
    for text in texts:
        found = find_terms(text, DRUGS)
        if found:
            return found[0].canonical
    return None


# Section roles (diffing.parse.sections) as the walker reads them: context sections (background,
# evidence, guidelines, references …) give no criteria; they are still diffed as text.
_KIND_OF_ROLE = {CRITERIA: "criteria", CONTEXT: "skipped", HISTORY: "history", CODES: "codes"}


def _section_kind(name: str) -> str:
    return _KIND_OF_ROLE[section_role(name)]


def _lines(text: str) -> Iterator[tuple[int, str]]:
    offset = 0
    for line in text.split("\n"):
        yield offset, line
        offset += len(line) + 1


def _sentences_at(line: str) -> list[tuple[str, int]]:
    """`diffing.text.sentences` of a line with their offsets, abbreviations and list markers
    ("e.g.", "a.") joined back to the sentence they belong to."""
    out: list[tuple[str, int]] = []
    cursor = 0
    for piece in sentences(line):
        at = line.find(piece, cursor)
        at = cursor if at < 0 else at
        cursor = at + len(piece)
        if out and _FRAGMENT_END.search(out[-1][0]):
            _previous, previous_at = out.pop()
            out.append((line[previous_at:cursor], previous_at))
        else:
            out.append((piece, at))
    return out


def _marker_kind(line: str) -> tuple[str | None, str]:
    match = _MARKER.match(line)
    if match is None:
        return None, line.strip()
    kind = next(name for name, value in match.groupdict().items() if value)
    return kind, line[match.end() :].strip()


@dataclass(frozen=True, kw_only=True, slots=True)
class _Heading:
    drug: str | None
    indications: tuple[str, ...]
    phase: str | None


def _heading(body: str) -> _Heading | None:
    """What a heading line names, or None when the line is not a heading."""
    text = body.strip().rstrip(":").strip()
    if not text or len(text) > 90 or _CRITERION_END.search(text):
        return None
    drugs = find_terms(text, DRUGS)
    indications = find_terms(text, INDICATIONS)
    phase = named_phase(text)
    if not (drugs or indications or phase):
        return None
    rest = text
    for match in sorted(drugs + indications, key=lambda m: -m.start):
        rest = rest[: match.start] + " " + rest[match.end :]
    rest = re.sub(r"\([^)]*\)", " ", rest)
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z'-]*", rest.lower()) if w not in _HEADING_WORDS]
    if words:  # "Diagnosis of atopic dermatitis" is a criterion, "Atopic Dermatitis" a heading
        return None
    drug_names = {m.canonical for m in drugs}
    return _Heading(
        drug=drugs[0].canonical if len(drug_names) == 1 else None,
        indications=tuple(dict.fromkeys(m.canonical for m in indications)),
        phase=phase,
    )


def heading_indications(text: str) -> tuple[str, ...]:
    """The indications a heading line names ("Atopic Dermatitis", "A. Moderate-to-severe
    asthma"), empty when the line is not such a heading."""
    _kind, body = _marker_kind(text)
    heading = _heading(body)
    return heading.indications if heading is not None else ()


def _merged_codes(listed: Sequence[CodeRow], in_sentences: Sequence[CodeRef]) -> frozenset[CodeRef]:
    """Every code the document lists (its tables and code lines), plus codes named only in
    criteria prose; a sentence that says a listed code is not covered decides its flag."""
    refs = {row.ref for row in listed}
    flags: dict[tuple[CodeSystem, str], set[CoverageFlag]] = {}
    for ref in refs:
        flags.setdefault((ref.system, ref.code), set()).add(ref.flag)
    for ref in in_sentences:
        known = flags.get((ref.system, ref.code))
        if known is None:
            refs.add(ref)
        elif ref.flag is CoverageFlag.NONCOVERED and known == {CoverageFlag.COVERED}:
            refs = {r for r in refs if (r.system, r.code) != (ref.system, ref.code)} | {ref}
    return frozenset(refs)


@dataclass(kw_only=True)
class _Walker:
    """The context while reading, and what has been found so far (private, mutable)."""

    primary_drug: str | None
    drug: str | None = None
    indication: str | None = None
    phase: str | None = None
    lead: StepLead | None = None
    lead_kind: str | None = None
    lead_steps: list[int] = field(default_factory=list)
    drugs: list[DrugMention] = field(default_factory=list)
    steps: list[StepTherapy] = field(default_factory=list)
    prior_auth: list[PriorAuth] = field(default_factory=list)
    approvals: list[ApprovalPeriod] = field(default_factory=list)
    thresholds: list[Threshold] = field(default_factory=list)
    ages: list[AgeLimit] = field(default_factory=list)
    specialties: set[str] = field(default_factory=set)
    revisions: list[RevisionEntry] = field(default_factory=list)
    sentence_codes: list[CodeRef] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.drug = self.primary_drug

    # --- context ---------------------------------------------------------------------------

    def _apply_heading(self, heading: _Heading, *, section: bool = False) -> None:
        if heading.drug is not None and not heading.indications:
            self.drug = heading.drug
            self.indication = None
            self.phase = heading.phase
        elif heading.indications:
            indication = heading.indications[0] if len(heading.indications) == 1 else None
            if heading.drug is not None:
                self.drug = heading.drug
            if indication != self.indication or heading.phase is not None:
                self.phase = heading.phase  # a new indication block starts over
            self.indication = indication
        elif heading.phase is not None:
            self.phase = heading.phase
        elif section:
            self.indication = None
            self.phase = None

    def _close_lead(self) -> None:
        if self.lead is not None and self.lead.count_required == ALL_OF and self.lead_steps:
            count = len({self.steps[i].prerequisite for i in self.lead_steps})
            for i in self.lead_steps:
                self.steps[i] = dataclasses.replace(self.steps[i], count_required=count)
        self.lead = None
        self.lead_kind = None
        self.lead_steps = []

    def _lead_continues(self, kind: str | None, body: str) -> bool:
        if self.lead is None:
            return False
        if kind is None:
            return len(body.split()) <= _MAX_LIST_ITEM_WORDS
        return kind != self.lead_kind

    # --- reading ---------------------------------------------------------------------------

    def read_section(self, section: Section, kind: str) -> None:
        self._close_lead()
        if kind == "history":
            self.revisions.extend(revisions_from_lines(section.text.split("\n")))
            return
        if kind == "codes":
            return  # codes come from `document_codes`, wherever the document lists them
        if kind == "skipped":
            return
        heading = _heading(section.name) or _Heading(drug=None, indications=(), phase=None)
        self._apply_heading(heading, section=True)
        for line_start, line in _lines(section.text):
            self._read_line(section, line_start, line)
        self._close_lead()

    def _read_line(self, section: Section, line_start: int, line: str) -> None:
        kind, body = _marker_kind(line)
        if not body:
            return
        heading = _heading(body)
        if heading is not None:
            self._close_lead()
            self._apply_heading(heading)
            where = SentenceContext(section=section.name, page=section.page_at(line_start))
            self.drugs.extend(sentence_drugs(body, where))
            return
        if not self._lead_continues(kind, body):
            self._close_lead()
        for sentence, offset in _sentences_at(line):
            context = SentenceContext(
                drug=self.drug,
                indication=self.indication,
                phase=self.phase,
                lead=self.lead,
                section=section.name,
                page=section.page_at(line_start + offset),
            )
            facts = extract_sentence(sentence, context)
            self._add(facts)
            if facts.lead is not None:
                self._close_lead()
                self.lead = facts.lead
                self.lead_kind = kind
            if sentence.rstrip().endswith(":"):
                if len(facts.indications) == 1:
                    self.indication = facts.indications[0]
                if facts.phase is not None:
                    self.phase = facts.phase

    def read_table(self, table: Table, kind: str) -> None:
        if is_history_table(table):
            self.revisions.extend(revisions_from_table(table))
        elif is_code_table(table):
            return
        elif kind == "criteria":
            for row in table.rows:
                for cell in row:
                    for sentence in sentences(cell):
                        context = SentenceContext(
                            drug=self.drug, section=table.section, page=table.page
                        )
                        self._add(extract_sentence(sentence, context))

    def _add(self, facts: SentenceFacts) -> None:
        self.drugs.extend(facts.drugs)
        self.sentence_codes.extend(facts.codes)
        if self.lead is not None and self.lead.count_required == ALL_OF:
            first = len(self.steps)
            self.lead_steps.extend(range(first, first + len(facts.step_therapy)))
        self.steps.extend(facts.step_therapy)
        self.prior_auth.extend(facts.prior_auth)
        self.approvals.extend(facts.approval_periods)
        self.thresholds.extend(facts.thresholds)
        self.ages.extend(facts.age_limits)
        self.specialties.update(facts.prescriber_specialties)

    # --- result ----------------------------------------------------------------------------

    def criteria(
        self,
        document: PolicyDocument,
        *,
        document_id: str,
        payer: str | None,
        version: str | None,
    ) -> Criteria:
        self._close_lead()
        header = "\n".join([document.title] + [s.text for s in document.sections])
        effective = parse_date(document.meta_value("effective_date")) or effective_date_in(header)
        policy_number = document.meta_value("policy_number") or policy_number_in(header)
        return Criteria(
            document_id=document_id,
            doc_type=DOC_TYPE,
            title=document.title,
            version=version,
            status="active",
            effective_date=effective,
            # Every code the document lists, wherever its tables are; sentence-level codes
            # are a subset read with less context.
            codes=_merged_codes(document_codes(document), self.sentence_codes),
            sections=document.sections,
            payer=payer,
            policy_number=policy_number,
            drugs=_first_per_key(self.drugs),
            step_therapy=_merged_steps(self.steps),
            prior_auth=_first_per_key(self.prior_auth),
            approval_periods=_first_per_key(self.approvals),
            thresholds=_first_per_key(self.thresholds),
            age_limits=_first_per_key(self.ages),
            prescriber_specialties=tuple(sorted(self.specialties)),
            revision_history=tuple(dict.fromkeys(self.revisions)),
            table_rows=table_rows(
                t
                for t in document.tables
                if document.content_type == "xlsx" or (is_list_table(t) and not is_code_table(t))
            ),
        )


_Keyed = TypeVar("_Keyed", DrugMention, PriorAuth, ApprovalPeriod, Threshold, AgeLimit)


def _first_per_key(items: Iterable[_Keyed]) -> tuple[_Keyed, ...]:
    seen: dict[object, _Keyed] = {}
    for item in items:
        seen.setdefault(item.key, item)
    return tuple(seen.values())


def _merged_steps(steps: Iterable[StepTherapy]) -> tuple[StepTherapy, ...]:
    """One step per (drug, indication, prerequisite): "tried at least one TCS" and "the TCS was
    applied for at least 28 days" are one requirement."""
    merged: dict[object, StepTherapy] = {}
    for step in steps:
        known = merged.get(step.key)
        if known is None:
            merged[step.key] = step
            continue
        merged[step.key] = dataclasses.replace(
            known,
            count_required=max(known.count_required, step.count_required),
            min_duration_days=(
                known.min_duration_days
                if known.min_duration_days is not None
                else step.min_duration_days
            ),
        )
    return tuple(merged.values())
