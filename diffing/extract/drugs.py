"""Drug names from any policy, not a list: generic names by their USAN stems, "Brand (generic)"
pairs, and the dermatology dictionary of `vocabulary.DRUGS` for brands without a stem.

    drug_names(text) -> list[DrugName]      # canonical generic, lower case, with the brand seen

USAN stems name the drug's class: -mab antibodies, -tinib/-nib kinase inhibitors, -ciclib CDK
inhibitors, -parib PARP inhibitors, -cept receptor fusions … A word ending in a stem is a
generic name when it is long enough and not an ordinary English word with the same ending.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from diffing.extract.folded import WORD_START, after_non_word, finditer_in_place, lowered_pattern
from diffing.extract.memo import per_text
from diffing.extract.vocabulary import DRUGS, find_terms

# Stem → class, longest first where stems nest (-tinib before -nib).
STEMS: tuple[tuple[str, str], ...] = (
    ("ciclib", "CDK inhibitor"),
    ("parib", "PARP inhibitor"),
    ("rafenib", "RAF inhibitor"),
    ("tinib", "tyrosine kinase inhibitor"),
    ("lisib", "PI3K inhibitor"),
    ("degib", "hedgehog pathway inhibitor"),
    ("zomib", "proteasome inhibitor"),
    ("rasib", "KRAS inhibitor"),
    ("estrant", "estrogen receptor antagonist"),
    ("nib", "kinase inhibitor"),
    ("ximab", "chimeric monoclonal antibody"),
    ("zumab", "humanized monoclonal antibody"),
    ("umab", "human monoclonal antibody"),
    ("mab", "monoclonal antibody"),
    ("cept", "receptor fusion protein"),
    ("leucel", "CAR-T cell therapy"),
    ("cabtagene", "CAR-T cell therapy"),
    ("gliflozin", "SGLT2 inhibitor"),
    ("gliptin", "DPP-4 inhibitor"),
    ("glutide", "GLP-1 receptor agonist"),
    ("tide", "peptide"),
    ("vastatin", "statin"),
    ("sartan", "angiotensin II receptor blocker"),
    ("pril", "ACE inhibitor"),
    ("olol", "beta blocker"),
    ("dipine", "calcium channel blocker"),
    ("prazole", "proton pump inhibitor"),
    ("xaban", "factor Xa inhibitor"),
    ("gatran", "thrombin inhibitor"),
    ("tegravir", "integrase inhibitor"),
    ("previr", "HCV protease inhibitor"),
    ("buvir", "HCV polymerase inhibitor"),
    ("asvir", "HCV NS5A inhibitor"),
    ("citinib", "JAK inhibitor"),
    ("dronate", "bisphosphonate"),
    ("triptan", "serotonin agonist"),
    ("setron", "5-HT3 antagonist"),
    ("lukast", "leukotriene receptor antagonist"),
    ("oxetine", "antidepressant"),
    ("piprazole", "antipsychotic"),
    ("peridone", "antipsychotic"),
    ("apine", "antipsychotic"),
)
_MIN_LENGTH = 7
_MAX_LENGTH = 20  # longer is two words glued ("chlorambucilobinutuzumab")
# Ordinary words that end like a stem.
_NOT_DRUGS = frozenset(
    {
        "concept",
        "accept",
        "except",
        "intercept",
        "precept",
        "percept",
        "peptide",
        "nucleotide",
        "oligonucleotide",
        "polypeptide",
        "dipeptide",
        "tide",
        "riptide",
        "eventide",
        "bromide",
    }
)
# Antibody-drug conjugates carry a prefix before the antibody: "fam-trastuzumab deruxtecan".
_CONJUGATE_PREFIX = re.compile(r"^(?:fam|ado)-", re.IGNORECASE)
# Biochemistry words that end like the peptide stem: "propeptide", "polynucleotide".
_NOT_DRUG_ENDINGS = ("peptide", "nucleotide")
# A word that may be a generic name: letters, with an optional conjugate prefix and biosimilar
# suffix. Which words end in a stem is `_ends_in_stem`'s question, not the pattern's: an
# alternation of the stems after `[a-z]+` backtracked through every stem at every letter.
_WORD = re.compile(
    r"(?<![\w-])(?:(?:fam|ado)-)?([A-Za-z][a-z]++)(?:-[a-z]{4})?(?!\w)", re.IGNORECASE
)
_STEM_ENDINGS = tuple(stem for stem, _ in STEMS)
# `_WORD` for words that end in a stem, two letters or more before it (what `_ends_in_stem`
# asks; it is asked still): the stems looked behind once at the end of each word, by length
# (a look-behind has one width), so the words without one stay in the regex engine.
_STEM_WORD = re.compile(
    _WORD.pattern.replace(
        "([A-Za-z][a-z]++)",
        "([A-Za-z][a-z]++)(?:"
        + "|".join(
            f"(?<=[A-Za-z][a-z](?:{'|'.join(s for s in _STEM_ENDINGS if len(s) == size)}))"
            for size in sorted({len(s) for s in _STEM_ENDINGS})
        )
        + ")",
    ),
    _WORD.flags,
)
# The same for lower-cased ASCII text, case-sensitive (`diffing.extract.folded`; faster).
_STEM_WORD_LOWERED = lowered_pattern(_STEM_WORD)
# `_STEM_WORD_LOWERED` without its look-behind, after the character it asks about
# (`folded.after_non_word`): a match one character early, its group 1 the word.
_STEM_WORD_REST = lowered_pattern(
    re.compile(_STEM_WORD.pattern.removeprefix(WORD_START), _STEM_WORD.flags)
)
_STEM_WORD_AFTER = (
    None
    if _STEM_WORD_REST is None or not _STEM_WORD.pattern.startswith(WORD_START)
    else after_non_word(_STEM_WORD_REST.pattern)
)
# The stem pattern itself, for words `str.lower` does not fold as `re.IGNORECASE` does
# ("ſ", the Kelvin sign, dotted and dotless i).
_STEM_TAIL = re.compile(r"[A-Za-z][a-z]+(?:" + "|".join(_STEM_ENDINGS) + ")", re.IGNORECASE)
# "Brand (generic)", "Brand® (generic-xxxx)": the brand names the generic.
_BRAND_GENERIC = re.compile(
    r"(?<![\w-])(?P<brand>[A-Z][A-Za-z0-9-]{2,}(?:\s[A-Z][A-Za-z0-9-]+)?)\s*[®™]?\s*"
    r"\((?P<generic>[a-z][a-z]+(?:[\s-][a-z]+){0,3})\)"
)

# What every `_BRAND_GENERIC` has, searched for first (its literal start makes it quick; most
# paragraphs have no generic name in brackets).
_GENERIC_OPENING = re.compile(r"\([a-z]")


@dataclass(frozen=True, kw_only=True, slots=True)
class DrugName:
    name: str  # canonical generic, lower case: "palbociclib"
    drug_class: str | None = None
    brand: str | None = None  # the brand the text paired it with: "Ibrance"


def stem_class(word: str) -> str | None:
    """The class a generic name's USAN stem gives, or None when the word is no generic name."""
    lower = _CONJUGATE_PREFIX.sub("", word.lower())
    base = re.sub(r"-[a-z]{4}$", "", lower)  # biosimilar suffix: "infliximab-dyyb"
    if not _MIN_LENGTH <= len(base) <= _MAX_LENGTH:
        return None
    if base in _NOT_DRUGS or base.endswith(_NOT_DRUG_ENDINGS):
        return None
    return next((cls for stem, cls in STEMS if base.endswith(stem)), None)


def _ends_in_stem(word: str) -> bool:
    """Whether `word` (letters only) is two or more letters then a stem, case-insensitively."""
    if not word.isascii():
        return _STEM_TAIL.fullmatch(word) is not None
    lower = word.lower()
    if not lower.endswith(_STEM_ENDINGS):
        return False
    return any(lower.endswith(stem) and len(lower) >= len(stem) + 2 for stem in _STEM_ENDINGS)


def drug_names(text: str) -> list[DrugName]:
    """Every drug a text names, once, in order of first mention."""
    found: dict[str, DrugName] = {}

    def add(name: str, drug_class: str | None, brand: str | None) -> None:
        name = re.sub(r"-[a-z]{4}$", "", _CONJUGATE_PREFIX.sub("", name.lower()))
        known = found.get(name)
        if known is None or (brand and not known.brand):
            found[name] = DrugName(name=name, drug_class=drug_class, brand=brand)

    brands = _BRAND_GENERIC.finditer(text) if _GENERIC_OPENING.search(text) else ()
    for match in brands:
        generic = match.group("generic")
        drug_class = stem_class(generic.split()[0])
        if drug_class is not None:
            add(generic.split()[0], drug_class, _brand(match.group("brand")))
    # A word read once: read again it adds nothing (a name already found, without a brand).
    read: set[tuple[str, str]] = set()
    for word, whole in _stem_words(text):
        if (word, whole) in read:
            continue
        read.add((word, whole))
        if not _ends_in_stem(word):
            continue
        drug_class = stem_class(whole)
        if drug_class is not None:
            add(word, drug_class, None)
    for term in find_terms(text, DRUGS):
        add(term.canonical, term.term.drug_class, None)
    return list(found.values())


# `drug_names` remembered for short texts (`diffing.extract.memo`): a document's table rows and
# title, most of them a payer's recurring ones (a section's whole text is read each time).
remembered_drug_names = per_text(drug_names)


def _stem_words(text: str) -> Iterator[tuple[str, str]]:
    """(word, whole match) of each match of `_STEM_WORD` in `text`, in order: in ASCII text
    searched lower-cased, past the text's start as `_STEM_WORD_AFTER` (the same matches, a
    character early; `folded.after_non_word`); the texts read in `text` by span."""
    if _STEM_WORD_LOWERED is None or _STEM_WORD_AFTER is None or not text.isascii():
        for match in finditer_in_place(_STEM_WORD, _STEM_WORD_LOWERED, text):
            yield text[match.start(1) : match.end(1)], text[match.start() : match.end()]
        return
    low = text.lower()
    position = 0
    first = _STEM_WORD_LOWERED.match(low)
    if first is not None:
        yield text[first.start(1) : first.end(1)], text[: first.end()]
        position = first.end()
    # A match ends in a letter, so the next starts a character after it at the earliest.
    for match in _STEM_WORD_AFTER.finditer(low, position):
        yield text[match.start(1) : match.end(1)], text[match.start() + 1 : match.end()]


# A table cell read without its borders glues the brand to the cell before it: "NSCLCMETTabrecta",
# "Breast CancerPIK3CAPiqray", "ATM\nLynparza". The brand is the capitalised word at the end.
_GLUED_BRAND = re.compile(r"(?:(?<=[A-Z0-9])|(?<=\s))(?P<brand>[A-Z][a-z][a-z0-9-]*)$")


def _brand(text: str) -> str:
    brand = " ".join(text.split())
    if re.search(r"[A-Z0-9][A-Z][a-z]", brand) or "\n" in text:
        glued = _GLUED_BRAND.search(brand)
        if glued:
            return glued.group("brand")
    return brand
