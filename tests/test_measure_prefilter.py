"""`find_thresholds` asks first whether a sentence names any measure (`names_a_measure`, in
lower-cased ASCII text case-sensitively): it must say so wherever one of the measures' own
patterns finds one, and the thresholds found must be those found without the question."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diffing.extract import measures

SENTENCES = [
    "BSA of at least 10% and EASI ≥ 16; IGA 3 or 4",
    "body surface area (BSA) involvement of 3% to 10%, easi 7, bsa 20 percent",
    "Hurley stage II or III; at least 3 abscess and inflammatory nodule (AN) count",
    "peak pruritus numeric rating scale (PP-NRS) ≥ 4, UAS7 of 16 or more, SALT 50",
    "EASI-75 response; PASI 90; DLQI > 10; sPGA 3; lesions at least 20 mm",
    "Eczema Area and Severity Index score of 16 or greater, café",
    "No measure here at all, just 10 mm and 2 cm lesions.",
    "",
]


def _variants(text: str) -> list[str]:
    return [text, text.lower(), text.upper(), text.title(), text.swapcase()]


def _without_question(text: str, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    with monkeypatch.context() as patched:
        patched.setattr(measures, "names_a_measure", lambda _text: True)
        return list(measures.find_thresholds(text))


@pytest.mark.parametrize("text", [v for s in SENTENCES for v in _variants(s)])
def test_thresholds_alike_with_the_question(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    named = any(pattern.search(text) for pattern, _ in measures._MEASURE_PATTERNS)
    assert not named or measures.names_a_measure(text)
    assert measures.find_thresholds(text) == _without_question(text, monkeypatch)


def test_the_question_is_asked_lower_cased() -> None:
    assert measures._ANY_MEASURE_LOWERED is not None


_NAMES = st.sampled_from([m.alias for m in measures.MEASURES]).flatmap(
    lambda alias: st.from_regex(re.compile(alias, re.IGNORECASE), fullmatch=True)
)
_GLUE = st.sampled_from([" ", " of 10 ", "-", "-7 ", "_", "x", " ≥ 3% ", "(", ")", "\n"])


@given(st.lists(st.tuples(_GLUE, _NAMES, _GLUE), min_size=1, max_size=4), st.integers(0, 4))
def test_names_found_in_any_case(pieces: list[tuple[str, str, str]], how: int) -> None:
    text = "".join(before + name + after for before, name, after in pieces)
    text = (text, text.lower(), text.upper(), text.title(), text.swapcase())[how]
    if any(pattern.search(text) for pattern, _ in measures._MEASURE_PATTERNS):
        assert measures.names_a_measure(text)
