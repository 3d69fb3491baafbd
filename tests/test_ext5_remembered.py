"""What the extractor and the tree builder remember (`diffing.extract.memo`) is what they would
read: each remembered reader answers as the reader itself, the first time and from memory, and
`extract_sentence` and the code lines of `document_codes` answer as they did before they read
through the memory (the long way is kept below, as it was written)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar

import pytest
from extract_support import fixture_documents
from hypothesis import given, settings
from hypothesis import strategies as st

from diffing.extract import ages, codes, drugs, durations, measures, memo, sentences, steps
from diffing.extract.codes import CodeMention, CodeRow
from diffing.extract.vocabulary import DRUGS, INDICATIONS, SPECIALTIES, _find_terms, find_terms
from diffing.model import (
    ApprovalPeriod,
    CodeRef,
    CodeSystem,
    CoverageFlag,
    DrugMention,
    Evidence,
    PriorAuth,
    StepTherapy,
)
from diffing.text import sentences as split_sentences
from diffing.tree import leaves

T = TypeVar("T")

PROSE = [
    "Patient has tried at least one medium-, high-, or super-high-potency topical corticosteroid"
    " applied daily for at least 8 weeks with inadequate response; and",
    "The member has an Eczema Area and Severity Index (EASI) score of at least 16; and",
    "Aetna approves initial requests for up to 6 months and continuation requests for 12 months.",
    "Authorization will be issued for 12 months; reauthorization for 1 year.",
    "Members aged eighteen years or older; under the age of six are excluded.",
    "Patient is 18 years of age or older, and weighs > 40 kg",
    "A 3-month trial of methotrexate, or cyclosporine for 12 weeks",
    "Dupilumab for 16 weeks (a minimum of 4 weeks for topical steroids)",
    "Patient has had an inadequate response to ONE of the following:",
    "Prior authorization is required for Dupixent (dupilumab) and Adbry.",
    "Dupixent does not require prior authorization.",
    "Report CPT code 81445 for the panel; ICD-10 C34.90 applies.",
    "Codes G30. 0 - G30.9 are not covered; bill with HCPCS J0517.",
    "Prescribed by or in consultation with a dermatologist or allergist.",
    "Reauthorization: the prescriber attests to a response after the initial 6 months.",
    "Patient is not receiving Dupixent in combination with another biologic",
    "Patient has been established on Dupixent for at least 4 months",
    "Infliximab is dosed no higher than 10 mg/kg every 8 weeks",
    "Diagnosis of moderate-to-severe atopic dermatitis (AD)",
    "BSA \u2265 10% or IGA 3 or 4; lesions at least 20 mm",
    "Step KELVIN \u212a 18 years \u2014 \u017fuch as infliximab; na\u00efve to Otezla",
    "",
]


def _fixture_lines() -> list[str]:
    out: list[str] = []
    for document in fixture_documents():
        for section in document.sections:
            out.extend(section.text.split("\n"))
        out.extend(" | ".join(row) for table in document.tables for row in table.rows)
    return out


LINES = _fixture_lines()
SENTENCES = [*PROSE, *(s for line in LINES for s in split_sentences(line))]
TEXTS = (
    st.sampled_from(SENTENCES)
    | st.text()
    | st.text(alphabet="aAgeOR 1-8.;:()%")
    | st.lists(st.sampled_from(SENTENCES), max_size=3).map(" ".join)
)
LONG = " ".join(SENTENCES)  # longer than `memo.MAX_CHARS`: read each time


def test_the_corpus() -> None:
    assert len(SENTENCES) >= 100
    assert len(LONG) > memo.MAX_CHARS


# --- memo ----------------------------------------------------------------------------------


def test_per_text_gives_each_call_its_own_list() -> None:
    read: list[str] = []

    def reader(text: str) -> list[str]:
        read.append(text)
        return text.split()

    remembered = memo.per_text(reader)
    first = remembered("a b")
    first.append("c")
    assert remembered("a b") == ["a", "b"]
    assert read == ["a b"]  # the second answer came from memory
    long = "x " * memo.MAX_CHARS
    assert remembered(long) == remembered(long)
    assert read == ["a b", long, long]  # a long text is read each time


def test_per_short_text_keys_on_every_argument() -> None:
    read: list[tuple[str, bool]] = []

    def reader(text: str, flag: bool) -> tuple[str, ...]:
        read.append((text, flag))
        return (text, str(flag))

    remembered = memo.per_short_text(reader)
    assert remembered("a", True) == ("a", "True")
    assert remembered("a", False) == ("a", "False")
    assert remembered("a", True) == ("a", "True")
    assert read == [("a", True), ("a", False)]


# --- the readers ---------------------------------------------------------------------------

READERS = [
    (durations.remembered_durations, durations.find_durations),
    (ages.remembered_age_limits, ages.find_age_limits),
    (measures.remembered_thresholds, measures.find_thresholds),
    (drugs.remembered_drug_names, drugs.drug_names),
]


@pytest.mark.parametrize("text", [*PROSE, LONG])
@pytest.mark.parametrize(("remembered", "reader"), READERS)
def test_remembered_readers_answer_as_the_readers(text: str, remembered, reader) -> None:  # type: ignore[no-untyped-def]
    assert remembered(text) == reader(text)
    assert remembered(text) == reader(text)  # from memory


@settings(max_examples=300)
@given(TEXTS)
def test_remembered_readers_answer_as_the_readers_on_any_text(text: str) -> None:
    for remembered, reader in READERS:
        assert remembered(text) == reader(text)
        assert remembered(text) == reader(text)


@given(TEXTS, st.sampled_from([DRUGS, INDICATIONS, SPECIALTIES, steps._STEP_TERMS]))
def test_find_terms_answers_as_the_search(text: str, terms) -> None:  # type: ignore[no-untyped-def]
    assert find_terms(text, terms) == _find_terms(text, terms)
    assert find_terms(text, terms) == _find_terms(text, terms)


LEADS = [
    None,
    steps.StepLead(count_required=1, min_duration_days=56),
    steps.StepLead(count_required=0),
]


@settings(max_examples=200)
@given(TEXTS, st.sampled_from([None, "dupilumab", "methotrexate"]), st.sampled_from(LEADS))
def test_remembered_steps_answer_as_find_steps(
    text: str, drug: str | None, lead: steps.StepLead | None
) -> None:
    expected = steps.find_steps(text, governed_drug=drug, lead=lead)
    assert steps.remembered_steps(text, governed_drug=drug, lead=lead) == expected
    assert steps.remembered_steps(text, governed_drug=drug, lead=lead) == expected


def _unwrapped(remembered: Callable[..., T]) -> Callable[..., T]:
    """The reading a remembering function wraps (`functools.lru_cache`'s ``__wrapped__``)."""
    wrapped: Callable[..., T] = getattr(remembered, "__wrapped__")  # noqa: B009 (untyped)
    return wrapped


def _shown(items: object) -> str:
    """`repr` shows every field, those equality leaves out (evidence, text, note) too."""
    return repr(items)


@settings(max_examples=200)
@given(TEXTS, st.booleans(), st.integers(min_value=0, max_value=3))
def test_remembered_leaves_are_the_typed_leaves_with_their_evidence(
    text: str, in_dosing: bool, page: int
) -> None:
    for evidence in (
        Evidence(sentence=text, section="Criteria"),
        Evidence(sentence="another line", page=page, section=None),
    ):
        expected = leaves.typed_leaves(text, evidence=evidence, in_dosing=in_dosing)
        got = leaves.remembered_leaves(text, evidence=evidence, in_dosing=in_dosing)
        assert _shown(got) == _shown(expected)


# --- extract_sentence, the long way --------------------------------------------------------


def _long_way_sentence(
    sentence: str, context: sentences.SentenceContext | None = None
) -> sentences.SentenceFacts:
    """`extract_sentence` as it was before it read through `sentences._read`."""
    from diffing.model import AgeLimit, Threshold

    context = context or sentences.SentenceContext()
    evidence = Evidence(sentence=sentence, page=context.page, section=context.section)
    indications = tuple(dict.fromkeys(m.canonical for m in find_terms(sentence, INDICATIONS)))
    indication = context.indication or (indications[0] if len(indications) == 1 else None)
    seen: dict[str, DrugMention] = {}
    for match in find_terms(sentence, DRUGS):
        seen.setdefault(
            match.canonical,
            DrugMention(name=match.canonical, drug_class=match.term.drug_class, evidence=evidence),
        )
    found_drugs = tuple(seen.values())
    all_durations = durations.find_durations(sentence)
    findings, lead = steps.find_steps(
        sentence, governed_drug=context.drug, lead=context.lead, durations=all_durations
    )
    if sentences._PA_NOT_REQUIRED.search(sentence):
        required: bool | None = False
    elif sentences._PA_REQUIRED.search(sentence):
        required = True
    else:
        required = None
    names: list[str | None] = [d.name for d in found_drugs] or [context.drug]
    prior_auth = (
        ()
        if required is None
        else tuple(PriorAuth(required=required, drug=name, evidence=evidence) for name in names)
    )
    periods: list[ApprovalPeriod] = []
    if sentences._SAYS_APPROVAL.search(sentence):
        drug = found_drugs[0].name if len(found_drugs) == 1 else context.drug
        for duration in all_durations:
            if duration.kind in (durations.DurationKind.LOOKBACK, durations.DurationKind.AGE):
                continue
            if not sentences._approval_duration(sentence, duration.start, duration.end):
                continue
            phase = sentences._phase_of(sentence, duration) or context.phase or sentences.INITIAL
            period = ApprovalPeriod(
                phase=phase, days=duration.days, drug=drug, indication=indication, evidence=evidence
            )
            if all((p.phase, p.days) != (period.phase, period.days) for p in periods):
                periods.append(period)
    mentions = codes.codes_in_prose(sentence, in_code_list=context.code_flag is not None)
    found_codes: tuple[CodeRef, ...] = ()
    if mentions:
        default = codes.coverage_flag(sentence) or context.code_flag or CoverageFlag.COVERED
        found_codes = tuple(
            CodeRef(system=m.system, flag=codes.coverage_flag(m.clause) or default, code=m.code)
            for m in mentions
        )
    return sentences.SentenceFacts(
        drugs=found_drugs,
        step_therapy=tuple(
            StepTherapy(
                prerequisite=f.prerequisite,
                drug=context.drug,
                indication=indication,
                count_required=f.count_required,
                min_duration_days=f.min_duration_days,
                evidence=evidence,
            )
            for f in findings
        ),
        step_examples=tuple((f.prerequisite, f.examples) for f in findings if f.examples),
        prior_auth=prior_auth,
        approval_periods=tuple(periods),
        thresholds=tuple(
            Threshold(
                measure=t.measure,
                op=t.op,
                value=t.value,
                unit=t.unit,
                indication=indication,
                evidence=evidence,
            )
            for t in measures.find_thresholds(sentence)
        ),
        age_limits=tuple(
            AgeLimit(
                op=a.op,
                years=a.years,
                indication=indication,
                evidence=evidence,
                amount=a.amount,
                unit=a.unit,
            )
            for a in ages.find_age_limits(sentence)
        ),
        prescriber_specialties=sentences._specialties(sentence),
        codes=found_codes,
        lead=lead,
        indications=indications,
        phase=sentences.named_phase(sentence),
    )


CONTEXTS = [
    None,
    sentences.SentenceContext(),
    sentences.SentenceContext(drug="dupilumab", section="Criteria", page=2),
    sentences.SentenceContext(
        drug="dupilumab",
        indication="atopic dermatitis",
        phase="reauthorization",
        lead=steps.StepLead(count_required=1, min_duration_days=28),
        section="Criteria",
    ),
    sentences.SentenceContext(code_flag=CoverageFlag.NONCOVERED, section="Codes"),
]


@pytest.mark.parametrize("context", CONTEXTS)
def test_extract_sentence_answers_as_the_long_way(
    context: sentences.SentenceContext | None,
) -> None:
    for sentence in [*PROSE, *SENTENCES[:: max(1, len(SENTENCES) // 400)], LONG]:
        for _ in range(2):  # the second from memory
            got = sentences.extract_sentence(sentence, context)
            assert _shown(got) == _shown(_long_way_sentence(sentence, context))


@settings(max_examples=200)
@given(TEXTS, st.sampled_from(CONTEXTS))
def test_extract_sentence_answers_as_the_long_way_on_any_text(
    sentence: str, context: sentences.SentenceContext | None
) -> None:
    assert _shown(sentences.extract_sentence(sentence, context)) == _shown(
        _long_way_sentence(sentence, context)
    )


@given(TEXTS, st.sampled_from(CONTEXTS[1:]))
def test_sentence_drugs_are_extract_sentences(
    sentence: str, context: sentences.SentenceContext
) -> None:
    got = sentences.sentence_drugs(sentence, context)
    assert _shown(got) == _shown(sentences.extract_sentence(sentence, context).drugs)


# --- document_codes' lines, the long way ---------------------------------------------------


def _long_way_section_codes(name: str, lines: list[str]) -> list[CodeRow]:
    """`codes._section_codes` as it was before it read each line through memory."""
    default = codes.coverage_flag(name) or CoverageFlag.COVERED
    code_section = bool(codes._CODE_SECTION_NAME.search(name))
    flag = default
    first_reading = [codes._table_line_codes(line) for line in lines]
    is_table = sum(1 for found in first_reading if found) >= codes.MIN_TABLE_LINES
    listing = False
    rows: list[CodeRow] = []
    for line, first in zip(lines, first_reading, strict=True):
        if codes._HISTORY_HEADING.match(line):
            break
        in_list = is_table or code_section or listing
        short = is_table and first is None
        found = codes._table_line_codes(line, short_rows=True) if short else first
        line_codes: list[CodeMention]
        line_codes, description = found if found and in_list else ([], "")
        known = {m.code for m in line_codes}
        extra = codes.codes_in_prose(line, in_code_list=code_section or listing)
        if in_list:
            extra += codes._embedded(line) + codes._siblings(line_codes, description)
        if line_codes and all(m.system is CodeSystem.HCPCS for m in line_codes):
            extra = [m for m in extra if m.system is not CodeSystem.ICD10]
        for mention in extra:
            if mention.code not in known:
                known.add(mention.code)
                line_codes.append(mention)
        if line_codes:
            line_flag = flag if found else (codes.heading_flag(line) or flag)
            rows.extend(codes._rows(line_codes, description, line_flag, line))
        elif line.strip() and not codes._looks_like_header((line,)):
            flag = codes._next_flag(line, flag, default)
            if codes._is_heading(line) and codes._NAMES_A_CODE_SET.search(line):
                listing = True
            elif not codes._is_heading(line):
                listing = False
    return rows


CODE_LINES = [
    "CPT codes covered if selection criteria are met:",
    "81445 Targeted genomic sequence analysis panel, solid organ neoplasm",
    "81450 Hematolymphoid neoplasm panel; 81451 using computer-assisted technology 81452",
    "0018U Oncology (thyroid), microRNA profiling",
    "Afirma 81546",
    "J0517 Injection, benralizumab, 1 mg",
    "ICD-10 codes not covered for indications listed in the CPB:",
    "C34.90 Malignant neoplasm of unspecified part of bronchus or lung",
    "G30. 0 - G30.9 Alzheimer's disease",
    "Other CPT codes related to the CPB:",
    "88360 Morphometric analysis, tumor immunohistochemistry; manual 88361",
    "Policy History",
    "81479 logged in the history",
]


@pytest.mark.parametrize("name", ["Coding Information", "Criteria", "CPT Codes Not Covered"])
def test_section_codes_answer_as_the_long_way(name: str) -> None:
    for lines in (CODE_LINES, LINES, CODE_LINES[:5] + LINES[:50] + CODE_LINES[5:]):
        for _ in range(2):  # the second from memory
            got = codes._section_codes(name, lines)
            assert _shown(got) == _shown(_long_way_section_codes(name, lines))


@settings(max_examples=200)
@given(st.lists(st.sampled_from(CODE_LINES + LINES[:200]) | st.text(max_size=40), max_size=12))
def test_section_codes_answer_as_the_long_way_on_any_lines(lines: list[str]) -> None:
    for name in ("Coding Information", "Criteria"):
        got = codes._section_codes(name, lines)
        assert _shown(got) == _shown(_long_way_section_codes(name, lines))


def test_remembered_items_are_immutable() -> None:
    for kind in (
        durations.Duration,
        ages.AgeFinding,
        measures.ThresholdFinding,
        drugs.DrugName,
        steps.StepFinding,
        CodeMention,
        leaves.CriterionLeaf,
    ):
        assert dataclasses.fields(kind)
        params = getattr(kind, "__dataclass_params__")  # noqa: B009 (not typed on a union of types)
        assert params.frozen, kind


# --- the tree's and the code tables' line readings -----------------------------------------


@settings(max_examples=300)
@given(TEXTS | st.sampled_from(LINES) | st.sampled_from(CODE_LINES))
def test_remembered_line_readings_answer_as_the_readings(line: str) -> None:
    from diffing.tree import build

    for _ in range(2):  # the second from memory
        assert build._marker(line) == _unwrapped(build._marker)(line)
        assert build._op_of(line) == _unwrapped(build._op_of)(line)
        assert build._stripped(line) == leaves.strip_connector(line)
        found = codes.leading_codes(line)
        expected = None if found is None else (tuple(found[0]), found[1])
        assert _shown(codes._leading_codes(line)) == _shown(expected)


def test_tables_read_as_the_long_way() -> None:
    from diffing.model import Table

    tables = [
        Table(rows=(("Code", "Description"), ("81445", "Panel"), ("J0517", "Benralizumab"))),
        Table(rows=(("CPT codes not covered:",), ("0018U Oncology (thyroid)", "x"), ("",))),
        Table(rows=(("Drug", "Criteria"), ("Dupixent", "Patient has tried a TCS"))),
    ]
    for table in tables:
        long_way = any(row and codes.leading_codes(row[0]) for row in table.rows)
        assert codes.is_code_table(table) == long_way


@settings(max_examples=200)
@given(TEXTS, st.sampled_from([t.canonical for t in DRUGS] + ["ruxolitinib", "x"]))
def test_first_mention_answers_as_every_match_listed(text: str, name: str) -> None:
    import re

    from diffing.extract import document

    mentions = [m.start() for m in re.finditer(re.escape(name), text, re.IGNORECASE)]
    mentions += [m.start for m in find_terms(text, DRUGS) if m.canonical == name]
    assert document._first_mention(text, name) == min(mentions, default=0)


_TREE_LINES = [
    "Atopic Dermatitis. Approve for 6 months if the patient meets ALL of the following:",
    "1. Psoriatic Arthritis Initial Therapy",
    "Dupixent (dupilumab) is medically necessary when any of the following criteria are met:",
    "The use of Dupixent is proven and MEDICALLY NECESSARY for one of the following:",
    "Aetna considers dupilumab experimental and investigational and not medically necessary.",
    "Criteria",
    "INITIAL AUTHORIZATION",
]


@settings(max_examples=300)
@given(
    st.sampled_from(_TREE_LINES)
    | TEXTS
    | st.sampled_from(LINES)
    | st.lists(st.sampled_from(["Approve", "Criteria", "Initial", "A", " ", ".", "x"])).map("".join)
)
def test_the_tree_asks_each_line_as_the_long_way(line: str) -> None:
    from diffing.parse.sections import looks_like_heading
    from diffing.tree import build

    found, long_way_match = build._indication_line(line), build._INDICATION_LINE.match(line)
    assert (found and found.regs) == (long_way_match and long_way_match.regs)
    if build._COVERAGE_STATEMENT.match(line):
        assert not line.isascii() or "medically necessary" in line.lower()
    for _ in range(2):  # the second from memory
        long_way = build._NOT_COVERED_STATEMENT.search(line) is not None
        assert build._states_not_covered(line) == long_way
        assert build._looks_like_heading(line) == looks_like_heading(line)
        assert build._indication_from_heading(line) == _unwrapped(build._indication_from_heading)(
            line
        )
