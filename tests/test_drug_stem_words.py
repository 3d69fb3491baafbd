"""`drug_names` reads only the words that end in a stem (`_STEM_WORD`, in lower-cased ASCII text
`_STEM_WORD_LOWERED`): what it finds must be what reading every word (`_WORD`, each asked
`_ends_in_stem`) finds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diffing.extract import drugs

TEXTS = [
    "Dupixent (dupilumab) after methotrexate, cyclosporine or Otezla (apremilast); tofacitinib",
    "fam-trastuzumab deruxtecan-nxki, ado-trastuzumab emtansine; infliximab-dyyb; mab; xmab",
    "PROPEPTIDE polynucleotide ruxolitinib-cream upadacitinib's abrocitinib- -baricitinib",
    "ſecukinumab, ıxekizumab, \u212aetoconazole; naïve ustekinumab-auub2 Ustekinumab_ttwe",
    "risankizumab-rzaa (Skyrizi), Cosentyx® (secukinumab) and Humira (adalimumab-atto)",
    "",
]


def _reading_every_word(text: str, monkeypatch: pytest.MonkeyPatch) -> list[drugs.DrugName]:
    with monkeypatch.context() as patched:
        patched.setattr(drugs, "_STEM_WORD", drugs._WORD)
        patched.setattr(drugs, "_STEM_WORD_LOWERED", None)
        return drugs.drug_names(text)


@pytest.mark.parametrize("how", range(4))
@pytest.mark.parametrize("text", TEXTS)
def test_stem_words_read_alike(text: str, how: int, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (text, text.upper(), text.lower(), text.title())[how]
    assert drugs.drug_names(text) == _reading_every_word(text, monkeypatch)


_PIECES = st.sampled_from(
    [
        *drugs._STEM_ENDINGS,
        "MAB",
        "Nib",
        "a",
        "ab",
        "X",
        "fam-",
        "ADO-",
        "-DYYB",
        "ado-",
        "-",
        "-dyyb",
        " ",
        "(",
        ")",
        "_",
        "9",
    ]
)


@given(st.lists(_PIECES, max_size=12))
def test_stem_words_found_alike(pieces: list[str]) -> None:
    text = "".join(pieces)
    every = [m.group(1) for m in drugs._WORD.finditer(text) if drugs._ends_in_stem(m.group(1))]
    chosen = [m.group(1) for m in drugs._STEM_WORD.finditer(text)]
    assert chosen == every
    lowered = drugs._STEM_WORD_LOWERED
    assert lowered is not None
    if text.isascii():
        spans = [m.regs for m in drugs._STEM_WORD.finditer(text)]
        assert [m.regs for m in lowered.finditer(text.lower())] == spans
