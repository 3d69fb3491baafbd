"""Vocabulary lookups of issue 17 that try only the aliases starting with the mention's first
letter choose what trying every alias chose."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from diffing.extract.vocabulary import (
    DRUGS,
    INDICATIONS,
    PREREQUISITES,
    SPECIALTIES,
    Term,
    TermMatch,
    _find_terms,
    _patterns,
)


def _flat(terms: tuple[Term, ...]) -> re.Pattern[str]:
    """Where a mention starts, as it was found: one flat alternation of every alias."""
    aliases = [alias for term in terms for alias in term.aliases]
    return re.compile(
        r"(?<![\w-])(?:" + "|".join(f"(?:{alias})" for alias in aliases) + r")(?![\w-])",
        re.IGNORECASE,
    )


def _every_alias(text: str, terms: tuple[Term, ...]) -> list[TermMatch]:
    """The lookup as it was: at each mention (found by the flat alternation), every alias of
    the vocabulary, longest wins."""
    compiled = _patterns(terms)
    anywhere = _flat(terms)
    chosen: list[TermMatch] = []
    position = 0
    while (found := anywhere.search(text, position)) is not None:
        start = found.start()
        best: TermMatch | None = None
        for pattern, term in compiled.each:
            match = pattern.match(text, start)
            if match is not None and (best is None or match.end() > best.end):
                best = TermMatch(start=start, end=match.end(), term=term, text=match.group(0))
        assert best is not None
        chosen.append(best)
        position = best.end
    return chosen


_VOCABULARIES = (DRUGS, INDICATIONS, PREREQUISITES, SPECIALTIES)
_DRUG_WORDS = re.findall(r"[A-Za-z]+", " ".join(t.canonical for t in DRUGS))[:40]
_WORDS = st.sampled_from(
    [
        *("Humira", "adalimumab", "Dupixent", "atopic dermatitis", "psoriasis", "ENT", "ent"),
        *("clinical immunologist", "allergy", "\u212aelvin", "\u017fkin", " ", "-", ", ", "x"),
        *_DRUG_WORDS,
    ]
)


@settings(max_examples=300)
@given(st.lists(_WORDS, max_size=12).map("".join), st.sampled_from(_VOCABULARIES))
def test_the_first_letter_shortcut_chooses_what_every_alias_chose(
    text: str, terms: tuple[Term, ...]
) -> None:
    assert _find_terms(text, terms) == _every_alias(text, terms)


@settings(max_examples=300)
@given(st.lists(_WORDS, max_size=12).map("".join), st.sampled_from(_VOCABULARIES))
def test_the_letter_dispatched_alternation_starts_where_the_flat_one_does(
    text: str, terms: tuple[Term, ...]
) -> None:
    """Only where a mention starts is read of the alternation (the aliases decide its end), so
    from every position the two must find the same next start."""
    dispatched, flat = _patterns(terms).anywhere, _flat(terms)
    for position in range(len(text) + 1):
        one, other = dispatched.search(text, position), flat.search(text, position)
        assert (one and one.start()) == (other and other.start())


def test_a_mention_opening_with_a_group_or_a_case_sensitive_alias_is_still_found() -> None:
    text = "Seen by an ENT or a clinical immunologist for moderate psoriasis."
    found = [m.canonical for m in _find_terms(text, SPECIALTIES)]
    assert found == ["otolaryngologist", "immunologist"]
    assert _find_terms(text, SPECIALTIES) == _every_alias(text, SPECIALTIES)
