"""The dictionaries the extractor matches against: drugs, prerequisite therapies, indications,
prescriber specialties. Dermatology first; every name comes out canonical and lower case.

Aliases are regular expressions (matched case-insensitively, whole words). Abbreviations that are
also ordinary words in another case ("AD", "HS", "PN") are wrapped in ``(?-i:…)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from diffing.extract import memo
from diffing.extract.folded import WORD_START, after_non_word, lowered_alternation, word_start


@dataclass(frozen=True, kw_only=True, slots=True)
class Term:
    """One dictionary entry: what its aliases mean."""

    canonical: str  # the name reported: "dupilumab", "topical calcineurin inhibitor"
    aliases: tuple[str, ...]  # regular expressions
    agent: str | None = None  # the specific agent an alias names ("pimecrolimus"), for examples
    drug_class: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class TermMatch:
    start: int
    end: int
    term: Term
    text: str

    @property
    def canonical(self) -> str:
        return self.term.canonical


def _drug(name: str, drug_class: str, *brands: str) -> Term:
    return Term(canonical=name, aliases=(name, *brands), agent=name, drug_class=drug_class)


DRUGS: tuple[Term, ...] = (
    _drug("dupilumab", "IL-4 receptor antagonist", "Dupixent"),
    _drug("tralokinumab", "IL-13 antagonist", r"tralokinumab-ldrm", "Adbry"),
    _drug("lebrikizumab", "IL-13 antagonist", r"lebrikizumab-lbkz", "Ebglyss"),
    _drug("nemolizumab", "IL-31 receptor antagonist", r"nemolizumab-ilto", "Nemluvio"),
    _drug("secukinumab", "IL-17A antagonist", "Cosentyx"),
    _drug("ixekizumab", "IL-17A antagonist", "Taltz"),
    _drug("brodalumab", "IL-17 receptor antagonist", "Siliq"),
    _drug("bimekizumab", "IL-17A/F antagonist", r"bimekizumab-bkzx", "Bimzelx"),
    _drug("guselkumab", "IL-23 antagonist", "Tremfya"),
    _drug("risankizumab", "IL-23 antagonist", r"risankizumab-rzaa", "Skyrizi"),
    _drug("tildrakizumab", "IL-23 antagonist", r"tildrakizumab-asmn", "Ilumya"),
    _drug(
        "ustekinumab",
        "IL-12/23 antagonist",
        r"ustekinumab-[a-z]{4}",
        "Stelara",
        "Wezlana",
        "Selarsdi",
        "Pyzchiva",
        "Otulfi",
        "Imuldosa",
        "Yesintek",
        "Steqeyma",
    ),
    _drug(
        "adalimumab",
        "TNF inhibitor",
        r"adalimumab-[a-z]{4}",
        "Humira",
        "Amjevita",
        "Cyltezo",
        "Hadlima",
        "Hyrimoz",
        "Hulio",
        "Idacio",
        "Yuflyma",
        "Yusimry",
        "Abrilada",
        "Simlandi",
    ),
    _drug("etanercept", "TNF inhibitor", r"etanercept-[a-z]{4}", "Enbrel", "Erelzi", "Eticovo"),
    _drug(
        "infliximab",
        "TNF inhibitor",
        r"infliximab-[a-z]{4}",
        "Remicade",
        "Inflectra",
        "Renflexis",
        "Avsola",
        "Zymfentra",
    ),
    _drug("certolizumab", "TNF inhibitor", r"certolizumab pegol", "Cimzia"),
    _drug("upadacitinib", "JAK inhibitor", "Rinvoq"),
    _drug("abrocitinib", "JAK inhibitor", "Cibinqo"),
    _drug("ruxolitinib cream", "JAK inhibitor", r"(?:topical )?ruxolitinib(?: cream)?", "Opzelura"),
    _drug("deucravacitinib", "TYK2 inhibitor", "Sotyktu"),
    _drug("apremilast", "PDE4 inhibitor", "Otezla"),
    _drug("omalizumab", "anti-IgE antibody", "Xolair"),
)

_POTENCY = (
    r"(?:(?:low|lower|mid|medium|moderate|high|higher|very[- ]high|super[- ]high|ultra[- ]high"
    r"|medium[- ]high|mid[- ]high|class [1-7])(?:\s*-)?(?:\s*,)?\s*(?:(?:and/or|or|and|to)\s+)?)+"
    r"(?:potency\s+)?"
)


def _prereq(canonical: str, *aliases: str, agents: tuple[tuple[str, str], ...] = ()) -> list[Term]:
    """A prerequisite with its generic aliases and the named agents that belong to it."""
    terms = [Term(canonical=canonical, aliases=aliases)] if aliases else []
    terms.extend(Term(canonical=canonical, aliases=(a,), agent=agent) for a, agent in agents)
    return terms


PREREQUISITES: tuple[Term, ...] = tuple(
    [
        *_prereq(
            "topical corticosteroid",
            _POTENCY + r"(?:prescription\s+)?(?:topical\s+)?(?:cortico)?steroids?",
            r"(?:prescription\s+)?topical (?:cortico|gluco(?:cortico)?)?steroids?",
            r"(?-i:TCSs?)",
        ),
        *_prereq(
            "topical calcineurin inhibitor",
            r"topical calcineurin inhibitors?",
            r"(?-i:TCIs?)",
            agents=(
                (r"pimecrolimus(?: cream)?", "pimecrolimus"),
                ("Elidel", "pimecrolimus"),
                (r"tacrolimus(?: ointment)?", "tacrolimus"),
                ("Protopic", "tacrolimus"),
            ),
        ),
        *_prereq(
            "crisaborole",
            r"(?:topical )?PDE-?4 inhibitors? ointment",
            agents=((r"crisaborole(?: ointment)?", "crisaborole"), ("Eucrisa", "crisaborole")),
        ),
        *_prereq(
            "phototherapy",
            r"(?:narrow[- ]?band |NB-?)?(?:UVB |ultraviolet B |ultraviolet )?phototherapy",
            r"photochemotherapy",
            r"(?:ultraviolet|UV) light therapy",
            r"light therapy",
            agents=(
                (r"(?:narrow[- ]?band |NB-?)UVB", "nb-uvb"),
                (r"UVB(?: therapy)?", "uvb"),
                (r"PUVA(?: therapy)?", "puva"),
            ),
        ),
        *_prereq(
            "methotrexate",
            agents=(
                ("methotrexate", "methotrexate"),
                (r"(?-i:MTX)", "methotrexate"),
                ("Otrexup", "methotrexate"),
                ("Rasuvo", "methotrexate"),
                ("Trexall", "methotrexate"),
            ),
        ),
        *_prereq(
            "cyclosporine",
            agents=(
                (r"cyclosporine?|ciclosporin", "cyclosporine"),
                ("Neoral", "cyclosporine"),
                ("Gengraf", "cyclosporine"),
            ),
        ),
        *_prereq("acitretin", agents=(("acitretin", "acitretin"), ("Soriatane", "acitretin"))),
        *_prereq(
            "oral antibiotic",
            r"(?:oral|systemic) antibiotics?(?: therapy| therapies| agents?)?",
            agents=(
                ("doxycycline", "doxycycline"),
                ("minocycline", "minocycline"),
                ("clindamycin", "clindamycin"),
                (r"rifampin|rifampicin", "rifampin"),
                ("tetracyclines?", "tetracycline"),
                ("metronidazole", "metronidazole"),
                ("moxifloxacin", "moxifloxacin"),
            ),
        ),
        *_prereq(
            "traditional systemic agent",
            r"(?:traditional|conventional|non-?biologic|oral|standard) (?:oral )?systemic"
            r" (?:agents?|therap(?:y|ies)|drugs?|treatments?|medications?|immunosuppressants?)",
            r"systemic (?:agents?|therap(?:y|ies)|treatments?|immunosuppressants?|medications?)",
        ),
        *_prereq(
            "conservative wound care",
            r"(?:documented )?conservative (?:wound[- ]care|wound management|treatment)"
            r"(?: measures)?",
            r"standard[- ]of[- ]care wound (?:care|therapy|treatment)",
            r"standard wound care",
        ),
        *_prereq(
            "topical therapy",
            r"(?:prescription )?topical (?:therap(?:y|ies)|treatments?|agents?|medications?"
            r"|products?|drugs?)",
        ),
        *_prereq(
            "tnf inhibitor",
            r"TNF(?:[- ]?(?:alpha|α))?[- ](?:inhibitors?|blockers?|antagonists?|blocking agents?)",
            r"anti-?TNF(?: agents?| therap(?:y|ies)| biologics?)?",
            r"tumou?r necrosis factor(?: alpha)? (?:inhibitors?|blockers?|antagonists?)",
        ),
        *_prereq(
            "jak inhibitor",
            r"(?:oral |topical )?(?:JAK|Janus kinase)(?: \(JAK\))? inhibitors?",
        ),
        *_prereq(
            "biologic",
            r"biologics?(?: (?:agents?|therap(?:y|ies)|drugs?|immunomodulators?|DMARDs?"
            r"|medications?|treatments?))?",
            r"biologic(?:al)? response modifiers?",
        ),
    ]
)

INDICATIONS: tuple[Term, ...] = (
    Term(
        canonical="atopic dermatitis",
        aliases=(r"atopic dermatitis", r"atopic eczema", r"(?-i:AD)"),
    ),
    Term(
        canonical="plaque psoriasis",
        aliases=(
            r"(?:chronic )?plaque(?:[- ]type)? psoriasis",
            r"psoriasis vulgaris",
            r"(?-i:PsO)",
            r"(?<!pustular )(?<!erythrodermic )psoriasis(?! arthritis)",
        ),
    ),
    Term(canonical="psoriatic arthritis", aliases=(r"psoriatic arthritis", r"(?-i:PsA)")),
    Term(
        canonical="hidradenitis suppurativa",
        aliases=(r"hidradenitis suppurativa", r"acne inversa", r"(?-i:HS)"),
    ),
    Term(
        canonical="chronic spontaneous urticaria",
        aliases=(r"chronic (?:spontaneous|idiopathic) urticaria", r"(?-i:CSU|CIU)"),
    ),
    Term(canonical="prurigo nodularis", aliases=(r"prurigo nodularis", r"(?-i:PN)")),
    Term(canonical="alopecia areata", aliases=(r"alopecia areata",)),
    Term(canonical="vitiligo", aliases=(r"(?:non-?segmental )?vitiligo",)),
    # Not dermatology, but the same drugs' policies have these blocks; knowing them keeps a
    # dermatology indication from leaking into the criteria that follow their headings.
    Term(canonical="asthma", aliases=(r"(?:eosinophilic |severe )?asthma",)),
    Term(
        canonical="chronic rhinosinusitis with nasal polyps",
        aliases=(r"chronic rhinosinusitis with nasal polyps", r"nasal polyps", r"(?-i:CRSwNP)"),
    ),
    Term(
        canonical="eosinophilic esophagitis",
        aliases=(r"eosinophilic esophagitis", r"(?-i:EoE)"),
    ),
    Term(
        canonical="chronic obstructive pulmonary disease",
        aliases=(r"chronic obstructive pulmonary disease", r"(?-i:COPD)"),
    ),
    Term(canonical="bullous pemphigoid", aliases=(r"bullous pemphigoid",)),
    Term(canonical="rheumatoid arthritis", aliases=(r"rheumatoid arthritis", r"(?-i:RA)")),
    Term(canonical="crohn's disease", aliases=(r"crohn'?s disease",)),
    Term(canonical="ulcerative colitis", aliases=(r"ulcerative colitis",)),
    Term(
        canonical="ankylosing spondylitis",
        aliases=(r"ankylosing spondylitis", r"axial spondyloarthritis"),
    ),
    Term(canonical="basal cell carcinoma", aliases=(r"basal cell carcinomas?", r"(?-i:BCC)")),
    Term(
        canonical="squamous cell carcinoma",
        aliases=(r"squamous cell carcinomas?", r"(?-i:SCC)"),
    ),
    Term(canonical="diabetic foot ulcer", aliases=(r"diabetic foot ulcers?", r"(?-i:DFUs?)")),
    Term(canonical="venous leg ulcer", aliases=(r"venous (?:leg )?ulcers?", r"(?-i:VLUs?)")),
)

SPECIALTIES: tuple[Term, ...] = (
    Term(canonical="dermatologist", aliases=(r"dermatologists?", r"dermatology")),
    Term(canonical="allergist", aliases=(r"allergists?", r"allergy")),
    Term(canonical="immunologist", aliases=(r"(?:clinical )?immunologists?", r"immunology")),
    Term(canonical="rheumatologist", aliases=(r"rheumatologists?", r"rheumatology")),
    Term(canonical="gastroenterologist", aliases=(r"gastroenterologists?", r"gastroenterology")),
    Term(
        canonical="pulmonologist",
        aliases=(r"pulmonologists?", r"pulmonology", r"pulmonary (?:specialist|medicine)"),
    ),
    Term(
        canonical="otolaryngologist",
        aliases=(r"otolaryngologists?", r"otolaryngology", r"(?-i:ENT)"),
    ),
    Term(canonical="oncologist", aliases=(r"oncologists?", r"oncology")),
    Term(canonical="podiatrist", aliases=(r"podiatrists?", r"podiatry")),
)


def _compile(alias: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-])(?:{alias})(?![\w-])", re.IGNORECASE)


_Each = tuple[tuple[re.Pattern[str], "Term"], ...]


@dataclass(slots=True)
class _Compiled:
    """One alternation of every alias (to find where a mention starts) and each alias alone
    (to find the longest mention starting there), in vocabulary order."""

    anywhere: re.Pattern[str]
    # `anywhere` for lower-cased ASCII text, case-sensitive (`diffing.extract.folded`): it
    # finds every mention `anywhere` finds, and perhaps more; None when an alias cannot be so.
    lowered: re.Pattern[str] | None
    # `lowered` without its look-behind, after the character it asks about (`after_non_word`).
    lowered_after: re.Pattern[str] | None
    each: _Each
    # Alias index → the letter it must start with (None: any start, e.g. a group or a class).
    first: tuple[str | None, ...]
    # A mention's first character → the aliases that can start with it, in vocabulary order.
    by_start: dict[str, _Each]

    def starting_with(self, char: str) -> _Each:
        chosen = self.by_start.get(char)
        if chosen is None:
            # `re.IGNORECASE` decides which characters a letter matches (the Kelvin sign is "k"),
            # so ask it rather than `str.lower`.
            chosen = tuple(
                item
                for item, letter in zip(self.each, self.first, strict=True)
                if letter is None or re.fullmatch(re.escape(letter), char, re.IGNORECASE)
            )
            self.by_start[char] = chosen
        return chosen


_COMPILED: dict[int, tuple[tuple[Term, ...], _Compiled]] = {}


def _patterns(terms: tuple[Term, ...]) -> _Compiled:
    # Keyed by identity: hashing every Term on each call cost more than the matching.
    cached = _COMPILED.get(id(terms))
    if cached is None or cached[0] is not terms:
        cached = (terms, _compile_all(terms))
        _COMPILED[id(terms)] = cached
    return cached[1]


def _first_letter(alias: str) -> str | None:
    """The character a match of `alias` must start with (compared case-insensitively), when
    the alias opens with a literal one; None when it opens any other way."""
    from re import _constants, _parser  # type: ignore[attr-defined]

    parsed = _parser.parse(alias, re.IGNORECASE)
    if len(parsed) == 0:
        return None
    op, value = parsed[0]
    return chr(value) if op is _constants.LITERAL else None


def _by_first_letter(aliases: list[str], first: tuple[str | None, ...]) -> str:
    """One alternation of every alias, those that open with the same letter behind one
    lookahead of that letter: ``(?=d)(?:dupilumab|dupixent)|(?=a)(?:...)|<the others>``.

    The regex engine tries an alternation's branches one by one at each word start; dispatched
    so, it tries one lookahead per letter and then only that letter's aliases (about half the
    search time of the flat alternation for the drug vocabulary). It matches where the flat
    alternation matches: a branch's lookahead is implied by its aliases' first literal (read with
    the same `re.IGNORECASE`), and the aliases that open any other way are branches of their own.
    """
    groups: dict[str, list[str]] = {}
    others: list[str] = []
    for alias, letter in zip(aliases, first, strict=True):
        if letter is None:
            others.append(f"(?:{alias})")
        else:
            groups.setdefault(letter, []).append(f"(?:{alias})")
    branches = [f"(?={re.escape(letter)})(?:{'|'.join(group)})" for letter, group in groups.items()]
    return "|".join([*branches, *others])


def _compile_all(terms: tuple[Term, ...]) -> _Compiled:
    aliases = [(alias, term) for term in terms for alias in term.aliases]
    first = tuple(_first_letter(alias) for alias, _ in aliases)
    anywhere = re.compile(
        r"(?<![\w-])(?:" + _by_first_letter([a for a, _ in aliases], first) + r")(?![\w-])",
        re.IGNORECASE,
    )
    alternation = lowered_alternation([alias for alias, _ in aliases])
    lowered = lowered_after = None
    if alternation is not None:
        rest = "(?:" + alternation + r")(?![\w-])"
        lowered = re.compile(WORD_START + rest)
        lowered_after = after_non_word(rest)
    return _Compiled(
        anywhere=anywhere,
        lowered=lowered,
        lowered_after=lowered_after,
        each=tuple((_compile(alias), term) for alias, term in aliases),
        first=first,
        by_start={},
    )


# Searches' results, by vocabulary (its identity: hashing every Term on each call cost more than
# the matching) and text. Short texts (`memo.MAX_CHARS`) are remembered as `diffing.extract.memo`
# remembers them: a payer's sentences, rows and items recur from policy to policy. Of longer
# texts only the last few: a document's drugs are looked up in a block (`drug_names`) and then
# again for each drug it names (where it is first mentioned), in the same block.
_Found = tuple[tuple[Term, ...], tuple[TermMatch, ...]]
_REMEMBERED: dict[tuple[int, str], _Found] = {}
_RECENT: dict[tuple[int, str], _Found] = {}
_RECENT_SIZE = 64


def find_terms(text: str, terms: tuple[Term, ...]) -> list[TermMatch]:
    """Non-overlapping mentions of `terms` in `text`, leftmost first, longest on overlap."""
    key = (id(terms), text)
    short = len(text) <= memo.MAX_CHARS
    cache = _REMEMBERED if short else _RECENT
    known = cache.pop(key, None)
    if known is not None and known[0] is terms:
        cache[key] = known  # now the most recently read
        return list(known[1])
    chosen = _find_terms(text, terms)
    if len(cache) >= (memo.SIZE if short else _RECENT_SIZE):
        del cache[next(iter(cache))]  # the least recently read
    cache[key] = (terms, tuple(chosen))
    return chosen


def _find_terms(text: str, terms: tuple[Term, ...]) -> list[TermMatch]:
    compiled = _patterns(terms)
    lowered = compiled.lowered if text.isascii() else None
    low = text if lowered is None else text.lower()  # ASCII: the same length
    chosen: list[TermMatch] = []
    position = 0
    while (start := _next_start(compiled, lowered, text, low, position)) is not None:
        best: TermMatch | None = None
        # Only the aliases that can start with the mention's first character can match here.
        for pattern, term in compiled.starting_with(text[start : start + 1]):
            match = pattern.match(text, start)
            if match is not None and (best is None or match.end() > best.end):
                best = TermMatch(start=start, end=match.end(), term=term, text=match.group(0))
        if best is None:  # the alternation matched where no single alias does: cannot happen
            position = start + 1
            continue
        chosen.append(best)
        position = best.end
    return chosen


def _next_start(
    compiled: _Compiled,
    lowered: re.Pattern[str] | None,
    text: str,
    low: str,
    position: int,
) -> int | None:
    """Where the first mention `anywhere` finds in `text` from `position` on starts. With
    `lowered`: searched case-sensitively in `low` (the text lower-cased), each place found
    confirmed by `anywhere` there; it finds where `anywhere` does, and a few places more ("ad"
    where only "AD" is an alias), searched as `word_start` searches (the same places)."""
    anywhere = compiled.anywhere
    if lowered is None:
        found = anywhere.search(text, position)
        return None if found is None else found.start()
    after = compiled.lowered_after
    assert after is not None  # made with `lowered`
    while (start := word_start(lowered, after, low, position)) is not None:
        if anywhere.match(text, start) is not None:
            return start
        position = start + 1
    return None


_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


def any_of(patterns: Iterable[re.Pattern[str]]) -> re.Pattern[str]:
    """One pattern that finds something where any of `patterns` does (and only there): their
    alternation, group names dropped (two may share one). A cheap first question for a text
    that each of `patterns` would search in turn (most texts, where none of them matches).

    An alternation tries its branches at each position until one matches, so it matches where
    a branch does; every branch is its pattern unchanged but for capturing (which decides no
    match). The patterns must share their flags, and refer to no group by name or number."""
    chosen = list(patterns)
    flags = {p.flags for p in chosen}
    sources = [_NAMED_GROUP.sub("(?:", p.pattern) for p in chosen]
    if len(flags) != 1 or any(re.search(r"\(\?P=|\\\d", s) for s in sources):
        raise ValueError("any_of: patterns with other flags or back-references")
    return re.compile("|".join(f"(?:{s})" for s in sources), flags.pop())


def word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of `text`, for long word lists written as prose."""
    return frozenset(text.split())
