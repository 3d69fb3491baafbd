"""Everything one criteria sentence states, as model objects: `extract_sentence`.

The sentence is read on its own; what it cannot say itself (which drug the policy governs, the
indication and initial/reauthorization block it sits in, an open "ONE of the following:" lead)
comes in a `SentenceContext` that `diffing.extract.document` keeps while it walks a document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from diffing.extract import memo
from diffing.extract.ages import AgeFinding, remembered_age_limits
from diffing.extract.codes import codes_in_prose, coverage_flag
from diffing.extract.durations import Duration, DurationKind, remembered_durations
from diffing.extract.folded import found_in, lowered_pattern
from diffing.extract.measures import ThresholdFinding, remembered_thresholds
from diffing.extract.steps import StepLead, remembered_steps
from diffing.extract.vocabulary import (
    DRUGS,
    INDICATIONS,
    SPECIALTIES,
    any_of,
    find_terms,
    word_set,
)
from diffing.model import (
    AgeLimit,
    ApprovalPeriod,
    CodeRef,
    CodeSystem,
    CoverageFlag,
    DrugMention,
    Evidence,
    PriorAuth,
    StepTherapy,
    Threshold,
)

_GAP_TERMS = DRUGS + INDICATIONS
INITIAL = "initial"
REAUTHORIZATION = "reauthorization"

_PA_NOT_REQUIRED = re.compile(
    r"\b(?:(?:does|do|will) not require|not subject to|no|exempt from)\s+"
    r"(?:a\s+)?(?:prior authori[sz]ation|pre-?certification|pre-?authori[sz]ation)"
    r"|\b(?:prior authori[sz]ation|pre-?certification|pre-?authori[sz]ation)\s+(?:is\s+)?"
    r"(?:not|no longer)\s+(?:required|needed)",
    re.IGNORECASE,
)
_PA_REQUIRED = re.compile(
    r"\b(?:requires?|required|subject to|needs?|must (?:have|obtain|receive))\s+(?:a\s+)?"
    r"(?:prior authori[sz]ation|pre-?certification|pre-?authori[sz]ation)"
    r"|\b(?:prior authori[sz]ation|pre-?certification|pre-?authori[sz]ation)\s+(?:\(PA\)\s+)?"
    r"(?:is\s+|are\s+)?(?:required|needed|applies|must be obtained)"
    r"|\bmust be prior authori[sz]ed\b",
    re.IGNORECASE,
)
_PHASE_WORDS = (
    (
        REAUTHORIZATION,
        re.compile(
            r"\b(?:re-?authori[sz]ations?|re-?auth|re-?approval|continuation|continued"
            r"|renewals?|renew(?:ed)?|re-?certification|recertification|subsequent)\b",
            re.IGNORECASE,
        ),
    ),
    (INITIAL, re.compile(r"\b(?:initial(?:ly)?|first)\b", re.IGNORECASE)),
)
_ANY_PHASE_WORD = any_of(pattern for _, pattern in _PHASE_WORDS)
_ANY_PHASE_WORD_LOWERED = lowered_pattern(_ANY_PHASE_WORD)
_APPROVAL_WORD = re.compile(
    r"\b(?:authori[sz](?:ations?|e|es|ed)|approvals?|approved?|approvable|re-?auth\w*|renewal"
    r"|renewed|continuation|coverage|initial(?:ly)?)\b",
    re.IGNORECASE,
)
# Phase words alone ("initial 6-week treatment phase") are no approval: the sentence must say so.
_SAYS_APPROVAL = re.compile(
    r"\b(?:authori[sz]\w*|approv\w*|re-?auth\w*|renew\w*|re-?certif\w*|coverage)\b", re.I
)
_APPROVAL_GAP_WORDS = word_set(
    """
    will be may can shall is are issued approved granted authorized authorised renewed
    extended provided given for of up to no more than not exceed a an the maximum max
    period periods duration length term every in intervals interval increments at time each
    initial initially reauthorization reauth approval authorization authorisation coverage
    therapy treatment continuation continued request requests criteria then
    re-authorization re-auth
    """
)
_PRESCRIBER = re.compile(
    r"\b(?:prescribed|recommended|ordered|managed|supervised|administered)\b[^.;]{0,40}?\bby\b"
    r"|\bin consultation with\b|\bconsultation with\b|\bprescriber\b|\bspecialist\b"
    r"|\bunder the (?:care|supervision|direction) of\b|\bboard[- ]certified\b",
    re.IGNORECASE,
)

_PRESCRIBER_LOWERED = lowered_pattern(_PRESCRIBER)


@dataclass(frozen=True, kw_only=True, slots=True)
class SentenceContext:
    """What the surrounding document says about a sentence."""

    drug: str | None = None  # the drug the policy (or the current block) governs
    indication: str | None = None  # the current indication heading
    phase: str | None = None  # "initial" or "reauthorization", from the current block heading
    lead: StepLead | None = None  # an open "… ONE of the following:" the sentence is an item of
    code_flag: CoverageFlag | None = None  # the coverage heading, inside a code list
    section: str | None = None
    page: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class SentenceFacts:
    """The structured items found in one sentence."""

    drugs: tuple[DrugMention, ...] = ()
    step_therapy: tuple[StepTherapy, ...] = ()
    # prerequisite -> the named examples of it: ("topical calcineurin inhibitor",
    # ("pimecrolimus", "tacrolimus")). `StepTherapy` has no field for them yet.
    step_examples: tuple[tuple[str, tuple[str, ...]], ...] = ()
    prior_auth: tuple[PriorAuth, ...] = ()
    approval_periods: tuple[ApprovalPeriod, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    age_limits: tuple[AgeLimit, ...] = ()
    prescriber_specialties: tuple[str, ...] = ()
    codes: tuple[CodeRef, ...] = ()
    lead: StepLead | None = None  # set when the sentence opens a list of prerequisites
    indications: tuple[str, ...] = ()  # indications named in the sentence
    phase: str | None = None  # a phase named in the sentence

    def items(self) -> tuple[object, ...]:
        """Every extracted item, specialties as plain strings."""
        return (
            *self.drugs,
            *self.step_therapy,
            *self.prior_auth,
            *self.approval_periods,
            *self.thresholds,
            *self.age_limits,
            *self.prescriber_specialties,
            *self.codes,
        )


def named_phase(text: str) -> str | None:
    """The authorization phase a text names first, if any."""
    if not found_in(_ANY_PHASE_WORD, _ANY_PHASE_WORD_LOWERED, text):
        # most texts: one search instead of one per phase
        return None
    # Each pattern's first match is its earliest: the later ones cannot be the first.
    hits = [(m.start(), phase) for phase, p in _PHASE_WORDS if (m := p.search(text))]
    return min(hits)[1] if hits else None


@dataclass(frozen=True, slots=True)
class _Reading:
    """What a sentence says whatever its context (`_read`): the searches `extract_sentence`
    makes of its text, remembered for short texts (`diffing.extract.memo`)."""

    indications: tuple[str, ...]
    drugs: tuple[tuple[str, str | None], ...]  # (name, class), the first mention of each
    thresholds: tuple[ThresholdFinding, ...]
    ages: tuple[AgeFinding, ...]
    prior_auth: bool | None  # whether it says prior authorization is required, None if neither
    # (days, the phase named at it) of each duration that is an approval's length, in order
    approvals: tuple[tuple[int, str | None], ...]
    specialties: tuple[str, ...]
    # (system, the flag its clause gives, code) of each code outside a code list, and the flag
    # the whole sentence gives
    codes: tuple[tuple[CodeSystem, CoverageFlag | None, str], ...]
    code_flag: CoverageFlag | None
    phase: str | None


def _read(sentence: str) -> _Reading:
    drugs: dict[str, str | None] = {}
    for match in find_terms(sentence, DRUGS):
        drugs.setdefault(match.canonical, match.term.drug_class)
    mentions = codes_in_prose(sentence)
    return _Reading(
        indications=tuple(dict.fromkeys(m.canonical for m in find_terms(sentence, INDICATIONS))),
        drugs=tuple(drugs.items()),
        thresholds=tuple(remembered_thresholds(sentence)),
        ages=tuple(remembered_age_limits(sentence)),
        prior_auth=_prior_auth_required(sentence),
        approvals=_approval_lengths(sentence, remembered_durations(sentence)),
        specialties=_specialties(sentence),
        codes=tuple((m.system, coverage_flag(m.clause), m.code) for m in mentions),
        code_flag=coverage_flag(sentence) if mentions else None,
        phase=named_phase(sentence),
    )


_remembered_reading = memo.per_short_text(_read)


def extract_sentence(sentence: str, context: SentenceContext | None = None) -> SentenceFacts:
    """The criteria one sentence states, with `Evidence` pointing at it."""
    return _remembered_facts(sentence, context or SentenceContext())


def _facts(sentence: str, context: SentenceContext) -> SentenceFacts:
    reading = _remembered_reading(sentence)
    evidence = Evidence(sentence=sentence, page=context.page, section=context.section)
    indications = reading.indications
    indication = context.indication or (indications[0] if len(indications) == 1 else None)
    drugs = _mentions(reading, evidence)
    findings, lead = remembered_steps(sentence, governed_drug=context.drug, lead=context.lead)
    steps = tuple(
        StepTherapy(
            prerequisite=f.prerequisite,
            drug=context.drug,
            indication=indication,
            count_required=f.count_required,
            min_duration_days=f.min_duration_days,
            evidence=evidence,
        )
        for f in findings
    )
    thresholds = tuple(
        Threshold(
            measure=t.measure,
            op=t.op,
            value=t.value,
            unit=t.unit,
            indication=indication,
            evidence=evidence,
        )
        for t in reading.thresholds
    )
    ages = tuple(
        AgeLimit(
            op=a.op,
            years=a.years,
            indication=indication,
            evidence=evidence,
            amount=a.amount,
            unit=a.unit,
        )
        for a in reading.ages
    )
    return SentenceFacts(
        drugs=drugs,
        step_therapy=steps,
        step_examples=tuple((f.prerequisite, f.examples) for f in findings if f.examples),
        prior_auth=_prior_auth(reading.prior_auth, drugs, context, evidence),
        approval_periods=_approval_periods(reading.approvals, drugs, context, indication, evidence),
        thresholds=thresholds,
        age_limits=ages,
        prescriber_specialties=reading.specialties,
        codes=_codes(sentence, reading, context),
        lead=lead,
        indications=indications,
        phase=reading.phase,
    )


# The facts of a sentence in its context, remembered for short sentences: a payer's policies
# repeat their criteria under the same drugs, headings and sections (`SentenceContext` is
# frozen, `SentenceFacts` too, so every call may share them).
_remembered_facts = memo.per_short_text(_facts)


def sentence_drugs(sentence: str, context: SentenceContext) -> tuple[DrugMention, ...]:
    """`extract_sentence(sentence, context).drugs`, without reading the rest."""
    evidence = Evidence(sentence=sentence, page=context.page, section=context.section)
    return _mentions(_remembered_reading(sentence), evidence)


def _mentions(reading: _Reading, evidence: Evidence) -> tuple[DrugMention, ...]:
    return tuple(
        DrugMention(name=name, drug_class=drug_class, evidence=evidence)
        for name, drug_class in reading.drugs
    )


def _prior_auth_required(sentence: str) -> bool | None:
    if _PA_NOT_REQUIRED.search(sentence):
        return False
    if _PA_REQUIRED.search(sentence):
        return True
    return None


def _prior_auth(
    required: bool | None,
    drugs: tuple[DrugMention, ...],
    context: SentenceContext,
    evidence: Evidence,
) -> tuple[PriorAuth, ...]:
    if required is None:
        return ()
    names: list[str | None] = [d.name for d in drugs] or [context.drug]
    return tuple(PriorAuth(required=required, drug=name, evidence=evidence) for name in names)


def _approval_lengths(
    sentence: str, all_durations: list[Duration]
) -> tuple[tuple[int, str | None], ...]:
    """(days, the phase named at it) of each duration in `sentence` that is an approval's
    length."""
    if not _SAYS_APPROVAL.search(sentence):
        return ()
    lengths: list[tuple[int, str | None]] = []
    for duration in all_durations:
        # "renewed every 12 months" is a renewal period, not a dosing frequency
        if duration.kind in (DurationKind.LOOKBACK, DurationKind.AGE):
            continue
        if not _approval_duration(sentence, duration.start, duration.end):
            continue
        lengths.append((duration.days, _phase_of(sentence, duration)))
    return tuple(lengths)


def _approval_periods(
    lengths: tuple[tuple[int, str | None], ...],
    drugs: tuple[DrugMention, ...],
    context: SentenceContext,
    indication: str | None,
    evidence: Evidence,
) -> tuple[ApprovalPeriod, ...]:
    if not lengths:
        return ()
    drug = drugs[0].name if len(drugs) == 1 else context.drug
    periods: list[ApprovalPeriod] = []
    for days, named in lengths:
        phase = named or context.phase or INITIAL
        period = ApprovalPeriod(
            phase=phase, days=days, drug=drug, indication=indication, evidence=evidence
        )
        if all((p.phase, p.days) != (period.phase, period.days) for p in periods):
            periods.append(period)
    return tuple(periods)


def _phase_of(sentence: str, duration: Duration) -> str | None:
    """The phase word right after the duration ("12 months renewal"), else the nearest one
    before it in its clause ("initial 4 months; reauth 1 year")."""
    right_after = re.match(r"[^,;.]{0,25}", sentence[duration.end :])
    if right_after is not None:
        phase = named_phase(right_after.group(0))
        if phase is not None:
            return phase
    clause_start = 1 + max(
        sentence.rfind(";", 0, duration.start), sentence.rfind(".", 0, duration.start)
    )
    hits = [
        (m.start(), phase)
        for phase, pattern in _PHASE_WORDS
        for m in pattern.finditer(sentence, clause_start, duration.start)
    ]
    return max(hits)[1] if hits else None


def _gap_ok(gap: str) -> bool:
    gap = re.sub(r"\([^)]*\)", " ", gap)
    for match in find_terms(gap, _GAP_TERMS):
        gap = gap.replace(match.text, " ")
    words = re.findall(r"[A-Za-z]+(?:-[A-Za-z]+)?", gap.lower())
    return not re.search(r"[;.]", gap) and all(w in _APPROVAL_GAP_WORDS for w in words)


def _approval_duration(sentence: str, start: int, end: int) -> bool:
    """Whether the duration at start:end is an approval length: an approval word before it
    joined only by words like "will be issued for up to", or right after it ("12-month
    approval")."""
    for word in _APPROVAL_WORD.finditer(sentence, max(0, start - 90), start):
        if _gap_ok(sentence[word.end() : start]):
            return True
    after = sentence[end : end + 40]
    following = _APPROVAL_WORD.search(after)
    return following is not None and _gap_ok(after[: following.start()])


def _specialties(sentence: str) -> tuple[str, ...]:
    if not found_in(_PRESCRIBER, _PRESCRIBER_LOWERED, sentence):
        return ()
    return tuple(sorted({m.canonical for m in find_terms(sentence, SPECIALTIES)}))


def _codes(sentence: str, reading: _Reading, context: SentenceContext) -> tuple[CodeRef, ...]:
    if context.code_flag is not None:  # inside a code list: read as one (never remembered)
        mentions = codes_in_prose(sentence, in_code_list=True)
        if not mentions:
            return ()
        default = coverage_flag(sentence) or context.code_flag or CoverageFlag.COVERED
        return tuple(
            CodeRef(system=m.system, flag=coverage_flag(m.clause) or default, code=m.code)
            for m in mentions
        )
    if not reading.codes:
        return ()
    default = reading.code_flag or CoverageFlag.COVERED
    return tuple(
        CodeRef(system=system, flag=flag or default, code=code)
        for system, flag, code in reading.codes
    )
