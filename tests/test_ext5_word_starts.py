"""A word start asked of the character before it (`folded.after_non_word`, `folded.word_start`)
finds what the look-behind ``(?<![\\w-])`` finds: the dictionary searches (`_next_start`) and the
stem words of `drug_names` (`_stem_words`) answer as the searches with the look-behind did."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffing.extract import drugs, steps, vocabulary
from diffing.extract.folded import after_non_word, finditer_in_place, word_start

_PIECES = st.sampled_from(
    [
        " ", "-", "_", ".", "(", "'", "9", "a", "ad", "AD", "mab", "dupilumab", "Dupixent",
        "fam-", "ado-", "-dyyb", "infliximab", "ruxolitinib cream", "topical ", "\u212a", "\u017f",
        "na\u00efve", "upadacitinib", "Otezla", "adalimumab-atto", "x", "\n", "tralokinumab-ldrm",
    ]
)  # fmt: skip
TEXTS = st.lists(_PIECES, max_size=14).map("".join) | st.text(max_size=40)


def _stem_words_with_the_look_behind(text: str) -> list[tuple[str, str]]:
    return [
        (text[m.start(1) : m.end(1)], text[m.start() : m.end()])
        for m in finditer_in_place(drugs._STEM_WORD, drugs._STEM_WORD_LOWERED, text)
    ]


def test_the_stem_words_are_searched_after_a_character() -> None:
    assert drugs._STEM_WORD_AFTER is not None


@settings(max_examples=500)
@given(TEXTS)
def test_stem_words_alike(text: str) -> None:
    for variant in (text, text.upper(), text.title()):
        assert list(drugs._stem_words(variant)) == _stem_words_with_the_look_behind(variant)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "dupilumab",
        "dupilumab dupilumab-x infliximab-dyyb",
        "-dupilumab _dupilumab 9dupilumab (dupilumab) fam-trastuzumab",
        "ado-trastuzumab emtansine.upadacitinib,abrocitinib",
    ],
)
def test_stem_words_alike_at_the_edges(text: str) -> None:
    assert list(drugs._stem_words(text)) == _stem_words_with_the_look_behind(text)


VOCABULARIES = [vocabulary.DRUGS, vocabulary.INDICATIONS, vocabulary.SPECIALTIES, steps._STEP_TERMS]


@settings(max_examples=300)
@given(TEXTS, st.sampled_from(VOCABULARIES), st.integers(min_value=0, max_value=45))
def test_word_start_finds_the_look_behinds_match(text: str, terms, position: int) -> None:  # type: ignore[no-untyped-def]
    compiled = vocabulary._patterns(terms)
    assert compiled.lowered is not None and compiled.lowered_after is not None
    low = text.lower()
    if not text.isascii():
        return
    position = min(position, len(low))
    expected = compiled.lowered.search(low, position)
    found = word_start(compiled.lowered, compiled.lowered_after, low, position)
    assert found == (None if expected is None else expected.start())


@settings(max_examples=300)
@given(TEXTS, st.sampled_from(VOCABULARIES))
def test_find_terms_alike(text: str, terms) -> None:  # type: ignore[no-untyped-def]
    """`_find_terms` as it searched before, `anywhere` itself, finds the same mentions."""
    compiled = vocabulary._patterns(terms)
    expected: list[vocabulary.TermMatch] = []
    position = 0
    while (found := compiled.anywhere.search(text, position)) is not None:
        start = found.start()
        best = None
        for pattern, term in compiled.starting_with(text[start : start + 1]):
            match = pattern.match(text, start)
            if match is not None and (best is None or match.end() > best.end):
                best = vocabulary.TermMatch(
                    start=start, end=match.end(), term=term, text=match.group(0)
                )
        if best is None:
            position = start + 1
            continue
        expected.append(best)
        position = best.end
    assert vocabulary._find_terms(text, terms) == expected


def test_after_non_word_matches_a_character_early() -> None:
    rest = r"(?:ab|b)(?![\w-])"
    with_look_behind = re.compile(r"(?<![\w-])" + rest)
    after = after_non_word(rest)
    for text in ["ab b", " ab", "-ab", "_ab", "9ab", "xab", "a b", "ab"]:
        expected = [m.start() for m in with_look_behind.finditer(text) if m.start() > 0]
        assert [m.start() + 1 for m in after.finditer(text)] == expected
