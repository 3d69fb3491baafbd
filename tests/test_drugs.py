"""diffing.extract.drugs: drug names by USAN stem and brand (generic) pairs, not a fixed list."""

from __future__ import annotations

from diffing.extract.drugs import drug_names, stem_class


def test_stems_and_brand_generic_pairs() -> None:
    text = (
        "Ibrance (palbociclib) or Kisqali (ribociclib) with letrozole; Breyanzi "
        "(lisocabtagene maraleucel); infliximab-dyyb; osimertinib after erlotinib; Lynparza "
        "(olaparib). This concept is not a drug; Dupixent is."
    )
    names = {d.name: d for d in drug_names(text)}
    assert {
        "palbociclib",
        "ribociclib",
        "osimertinib",
        "erlotinib",
        "olaparib",
        "infliximab",
    } <= set(names)
    assert names["palbociclib"].brand == "Ibrance"
    assert names["palbociclib"].drug_class == "CDK inhibitor"
    assert "dupilumab" in names  # the dictionary still names brands without a stem
    assert "concept" not in names and "letrozole" not in names


def test_ordinary_words_are_not_drugs() -> None:
    assert stem_class("accept") is None
    assert stem_class("peptide") is None
    assert stem_class("adalimumab-aaty") == "human monoclonal antibody"
