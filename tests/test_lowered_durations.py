"""`find_durations` searches lower-cased ASCII text with `_DURATION` rewritten exact
(`diffing.extract.folded.lowered_pattern`): the same durations as the case-insensitive search."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diffing.extract import durations
from diffing.extract.folded import lowered_pattern

TEXTS = [
    "at least 8 weeks; a 3-month trial; ≥ 28 consecutive days; within the past 90 days",
    "every 2 weeks, no more than 6 Months, up to twelve MONTHS, 12 years of age, ages 6 yrs",
    "Minimum Duration Of At Least 4 Wks-trial; twenty-one days supply; 2.5 mos; Over 1 Year",
    "a minimum of three (3) consecutive months; 6 months prior to the request; q 4 weeks",
    "naïve for 12 weeks; café 3 months",  # not ASCII: the case-insensitive search itself
    "",
]


def _case_insensitive(text: str, monkeypatch: pytest.MonkeyPatch) -> list[durations.Duration]:
    with monkeypatch.context() as patched:
        patched.setattr(durations, "_DURATION_LOWERED", None)
        return durations.find_durations(text)


def test_durations_are_searched_lower_cased() -> None:
    assert durations._DURATION_LOWERED is not None


@pytest.mark.parametrize("how", range(4))
@pytest.mark.parametrize("text", TEXTS)
def test_durations_alike(text: str, how: int, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (text, text.upper(), text.lower(), text.title())[how]
    assert durations.find_durations(text) == _case_insensitive(text, monkeypatch)


_WORDS = st.sampled_from(
    ["at least", "Minimum of", "up to", "8", "Twenty", "-", "one", " ", "  ", "(3)", "Weeks",
     "mos", "Consecutive", "trial", "Supply", "days", "yr", "≥", "<", ".", "5.5", "x", "\n"]
)  # fmt: skip


@given(st.lists(_WORDS, max_size=14))
def test_lowered_duration_matches_alike(words: list[str]) -> None:
    text = "".join(words)
    lowered = durations._DURATION_LOWERED
    assert lowered is not None
    if not text.isascii():
        return
    original = [(m.span(), m.regs) for m in durations._DURATION.finditer(text)]
    assert [(m.span(), m.regs) for m in lowered.finditer(text.lower())] == original


def test_lowered_pattern_keeps_groups_and_refuses_case_sensitive_parts() -> None:
    pattern = re.compile(r"(?P<a>X)(y)?(?:(?P<b>Z))", re.IGNORECASE)
    lowered = lowered_pattern(pattern)
    assert lowered is not None and lowered.groupindex == pattern.groupindex
    assert lowered.groups == pattern.groups
    assert lowered_pattern(re.compile(r"(?-i:X)y", re.IGNORECASE)) is None
    assert lowered_pattern(re.compile(r"x", re.IGNORECASE | re.MULTILINE)) is None
