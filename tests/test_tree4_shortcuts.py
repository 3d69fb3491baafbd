"""The extractor's and the tree builder's shortcuts answer as the long way did: folded searches
of lower-cased text, early exits of `find_steps`, `find_age_limits` and `codes_in_prose`, a
word read once by `drug_names`, and literal pre-checks before the tree's line patterns."""

from __future__ import annotations

import re

import pytest
from extract_support import fixture_documents
from hypothesis import given
from hypothesis import strategies as st

from diffing.extract import ages, codes, drugs, sentences, steps
from diffing.extract.folded import found_in, lowered_pattern
from diffing.text import sentences as split_sentences
from diffing.tree import build

PROSE = [
    "Patient has tried at least one medium-, high-, or super-high-potency topical corticosteroid"
    " applied daily for at least 8 weeks with inadequate response; and",
    "The member has an Eczema Area and Severity Index (EASI) score of at least 16; and",
    "Aetna approves initial requests for up to 6 months and continuation requests for 12 months.",
    "Members aged eighteen years or older; under the age of six are excluded.",
    "Patients 6 months of age and older, between 12 and 17 years old.",
    "Patient is 18 years of age or older, and weighs > 40 kg",
    "Age > 12 years; renewal every 12 months",
    "A 3-month trial of methotrexate, or cyclosporine for 12 weeks",
    "Dupilumab for 16 weeks (a minimum of 4 weeks for topical steroids)",
    "In a registry of 1240 adults, 48% continued for at least one year; codes J3590 apply.",
    "Report CPT code 81445 for the panel; ICD-10 C34.90 applies.",
    "Codes G30. 0 - G30.9 are covered; bill with HCPCS J0517.",
    "diagnosis code E11.9 (type 2 diabetes) and B12",
    "Prescribed by or in consultation with a dermatologist.",
    "Reauthorization: the prescriber attests to a response after the initial 6 months.",
    "Aetna considers Nemluvio (nemolizumab-ilto) medically necessary for members with atopic"
    " dermatitis when all of the following criteria are met:",
    "BRAF testing (e.g., V600E) for the following indications:",
    "Nemluvio (nemolizumab-ilto) and nemolizumab-ilto, nemolizumab-ilto; Adbry (tralokinumab).",
    "Step KELVIN \u212a 18 years — ſuch as infliximab",
    "",
]


def _fixture_sentences() -> list[str]:
    out: list[str] = []
    for document in fixture_documents():
        for section in document.sections:
            for line in section.text.split("\n"):
                out.extend(split_sentences(line))
    return out


FIXTURE = _fixture_sentences()
TEXTS = st.sampled_from([*PROSE, *FIXTURE]) | st.text() | st.text(alphabet="aAgeOR 1-8.;:()")


def test_the_fixture_gives_sentences() -> None:
    assert len(FIXTURE) >= 40


FOLDED = [
    ages._AGE_HINT,
    ages._ANY_NUMBER,
    sentences._ANY_PHASE_WORD,
    sentences._PRESCRIBER,
    codes.CODE_KEYWORDS,
]


@pytest.mark.parametrize("pattern", FOLDED, ids=lambda p: p.pattern[:30])
def test_every_folded_pattern_is_rewritten(pattern: re.Pattern[str]) -> None:
    assert lowered_pattern(pattern) is not None


@given(TEXTS)
def test_found_in_answers_as_the_search(text: str) -> None:
    for pattern in FOLDED:
        lowered = lowered_pattern(pattern)
        assert found_in(pattern, lowered, text) == (pattern.search(text) is not None)
        assert found_in(pattern, None, text) == (pattern.search(text) is not None)


def _long_way_steps(
    monkeypatch: pytest.MonkeyPatch, text: str, lead: steps.StepLead | None
) -> object:
    with monkeypatch.context() as patched:
        patched.setattr(steps, "_keeps_nothing", lambda durations: False)
        return steps.find_steps(text, lead=lead)


@pytest.mark.parametrize("text", [*PROSE, *FIXTURE])
@pytest.mark.parametrize("lead", [None, steps.StepLead(count_required=1, min_duration_days=56)])
def test_steps_after_the_shortcut_are_the_long_way(
    monkeypatch: pytest.MonkeyPatch, text: str, lead: steps.StepLead | None
) -> None:
    assert steps.find_steps(text, lead=lead) == _long_way_steps(monkeypatch, text, lead)


def test_the_steps_shortcut_is_taken_and_skipped() -> None:
    taken = [t for t in PROSE if not steps.STEP_TRIGGER.search(t)]
    assert any(steps._keeps_nothing(steps.find_durations(t)) for t in taken)
    assert not all(steps._keeps_nothing(steps.find_durations(t)) for t in taken)


@given(TEXTS)
def test_age_limits_after_the_shortcut_are_the_long_way(text: str) -> None:
    short = ages.find_age_limits(text)
    # "n" is in every match of the last pattern: no match is answered by the shortcut.
    saved, ages._BOUND_GROUPS = ages._BOUND_GROUPS, ("n",)
    try:
        assert short == ages.find_age_limits(text)
    finally:
        ages._BOUND_GROUPS = saved


@pytest.mark.parametrize("text", PROSE)
def test_age_limits_of_the_prose_after_the_shortcut_are_the_long_way(text: str) -> None:
    short = ages.find_age_limits(text)
    saved, ages._BOUND_GROUPS = ages._BOUND_GROUPS, ("n",)
    try:
        assert short == ages.find_age_limits(text)
    finally:
        ages._BOUND_GROUPS = saved


@given(TEXTS)
def test_codes_in_prose_after_the_keyword_shortcut_are_the_long_way(text: str) -> None:
    for in_list in (False, True):
        short = codes.codes_in_prose(text, in_code_list=in_list)
        saved, codes.found_in = codes.found_in, lambda pattern, lowered, text: True
        try:
            assert short == codes.codes_in_prose(text, in_code_list=in_list)
        finally:
            codes.found_in = saved


@given(TEXTS | st.lists(st.sampled_from(["a", "Code", ".", ";", ",", " ", "x"])).map("".join))
def test_a_heading_counts_its_words_as_before(text: str) -> None:
    stripped = text.strip()
    expected = len(stripped.split()) <= codes._MAX_HEADING_WORDS and not (
        codes._NOT_HEADING.search(stripped)
    )
    assert codes._is_heading(text) == expected


def _long_way_drug_names(text: str) -> list[drugs.DrugName]:
    """`drug_names` before it read a word once."""
    found: dict[str, drugs.DrugName] = {}

    def add(name: str, drug_class: str | None, brand: str | None) -> None:
        name = re.sub(r"-[a-z]{4}$", "", drugs._CONJUGATE_PREFIX.sub("", name.lower()))
        known = found.get(name)
        if known is None or (brand and not known.brand):
            found[name] = drugs.DrugName(name=name, drug_class=drug_class, brand=brand)

    for match in drugs._BRAND_GENERIC.finditer(text):
        generic = match.group("generic")
        drug_class = drugs.stem_class(generic.split()[0])
        if drug_class is not None:
            add(generic.split()[0], drug_class, drugs._brand(match.group("brand")))
    for match in drugs.finditer_in_place(drugs._STEM_WORD, drugs._STEM_WORD_LOWERED, text):
        word = text[match.start(1) : match.end(1)]
        if not drugs._ends_in_stem(word):
            continue
        drug_class = drugs.stem_class(text[match.start() : match.end()])
        if drug_class is not None:
            add(word, drug_class, None)
    for term in drugs.find_terms(text, drugs.DRUGS):
        add(term.canonical, term.term.drug_class, None)
    return list(found.values())


@given(TEXTS | st.lists(st.sampled_from(PROSE)).map(" ".join))
def test_drug_names_reading_a_word_once_are_the_long_way(text: str) -> None:
    assert drugs.drug_names(text) == _long_way_drug_names(text)


def test_drug_names_of_a_repeated_name_are_the_long_way() -> None:
    text = " ".join(PROSE + FIXTURE)
    assert drugs.drug_names(text) == _long_way_drug_names(text)
    assert len(drugs.drug_names(text)) >= 3


LITERALS = [
    (build._FOR_INDICATIONS, "for the following"),
    (build._CONSIDERS, "considers "),
    (build._JOINED_ITEM, None),
]


@given(
    TEXTS
    | st.sampled_from(
        [
            "BRAF testing (e.g., V600E) for the following indications:",
            "Aetna considers UVB phototherapy medically necessary for any of the following:",
            "Patient has tried methotrexate; OR - For any nonsolid formulation: provide it",
            "a AND  - b",
        ]
    )
)
def test_the_tree_patterns_need_their_literals(text: str) -> None:
    assert build._FOR_INDICATIONS.match(text) is None or "for the following" in text
    assert build._CONSIDERS.match(text) is None or "considers " in text
    assert build._JOINED_ITEM.search(text) is None or "OR" in text or "AND" in text
    assert build._split_joined_item(0, text) == _long_way_split(text)


def _long_way_split(line: str) -> list[tuple[int, str]]:
    match = build._JOINED_ITEM.search(line)
    if match is None:
        return [(0, line)]
    return [(0, line[: match.start()]), (match.end(), line[match.end() :])]


def _long_way_ages(text: str) -> list[ages.AgeFinding]:
    """`find_age_limits` searching the text as written, case-insensitively."""
    saved = ages._AGE_PATTERNS_LOWERED
    ages._AGE_PATTERNS_LOWERED = (None,) * len(saved)
    try:
        return ages.find_age_limits(text)
    finally:
        ages._AGE_PATTERNS_LOWERED = saved


def test_every_age_pattern_is_rewritten() -> None:
    assert all(pattern is not None for pattern in ages._AGE_PATTERNS_LOWERED)


@given(TEXTS | st.sampled_from(["AGED 12 TO 17 YEARS", "Over The Age Of Eighteen", "Under 6 Mos"]))
def test_age_limits_read_in_the_lowered_text_are_the_long_way(text: str) -> None:
    found = ages.find_age_limits(text)
    assert found == _long_way_ages(text)
    assert all(finding.text in text for finding in found)


@pytest.mark.parametrize("text", [*PROSE, *FIXTURE])
def test_age_limits_of_sentences_read_in_the_lowered_text_are_the_long_way(text: str) -> None:
    assert ages.find_age_limits(text) == _long_way_ages(text)
