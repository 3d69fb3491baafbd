"""The cheap first searches of the extractor and the parser answer as the searches they spare.

Each one is only worth having if it never changes an answer: a pre-check must find something in
every text where the patterns behind it would, a search started later must find what the whole
search finds, and the lower-cased ASCII patterns must match where the case-insensitive ones do.
"""

from __future__ import annotations

import itertools
import re

import pytest

from diffing.extract import durations, steps
from diffing.extract.vocabulary import any_of
from diffing.parse import meta
from diffing.tree.leaves import CONNECTOR_END, strip_connector

SENTENCES = [
    "Patient has tried at least two of the following for 8 weeks; and",
    "Both agents were tried; OR",
    "The member is 6 months of age or older; and",
    "Approved for up to 12 months, renewed every 6 Mos. **AND**",
    "No more than one of these therapies -or-",
    "More moderate disease is not a duration.",
    "a 3-month trial of ONE OF THE FOLLOWING conventional systemic agents ,",
    "Either of the following:",
    "Effective Date: 05/01/2025 Last Reviewed 2026-02-15; Next Review Date: May 1, 2027",
    "ORIGINAL EFFECTIVE DATE 01/01/2020 effective   date 03/04/2021 Review Date 6/6/2026",
    "anticipated review date 5/5/25, scheduled review 7/7/2027, Date Published 1/2/2024",
    "date of last review 02/03/2024 publication date 2024-03-04 next review 2030-01-01",
    "",
    "   ",
    "and",
    "x or\n",
    "five different prior biologic agents, or any one of the following",
]


def _variants(text: str) -> list[str]:
    return [text, text.upper(), text.lower(), text.title(), f"  {text}  \n"]


@pytest.mark.parametrize("text", [v for s in SENTENCES for v in _variants(s)])
def test_connector_searched_from_the_tail_as_from_the_start(text: str) -> None:
    whole = CONNECTOR_END.search(text)
    stripped, connector = strip_connector(text)
    if whole is None:
        assert (stripped, connector) == (text.strip(), None)
    else:
        assert stripped == text[: whole.start()].strip()
        assert (connector is None) == (re.search(r"and|or", whole.group(0), re.I) is None)


@pytest.mark.parametrize("text", [v for s in SENTENCES for v in _variants(s)])
def test_ascii_date_labels_match_where_the_case_insensitive_ones_do(text: str) -> None:
    assert text.isascii()
    for (key, folded), (same, label) in zip(
        meta._ASCII_DATE_LABEL_PATTERNS, meta._DATE_LABEL_PATTERNS, strict=True
    ):
        assert key == same
        assert [m.span() for m in folded.finditer(text.lower())] == [
            m.span() for m in label.finditer(text)
        ]
        if label.search(text):
            assert meta._DATE_LABEL_WORD.search(text)


def test_header_meta_reads_ascii_and_other_text_alike() -> None:
    text = "Effective Date: 05/01/2025\nLast Review: 02/15/2026\nPolicy Number: 2026D0045A"
    expected = [
        ("effective_date", "2025-05-01"),
        ("last_review", "2026-02-15"),
        ("policy_number", "2026D0045A"),
    ]
    assert meta.header_meta(text) == expected
    assert meta.header_meta(text + "\n– Aetna®") == expected  # the non-ASCII path


@pytest.mark.parametrize("text", [v for s in SENTENCES for v in _variants(s)])
def test_unit_and_count_prechecks_find_what_the_patterns_find(text: str) -> None:
    if durations._DURATION.search(text):
        assert durations._ANY_UNIT.search(text)
    if any(pattern.search(text) for pattern, _ in steps._COUNT_PATTERNS):
        assert steps._ANY_COUNT.search(text)


def test_any_of_finds_where_any_pattern_finds() -> None:
    patterns = [
        re.compile(r"(?P<n>\d+) weeks?", re.I),
        re.compile(r"(?<![\w-])both\b", re.I),
        re.compile(r"(?-i:BSA) of (?P<n>\d+)", re.I),
    ]
    either = any_of(patterns)
    words = ["3 weeks", "both", "BSA of 10", "bsa of 10", "x-both", "weeks", "1 WEEK"]
    for a, b in itertools.product(words, repeat=2):
        text = f"{a} and {b}"
        assert bool(either.search(text)) == any(p.search(text) for p in patterns)


def test_any_of_refuses_what_it_cannot_join() -> None:
    with pytest.raises(ValueError, match="flags"):
        any_of([re.compile("a", re.I), re.compile("b")])
    with pytest.raises(ValueError, match="back-references"):
        any_of([re.compile(r"(?P<x>a)(?P=x)")])
