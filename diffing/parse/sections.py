"""Headings and sections: which lines are headings, what a section is called, and the sections.

A section's name is its heading, lower-cased with spacing and a trailing colon tidied, so the
diff can pair "Coverage Rationale" in two versions; a few spelling variants map to one name.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Sequence

from diffing.model import Section
from diffing.parse.clean import Paragraph

PREAMBLE = "preamble"

# Headings payer documents use (UHC, Aetna, Cigna, Anthem, BCBS), by their canonical name. A line
# of plain text or PDF that reads exactly like one of these is a heading whatever its font.
KNOWN_SECTIONS: frozenset[str] = frozenset(
    {
        "coverage rationale",
        "policy",
        "coverage policy",
        "criteria",
        "clinical indications",
        "medically necessary",
        "medical necessity",
        "not medically necessary",
        "investigational and not medically necessary",
        "experimental, investigational, or unproven",
        "scope of policy",
        "policy limitations and exclusions",
        "position statement",
        "applicable codes",
        "coding information",
        "coding",
        "background",
        "general background",
        "clinical evidence",
        "rationale",
        "policy history/revision information",
        "revision details",
        "references",
        "instructions for use",
        "description",
        "description of services",
        "definitions",
        "application",
        "benefit considerations",
        "summary",
        "overview",
        "coverage summary",
        "documentation requirements",
        "medical records documentation used for reviews",
        "frequently asked questions",
        "related policies",
        "u.s. food and drug administration",
        "centers for medicare and medicaid services",
        "medicare coverage determinations",
        "health equity considerations",
        "discussion",
        "policy guidelines",
        "regulatory status",
        "websites for additional information",
        "index",
        "coverage criteria",
        "clinical criteria",
        "policy statement",
        "initial authorization",
        "reauthorization",
        "continuation of therapy",
        "conditions not covered",
        "guidelines",
        "efficacy",
        "disclaimer",
    }
)

# Other spellings of a known heading, by their canonical name.
SECTION_SYNONYMS: dict[str, str] = {
    "policy history / revision information": "policy history/revision information",
    "policy history": "policy history/revision information",
    "revision history": "policy history/revision information",
    "history": "policy history/revision information",
    "document history": "policy history/revision information",
    "medical necessity criteria": "medical necessity",
    "applicable cpt / hcpcs / icd-10 codes": "applicable codes",
    "applicable cpt/hcpcs/icd-10 codes": "applicable codes",
    "cpt codes / hcpcs codes / icd-10 codes": "applicable codes",
    "cpt codes/hcpcs codes/icd-10 codes": "applicable codes",
    "code reference": "coding information",
    "centers for medicare & medicaid services": "centers for medicare and medicaid services",
    "centers for medicare and medicaid services (cms)": (
        "centers for medicare and medicaid services"
    ),
    "experimental, investigational or unproven": "experimental, investigational, or unproven",
    "experimental/investigational/unproven": "experimental, investigational, or unproven",
    "u.s. food and drug administration (fda)": "u.s. food and drug administration",
}

_NUMBERING = re.compile(r"^(?:#{1,6}\s+|(?:[IVX]{1,4}|\d{1,2}|[A-Z])[.)]\s+)")
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+\S")
_SPACES = re.compile(r"\s+")
_SLASH = re.compile(r"\s*/\s*")
_CODE_TOKEN = re.compile(r"\d{3,}|\b[A-Z]\d{2,}")
_NOT_HEADINGS = frozenset(
    {"and", "or", "note", "notes", "example", "examples", "e.g.", "and/or", "nor", "including"}
)
_LABEL_WORDS = re.compile(r"\b(?:date|number|status|subject|page|no\.|#)", re.IGNORECASE)


def section_name(heading: str) -> str:
    """The canonical name of a heading: "Policy History / Revision Information:" → known form."""
    text = _NUMBERING.sub("", heading.strip())
    text = _SPACES.sub(" ", text).strip().rstrip(":").strip().lower()
    text = text.replace("’", "'")
    if text in KNOWN_SECTIONS:
        return text
    slashed = _SLASH.sub("/", text)
    if slashed in KNOWN_SECTIONS:
        return slashed
    return SECTION_SYNONYMS.get(text) or SECTION_SYNONYMS.get(slashed) or text


def is_known_heading(text: str) -> bool:
    """Reads exactly like a known heading (upper-case first letter, at most a trailing colon)."""
    if not text[:1].isupper() or len(text) > 80:
        return False
    name = section_name(text)
    return name in KNOWN_SECTIONS


def looks_like_heading(text: str) -> bool:
    """Plain-text heading: a known heading, an ALL CAPS line, or a short Title Case "Label:"."""
    if is_known_heading(text):
        return True
    if _MARKDOWN_HEADING.match(text) and len(text) <= 100:
        return True
    if len(text) > 80 or not text[:1].isupper() or text[-1:] in ".,;":
        return False
    bare = text.rstrip(":").strip()
    words = bare.split()
    letters = sum(c.isalpha() for c in bare)
    if not words or len(words) > 10 or letters < 4 or bare.lower() in _NOT_HEADINGS:
        return False
    if _CODE_TOKEN.search(bare):
        return False  # a row of a code table, not a heading
    if bare.isupper() and letters >= 0.6 * len(bare.replace(" ", "")):
        return True
    if text.endswith(":") and len(words) <= 6 and not _LABEL_WORDS.search(bare):
        return all(w[0].isupper() for w in words if len(w) > 3 and w[0].isalpha())
    return False


CRITERIA = "criteria"
CONTEXT = "context"
HISTORY = "history"
CODES = "codes"

# What a section is for, by words of its name. Context sections are still diffed as text (a
# change there is low severity) but never give criteria, checklist items or rule rows.
_HISTORY_ROLE = re.compile(
    r"(?:policy|revision|review|document|publication) history|revision (?:information|details)"
    r"|^(?:history|revisions?|change log|updates?)$",
    re.IGNORECASE,
)
_CONTEXT_ROLE = re.compile(
    r"\b(?:background|overview|clinical evidence|summary of (?:clinical )?evidence|evidence"
    r"|guidelines?|efficacy|stud(?:y|ies)|trials?|references?|bibliography|literature"
    r"|disclaimers?|instructions for use|description(?: of services)?|definitions?|rationale"
    r"|discussion|scientific|appendix|table of contents|index|related (?:policies|documents)"
    r"|regulatory status|food and drug administration|centers for medicare|cms|fda"
    r"|websites|health equity|frequently asked questions|dosing information|pharmacology"
    r"|mechanism of action|links|decision trees?)\b",
    re.IGNORECASE,
)
_CRITERIA_ROLE = re.compile(
    r"\b(?:criteria|coverage|policy|position statement|medically necessary|medical necessity"
    r"|indications?|authori[sz]ation|reauthori[sz]ation|continuation|renewal|initial"
    r"|requests?|approval|limitations|exclusions|not covered|experimental|investigational"
    r"|unproven|prior authori[sz]ation|step therapy|preferred|non-preferred|formulary"
    r"|quantity limits?)\b",
    re.IGNORECASE,
)
_CODES_ROLE = re.compile(r"\bcod(?:es|ing)\b|\bCPT\b|\bHCPCS\b|\bICD", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)  # a few dozen names, read for every section and table
def section_role(name: str) -> str:
    """`criteria`, `codes`, `history` or `context`: what a section (by its canonical name) is
    for. "Coverage Rationale" is criteria although it says "rationale"; "Clinical Evidence"
    is context although it is clinical; a name that says neither (a drug or an indication
    heading such as "atopic dermatitis") is criteria."""
    bare = re.sub(r"\s*\(\d+\)$", "", name).strip()
    if _HISTORY_ROLE.search(bare):
        return HISTORY
    if bare in ("coverage rationale", "coverage policy", "policy", PREAMBLE):
        return CRITERIA
    if _CODES_ROLE.search(bare) and not _CONTEXT_ROLE.search(bare):
        return CODES
    if _CONTEXT_ROLE.search(bare) and not _CRITERIA_ROLE.search(bare):
        return CONTEXT
    if bare.startswith(("clinical evidence", "background", "overview", "guideline")):
        return CONTEXT
    return CRITERIA


def _named_role(name: str) -> bool:
    """Whether a section's name itself says what it is for (not criteria by default)."""
    bare = re.sub(r"\s*\(\d+\)$", "", name).strip()
    return bool(
        _HISTORY_ROLE.search(bare)
        or _CODES_ROLE.search(bare)
        or _CONTEXT_ROLE.search(bare)
        or _CRITERIA_ROLE.search(bare)
        or bare in KNOWN_SECTIONS
    )


def section_roles(names: Sequence[str]) -> tuple[str, ...]:
    """The role of each section of one document, in order. A heading that names no role
    ("Signatera", "KRAS") after a context or codes section is a sub-heading of that background
    (Aetna's Background lists one heading per test), not a new criteria section."""
    roles: list[str] = []
    previous = CRITERIA
    for name in names:
        role = section_role(name)
        if role == CRITERIA and name != PREAMBLE and not _named_role(name) and previous != CRITERIA:
            role = CONTEXT if previous != HISTORY else HISTORY
        roles.append(role)
        previous = role
    return tuple(roles)


def build_sections(
    paragraphs: Sequence[Paragraph], *, keep: Collection[int] = ()
) -> tuple[tuple[Section, ...], list[str]]:
    """Group paragraphs under their headings.

    Returns the sections and, for each paragraph, the name of the section it belongs to (so a
    table can be tagged with its section). Names are made unique by a " (2)", " (3)" suffix.
    Sections without text are left out unless one of their paragraphs is in `keep`.
    """
    groups: list[tuple[str, list[Paragraph], bool]] = []
    used: dict[str, int] = {}
    owner: list[str] = []
    for index, paragraph in enumerate(paragraphs):
        if paragraph.heading or not groups:
            base = section_name(paragraph.text) if paragraph.heading else PREAMBLE
            used[base] = used.get(base, 0) + 1
            name = base if used[base] == 1 else f"{base} ({used[base]})"
            groups.append((name, [], False))
        name, members, kept = groups[-1]
        if not paragraph.heading:
            members.append(paragraph)
        if index in keep and not kept:
            groups[-1] = (name, members, True)
        owner.append(name)
    sections = []
    for name, members, kept in groups:
        if not members and not kept:
            continue
        sections.append(_section(name, members))
    return tuple(sections), owner


def _section(name: str, members: Sequence[Paragraph]) -> Section:
    parts: list[str] = []
    offsets: list[tuple[int, int]] = []
    position = 0
    for paragraph in members:
        for offset, page in paragraph.page_marks:
            if not offsets or offsets[-1][1] != page:
                offsets.append((position + offset, page))
        parts.append(paragraph.text)
        position += len(paragraph.text) + 1
    return Section(name=name, text="\n".join(parts), page_offsets=tuple(offsets))
