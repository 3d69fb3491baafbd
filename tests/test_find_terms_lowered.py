"""`find_terms` searching lower-cased ASCII text case-sensitively finds what the case-insensitive
search finds: the same mentions, at the same places, in every vocabulary the extractor uses."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diffing.extract import sentences, steps, vocabulary
from diffing.extract.folded import lowered_source
from diffing.extract.vocabulary import Term, TermMatch

VOCABULARIES = {
    "DRUGS": vocabulary.DRUGS,
    "INDICATIONS": vocabulary.INDICATIONS,
    "PREREQUISITES": vocabulary.PREREQUISITES,
    "SPECIALTIES": vocabulary.SPECIALTIES,
    "STEP_TERMS": steps._STEP_TERMS,
    "GAP_TERMS": sentences._GAP_TERMS,
}


def _case_insensitive_search(text: str, terms: tuple[Term, ...]) -> list[TermMatch]:
    """`_find_terms` as it was before the lower-cased search: `anywhere` searched in `text`."""
    compiled = vocabulary._patterns(terms)
    chosen: list[TermMatch] = []
    position = 0
    while (found := compiled.anywhere.search(text, position)) is not None:
        start = found.start()
        best: TermMatch | None = None
        for pattern, term in compiled.starting_with(text[start : start + 1]):
            match = pattern.match(text, start)
            if match is not None and (best is None or match.end() > best.end):
                best = TermMatch(start=start, end=match.end(), term=term, text=match.group(0))
        if best is None:
            position = start + 1
            continue
        chosen.append(best)
        position = best.end
    return chosen


@pytest.mark.parametrize("name", VOCABULARIES)
def test_every_vocabulary_is_searched_lower_cased(name: str) -> None:
    assert vocabulary._patterns(VOCABULARIES[name]).lowered is not None


def _mentions(terms: tuple[Term, ...]) -> st.SearchStrategy[str]:
    aliases = [alias for term in terms for alias in term.aliases]
    return st.sampled_from(aliases).flatmap(
        lambda alias: st.from_regex(re.compile(alias, re.IGNORECASE), fullmatch=True)
    )


def _case(text: str, how: int) -> str:
    return (text, text.lower(), text.upper(), text.title(), text.swapcase())[how]


_GLUE = st.sampled_from(
    [" ", "  ", "-", ", ", " and ", "(", ")", "x", "9", "_", "\n", " AD ", " ad ", ". The "]
)


@pytest.mark.parametrize("name", VOCABULARIES)
@given(data=st.data())
def test_mentions_in_any_case_found_alike(name: str, data: st.DataObject) -> None:
    terms = VOCABULARIES[name]
    pieces = data.draw(st.lists(st.tuples(_mentions(terms), _GLUE), min_size=1, max_size=6))
    how = data.draw(st.integers(0, 4))
    text = "".join(_case(mention, how) + glue for mention, glue in pieces)
    assert vocabulary._find_terms(text, terms) == _case_insensitive_search(text, terms)


SAMPLES = [
    "Trial of Dupixent (dupilumab) or ADBRY; TCSs and TCIs; topical corticosteroids.",
    "AD, PsO, PsA, HS, CSU, Ad, ad, psa, Hs: atopic dermatitis, Atopic Dermatitis",
    "an ENT or otolaryngologist, dermatologists; ent, Ent",
    "narrow band UVB phototherapy, NB-UVB phototherapy, nb-uvb PHOTOTHERAPY, UV light therapy",
    "ustekinumab-auub, USTEKINUMAB-TTWE, Ustekinumab-X, humira-adalimumab",
    "café Dupixent naïve AD — Ebglyss",  # not ASCII: the case-insensitive search itself
    "",
]


@pytest.mark.parametrize("text", SAMPLES)
@pytest.mark.parametrize("name", VOCABULARIES)
def test_samples_found_alike(name: str, text: str) -> None:
    terms = VOCABULARIES[name]
    assert vocabulary._find_terms(text, terms) == _case_insensitive_search(text, terms)


@pytest.mark.parametrize(
    ("alias", "matches", "misses"),
    [
        ("Dupixent", ["dupixent"], ["dupixen"]),
        (r"ustekinumab-[a-z]{4}", ["ustekinumab-auub"], ["ustekinumab-auu"]),
        ("(?-i:TCSs?)", ["tcs", "tcss"], ["tc"]),  # case-sensitive: relaxed
        (r"PDE-?4\s+X", ["pde-4  x", "pde4\nx"], ["pde-4x"]),
        ("[A-C]", ["a", "c"], ["d", "["]),
        ("[^X]b", ["ab", "-b"], ["xb"]),
        ("(?<!Pustular )psoriasis(?! arthritis)", ["psoriasis"], ["psoriasis arthritis"]),
        ("TNF[- ]?(?:alpha|α)", ["tnf-alpha"], ["tnf-a"]),  # α matches no ASCII character
        ("\u212a", ["k"], ["c"]),  # the Kelvin sign is a "k" case-insensitively
        ("[^\u212a]", ["c"], ["k"]),
    ],
)
def test_lowered_source(alias: str, matches: list[str], misses: list[str]) -> None:
    source = lowered_source(alias)
    assert source is not None
    for text in matches:
        assert re.fullmatch(source, text), (source, text)
    for text in misses:
        assert not re.fullmatch(source, text), (source, text)


@pytest.mark.parametrize(
    "alias", ["(?-i:[^a])", "(?-i:x[^a])", "(?!(?-i:A))b", "(a)\\1", "(?s:.)", "(?m)^x", "(?x)a b"]
)
def test_lowered_source_refuses_what_it_cannot_keep(alias: str) -> None:
    assert lowered_source(alias) is None


@given(st.text(alphabet="aAbBcCdDeExX-_ ()9\n\\[]^", max_size=30))
def test_lowered_matches_where_the_original_does(text: str) -> None:
    aliases = ["(?:ab|AC)+-?x", "[a-c]{2}", r"\bde\b", "(?-i:AB)c", "a.c", "E*?x", "[^B]a", "[^é]"]
    for alias in [*aliases, "(?<!a)b(?!-)", "(?<=(?-i:A))b", "(?=(?-i:AB))..", "(?!ab)[^x]"]:
        original = re.compile(alias, re.IGNORECASE)
        source = lowered_source(alias)
        assert source is not None
        lowered = re.compile(source)
        for start in range(len(text) + 1):
            match = original.match(text, start)
            if match is not None:
                assert lowered.match(text.lower(), start) is not None, (alias, text, start)
