"""The drug-stem word scan of issue 17 finds what the stem alternation it replaced found."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from diffing.extract.drugs import _WORD, STEMS, _ends_in_stem, drug_names, stem_class

# The pattern `drug_names` used before: the stems as an alternation after the word's letters.
_REFERENCE = re.compile(
    r"(?<![\w-])(?:(?:fam|ado)-)?([A-Za-z][a-z]+(?:" + "|".join(stem for stem, _ in STEMS) + r"))"
    r"(?:-[a-z]{4})?(?![\w])",
    re.IGNORECASE,
)


def _reference(text: str) -> list[tuple[int, str, str]]:
    return [(m.start(), m.group(0), m.group(1)) for m in _REFERENCE.finditer(text)]


def _scan(text: str) -> list[tuple[int, str, str]]:
    return [
        (m.start(), m.group(0), m.group(1))
        for m in _WORD.finditer(text)
        if _ends_in_stem(m.group(1))
    ]


# Letters `re.IGNORECASE` folds unlike `str.lower` (long s, Kelvin sign, dotted and dotless i),
# stems, their upper case, the conjugate prefixes and what ends a word.
_PIECES = st.sampled_from(
    [stem for stem, _ in STEMS]
    + [stem.upper() for stem, _ in STEMS]
    + ["fam-", "ado-", "FAM-", "-dyyb", "-", " ", "\n", "1", "_", "é", "(", ")", "/"]
    + ["\u017f", "\u212a", "\u0130", "\u0131", "ra", "Tras", "x", "ab", "Q", "glif", "lozin"]
)


@settings(max_examples=600)
@given(st.lists(_PIECES, max_size=14).map("".join))
def test_the_word_scan_matches_exactly_where_the_stem_alternation_did(text: str) -> None:
    assert _scan(text) == _reference(text)


@given(st.text(alphabet="abcilmnptuxzAIKMNT\u017f\u212a\u0130\u0131 -1", max_size=40))
def test_the_word_scan_agrees_on_arbitrary_letters(text: str) -> None:
    assert _scan(text) == _reference(text)


def test_ends_in_stem_wants_two_letters_before_the_stem() -> None:
    assert not _ends_in_stem("xgliflozin")  # `stem_class` alone would call it an SGLT2 inhibitor
    assert stem_class("xgliflozin") == "SGLT2 inhibitor"
    assert _ends_in_stem("dapagliflozin")
    assert _ends_in_stem("ADALIMUMAB")
    assert _ends_in_stem("lu\u212aast") == (_REFERENCE.fullmatch("lu\u212aast") is not None)


def test_drug_names_reads_prefixes_suffixes_and_case_as_before() -> None:
    text = (
        "Fam-trastuzumab deruxtecan, infliximab-dyyb and PALBOCICLIB; not concept or "
        "xgliflozin, nor adalimumab1 or ado-something."
    )
    assert [(d.name, d.drug_class) for d in drug_names(text)] == [
        ("trastuzumab", "humanized monoclonal antibody"),
        ("infliximab", "chimeric monoclonal antibody"),
        ("palbociclib", "CDK inhibitor"),
    ]
