"""Properties of the extractor: durations, thresholds, ages and code ranges over whole ranges of
numbers and spellings, look-back windows never becoming trial lengths, and any text at all being
read without an exception.
"""

from __future__ import annotations

import warnings

from hypothesis import given
from hypothesis import strategies as st

from diffing.extract import SentenceContext, extract_sentence
from diffing.extract.codes import MAX_RANGE_EXPANSION, code_system
from diffing.extract.durations import DurationKind, find_durations
from diffing.model import CodeSystem

_ONES = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TEENS = (
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def in_words(n: int) -> str:
    if n < 10:
        return _ONES[n - 1]
    if n < 20:
        return _TEENS[n - 10]
    tens, ones = divmod(n, 10)
    return _TENS[tens - 2] + (f"-{_ONES[ones - 1]}" if ones else "")


def months_to_days(n: int) -> int:
    return round(n * 30.4375)


def trial_days(sentence: str) -> list[int | None]:
    facts = extract_sentence(sentence)
    return [step.min_duration_days for step in facts.step_therapy]


@given(st.integers(1, 52))
def test_at_least_n_weeks_is_7n_days(n: int) -> None:
    assert trial_days(f"Trial of a topical corticosteroid for at least {n} weeks") == [7 * n]


@given(st.integers(1, 99), st.sampled_from(["days", "weeks", "months"]))
def test_numbers_in_words_equal_digits(n: int, unit: str) -> None:
    in_digits = find_durations(f"for at least {n} {unit}")
    spelled = find_durations(f"for at least {in_words(n)} {unit}")
    assert [d.days for d in spelled] == [d.days for d in in_digits]
    assert len(in_digits) == 1


@given(st.integers(1, 24), st.sampled_from(["{n}-month trial of", "{n} month trial of"]))
def test_month_trials_are_a_twelfth_of_a_julian_year(n: int, template: str) -> None:
    sentence = "History of failure to a " + template.format(n=n) + " methotrexate"
    assert trial_days(sentence) == [months_to_days(n)]


@given(st.integers(1, 365), st.sampled_from(["≥ {n} consecutive days", ">={n} days", "{n}-day"]))
def test_day_spellings(n: int, template: str) -> None:
    (duration,) = find_durations("applied daily for " + template.format(n=n))
    assert duration.days == n
    assert duration.is_trial_length


@given(
    st.integers(1, 400),
    st.sampled_from(["within the past", "in the last", "during the previous", "within"]),
    st.sampled_from(["days", "weeks", "months"]),
)
def test_look_back_windows_are_never_trial_lengths(n: int, window: str, unit: str) -> None:
    sentence = f"Patient has tried a topical corticosteroid {window} {n} {unit}"
    assert trial_days(sentence) == [None]
    assert all(d.kind is DurationKind.LOOKBACK for d in find_durations(sentence))


@given(st.integers(1, 400), st.sampled_from(["every", "once every", "per"]))
def test_dosing_frequency_is_not_a_trial_length(n: int, word: str) -> None:
    sentence = f"Upadacitinib 15 mg {word} {n} days"
    assert not any(d.is_trial_length for d in find_durations(sentence))


@given(st.integers(1, 100), st.sampled_from(["BSA ≥ {n}%", "at least {n}% of body surface area"]))
def test_bsa_thresholds(n: int, template: str) -> None:
    facts = extract_sentence("Affected " + template.format(n=n))
    assert [(t.measure, t.op, t.value, t.unit) for t in facts.thresholds] == [("BSA", ">=", n, "%")]


@given(st.integers(1, 72), st.sampled_from(["EASI", "PASI"]))
def test_score_thresholds_and_the_scale_limit(n: int, measure: str) -> None:
    facts = extract_sentence(f"{measure} score of {n} or greater")
    assert [(t.measure, t.op, t.value) for t in facts.thresholds] == [(measure, ">=", n)]
    assert extract_sentence(f"{measure} score of {n + 72} or greater").thresholds == ()


@given(st.integers(1, 99))
def test_minimum_ages(n: int) -> None:
    for sentence in (
        f"Patient is {n} years of age or older",
        f"Member is aged {n} years and older",
    ):
        ages = extract_sentence(sentence).age_limits
        assert [(a.op, a.years) for a in ages] == [(">=", n)]


@given(st.integers(2, 99))
def test_under_n_is_at_most_n_minus_one(n: int) -> None:
    ages = extract_sentence(f"For patients under {n}, dosing is weight-based.").age_limits
    assert [(a.op, a.years) for a in ages] == [("<=", n - 1)]


@given(st.integers(1, 36))
def test_approval_lengths(n: int) -> None:
    facts = extract_sentence(f"Authorization will be issued for {n} months.")
    assert [(a.phase, a.days) for a in facts.approval_periods] == [("initial", months_to_days(n))]


@given(st.integers(10000, 99000), st.integers(0, 120))
def test_code_ranges_expand_only_when_small(low: int, width: int) -> None:
    high = low + width
    facts = extract_sentence(f"CPT codes {low}-{high} are covered.")
    codes = [c.code for c in facts.codes]
    if width == 0:
        assert codes == [str(low)]
    elif width < MAX_RANGE_EXPANSION:
        assert codes == [str(n) for n in range(low, high + 1)]
    else:
        assert codes == [str(low), str(high)]


@given(st.text(max_size=300))
def test_any_text_is_read_without_error(text: str) -> None:
    context = SentenceContext(drug="dupilumab", indication="atopic dermatitis", section="S")
    facts = extract_sentence(text, context)
    for item in facts.items():
        evidence = getattr(item, "evidence", None)
        assert evidence is None or (evidence.sentence, evidence.section) == (text, "S")
    for code in facts.codes:
        assert code_system(code.code) is code.system
    for step in facts.step_therapy:
        assert step.count_required >= 1
        assert step.min_duration_days is None or step.min_duration_days > 0


@given(
    st.integers(1900, 2099),
    st.integers(1, 999),
    st.sampled_from(["mg", "mcg", "units", "%"]),
)
def test_years_and_doses_are_not_codes(year: int, dose: int, unit: str) -> None:
    sentence = f"Codes were updated in {year}; administer {dose:05d} {unit} per dose."
    assert extract_sentence(sentence).codes == ()


def _dotted_icd10_cm_codes() -> list[str]:
    """ICD-10-CM codes from the maintained code set the extractor validates against
    (a code of the right shape that ICD-10-CM does not have is not a code)."""
    with warnings.catch_warnings():  # the package loads its data through a deprecated API
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm as icd

        every = icd.get_all_codes(with_dots=True)  # categories, chapters and codes
    return [c for c in every[::37] if "." in c]  # every 37th: dotted codes of all chapters


@given(st.sampled_from(_dotted_icd10_cm_codes()))
def test_dotted_icd10_codes_in_a_diagnosis_sentence(code: str) -> None:
    facts = extract_sentence(f"ICD-10-CM diagnosis code {code} is covered.")
    assert [(c.system, c.code) for c in facts.codes] == [(CodeSystem.ICD10, code)]
