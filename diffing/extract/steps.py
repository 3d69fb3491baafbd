"""Step therapy in one sentence: which prerequisite therapies must have been tried, how many of
them, and for how long.

A sentence only yields steps when it says something was tried ("trial", "failure", "inadequate
response", …) or gives a prerequisite a minimum duration. Examples ("(e.g., Elidel/pimecrolimus)"),
the noun after "the following …:", combination exclusions ("not … in combination with a biologic")
and per-prerequisite overrides ("(14-day supply for topical corticosteroids)") are not
prerequisites of their own.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from diffing.extract import memo
from diffing.extract.durations import (
    NUMBER,
    Duration,
    find_durations,
    parse_number,
    remembered_durations,
    to_days,
)
from diffing.extract.vocabulary import DRUGS, PREREQUISITES, TermMatch, any_of, find_terms

_STEP_TERMS = PREREQUISITES + DRUGS
_DRUG_NAMES = frozenset(term.canonical for term in DRUGS)

STEP_TRIGGER = re.compile(
    r"\b(?:tried|tries|trial|trials|failed|failure|failures|fail|failing|inadequate(?:ly)?"
    r"|insufficient(?:ly)?|intoleran(?:ce|t|ces)|contraindicat\w*|history of|previous(?:ly)?"
    r"|prior (?:treatment|therapy|therapies|use|trial)|refractory|despite|unresponsive"
    r"|lack of (?:response|efficacy|improvement)|non-?respon\w*|step therapy|unable to tolerate"
    r"|(?:did|does|has|have) not (?:respond|responded|tolerate|tolerated)"
    r"|not (?:been )?(?:adequately |well[- ])?controlled|poor(?:ly)? respon\w*|suboptimal)\b",
    re.IGNORECASE,
)
ALL_OF = 0  # count_required placeholder for "all of the following": the number of items

_COUNT_PATTERNS: tuple[tuple[re.Pattern[str], int | None], ...] = (
    (re.compile(r"\b(?:all|each) of the following\b", re.I), ALL_OF),
    (re.compile(r"\b(?:any|either)(?: one)? of the following\b", re.I), 1),
    (
        re.compile(
            r"\b(?P<n>one|two|three|four|five|[1-5])(?:\s*\([1-5]\))?(?:\s+or\s+more)?"
            r"\s+of\s+(?:the\s+)?(?:following|these|those|below)\b",
            re.I,
        ),
        None,
    ),
    (
        re.compile(
            r"\b(?:at least|a minimum of|minimum of|no fewer than|not less than)\s+"
            r"(?P<n>one|two|three|four|five|[1-5])(?:\s*\([1-5]\))?\b"
            r"(?!\s*-?\s*(?:consecutive\s+)?(?:days?|weeks?|months?|years?|mos?|wks?)\b)"
            # "at least 5% of body surface area" is a threshold, not a number of agents.
            r"(?![\d.,]|\s*(?:%|percent|mm|cm|mg|points?)(?!\w))",
            re.I,
        ),
        None,
    ),
    (
        re.compile(
            r"\b(?P<n>two|three|four|five|[2-5])(?:\s*\([2-5]\))?\s+(?:or more\s+)?"
            r"(?:(?:different|separate|prior|previous|distinct|conventional|traditional|systemic"
            r"|topical|oral|prescription|biologic)\s+)*(?:agents|therapies|drugs|medications|treatments"
            r"|classes|products|biologics)\b",
            re.I,
        ),
        None,
    ),
    (re.compile(r"\bboth\b", re.I), 2),
)
_ANY_COUNT = any_of(pattern for pattern, _ in _COUNT_PATTERNS)

_EXAMPLE_PAREN = re.compile(r"[(\[][^()\[\]]*[)\]]")
_EXAMPLE_WORDS = re.compile(
    r"\b(?:such as|e\.\s?g\.?|eg|i\.\s?e\.?|including|for example|for instance|like)\b[,:]?\s*",
    re.IGNORECASE,
)
_OVERRIDE = re.compile(
    rf"\(\s*(?:an?\s+)?(?:(?:at least|a minimum of|minimum)\s+)?(?P<num>{NUMBER})"
    r"(?:\s*-\s*|\s+)(?:consecutive\s+)?(?P<unit>days?|weeks?|months?)"
    r"(?:\s*-\s*|\s+)?(?:supply|trial|course)?\s+(?:for|of|with)\s+(?P<what>[^)]*)\)",
    re.IGNORECASE,
)
_HEADER = re.compile(r"\bthe following\b[^:;(),.]{1,80}?(?=\s*[:(])", re.IGNORECASE)
_EXCLUSION = re.compile(
    r"\b(?:in combination with|in conjunction with|combined with|together with|concomitant(?:ly)?"
    r"|concurrent(?:ly)?|while (?:on|receiving|taking)"
    r"|not\s+(?:be\s+|been\s+|currently\s+|concurrently\s+)*(?:receiving|taking|using|used|given"
    r"|administered|prescribed))\b[^;]*",
    re.IGNORECASE,
)
_CLAUSE_BREAK = re.compile(r";|\b(?:and|but)\s+(?:has|have|is|are|was|were|had)\b", re.IGNORECASE)
_LIST_GAP = re.compile(
    r"^\s*(?:,\s*)?(?:(?:and/or|or|and|nor|as well as)\s+)?(?:(?:an?|the|one|both|either)\s+)*$",
    re.IGNORECASE,
)
_FORWARD_GAP = re.compile(r"^\s*(?:\w+\s+){0,2}?(?:of|with|on)\b[^;,:()]{0,30}$", re.IGNORECASE)
_EXAMPLE_GAP = re.compile(r"^[\s,/]*(?:(?:and/or|or|and)\s+)?(?:an?\s+)?$", re.IGNORECASE)
_FOLLOWING = re.compile(r"\bof the following\b", re.IGNORECASE)
_LEAD_END = re.compile(r":\s*(?:\(?(?:and|or)\)?\s*)?$", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True, slots=True)
class StepLead:
    """What a sentence ending "… to ONE of the following:" says about the list items after it."""

    count_required: int  # ALL_OF (0) when "all of the following": the number of items
    min_duration_days: int | None = None
    duration_overrides: tuple[tuple[str, int], ...] = ()  # (prerequisite, days)


@dataclass(frozen=True, kw_only=True, slots=True)
class StepFinding:
    prerequisite: str
    count_required: int
    min_duration_days: int | None
    examples: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class _Zone:
    start: int
    end: int

    def holds(self, start: int, end: int) -> bool:
        return self.start <= start and end <= self.end


def _inside(zones: list[_Zone], match: TermMatch | Duration) -> bool:
    return any(zone.holds(match.start, match.end) for zone in zones)


def _overrides(text: str) -> tuple[list[_Zone], dict[str, int]]:
    zones: list[_Zone] = []
    days: dict[str, int] = {}
    for match in _OVERRIDE.finditer(text):
        number = parse_number(match.group("num"))
        terms = find_terms(match.group("what"), PREREQUISITES)
        if number is None or not terms:
            continue
        zones.append(_Zone(start=match.start(), end=match.end()))
        for term in terms:
            days.setdefault(term.canonical, to_days(number, match.group("unit")))
    return zones, days


def _example_zones(text: str, terms: list[TermMatch], skip: list[_Zone]) -> list[_Zone]:
    """Parentheticals, and "such as …" / "e.g. …" runs of named therapies."""
    zones = [
        _Zone(start=m.start(), end=m.end())
        for m in _EXAMPLE_PAREN.finditer(text)
        if not any(z.holds(m.start(), m.end()) for z in skip)
    ]
    for keyword in _EXAMPLE_WORDS.finditer(text):
        end = keyword.end()
        for term in terms:
            if term.start < end:
                continue
            if not _EXAMPLE_GAP.match(text[end : term.start]):
                break
            end = term.end
        if end > keyword.end():
            zones.append(_Zone(start=keyword.start(), end=end))
    return zones


def _counts(text: str) -> list[tuple[int, int]]:
    """(position, count) of every count phrase, in order."""
    found: list[tuple[int, int]] = []
    taken: list[tuple[int, int]] = []
    if not _ANY_COUNT.search(text):  # most sentences: one search, not one per pattern
        return found
    for pattern, fixed in _COUNT_PATTERNS:
        for match in pattern.finditer(text):
            if any(s <= match.start() < e for s, e in taken):
                continue
            taken.append((match.start(), match.end()))
            value = fixed if fixed is not None else parse_number(match.group("n"))
            if value is not None:
                found.append((match.start(), int(value)))
    return sorted(found)


def _count_for(position: int, counts: list[tuple[int, int]], kept: list[TermMatch]) -> int | None:
    before = [(p, c) for p, c in counts if p < position]
    if not before:
        return None
    where, count = before[-1]
    if count == ALL_OF:
        return len({m.canonical for m in kept if m.start > where}) or 1
    return count


def _bind(text: str, kept: list[TermMatch], durations: list[Duration]) -> dict[int, int]:
    """Which kept prerequisite (by index) each trial-length duration belongs to."""
    owner: dict[int, int] = {}
    for d_index, duration in enumerate(durations):
        following = next((i for i, m in enumerate(kept) if m.start >= duration.end), None)
        preceding = next(
            (i for i in reversed(range(len(kept))) if kept[i].end <= duration.start), None
        )
        if following is not None and _FORWARD_GAP.match(text[duration.end : kept[following].start]):
            owner[d_index] = following
        elif preceding is not None and not _CLAUSE_BREAK.search(
            text[kept[preceding].end : duration.start]
        ):
            owner[d_index] = preceding
    return owner


def _grouped(text: str, left: TermMatch, right: TermMatch) -> bool:
    gap = _EXAMPLE_PAREN.sub(" ", text[left.end : right.start])
    return bool(_LIST_GAP.match(gap))


def _keeps_nothing(durations: list[Duration]) -> bool:
    """For a sentence that says nothing was tried and is no item of a lead: whether
    `find_steps` finds nothing, whatever the sentence names. A lead needs the trigger and a
    step the trigger, a lead or a trial length, so without a trial length the vocabulary need
    not be searched (most sentences)."""
    return not any(d.is_trial_length for d in durations)


def find_steps(
    text: str,
    *,
    governed_drug: str | None = None,
    lead: StepLead | None = None,
    durations: list[Duration] | None = None,
) -> tuple[list[StepFinding], StepLead | None]:
    """The step-therapy requirements one sentence states, and the lead it opens (if it ends in
    "… of the following:" and names no prerequisite itself)."""
    trigger = STEP_TRIGGER.search(text)
    if trigger is None and lead is None:
        if durations is None:
            durations = find_durations(text)
        if _keeps_nothing(durations):
            return [], None
    named = find_terms(text, _STEP_TERMS)
    if not named and (lead is not None or trigger is None or not _LEAD_END.search(text)):
        # Most sentences: nothing is kept, so what follows would return this; only a lead
        # (tried …, "… of the following:") is read from a sentence that names no therapy.
        return [], None
    override_zones, overrides = _overrides(text)
    exclusions = [_Zone(start=m.start(), end=m.end()) for m in _EXCLUSION.finditer(text)]
    headers = [_Zone(start=m.start(), end=m.end()) for m in _HEADER.finditer(text)]
    terms = [
        m
        for m in named
        if m.canonical != governed_drug
        and not _inside(override_zones + exclusions + headers, m)
        # A drug is a prerequisite only after the words that say it was tried ("failure of
        # Humira"), or as an item of a lead; "Dupixent will be approved when …" governs.
        and (
            m.canonical not in _DRUG_NAMES
            or lead is not None
            or (trigger is not None and trigger.start() < m.start)
        )
    ]
    example_zones = _example_zones(text, terms, override_zones)
    kept: list[TermMatch] = []
    examples: dict[str, list[str]] = {}
    for match in terms:
        zone = next((z for z in example_zones if z.holds(match.start, match.end)), None)
        if zone is not None and kept and kept[-1].end <= zone.start:
            agent = match.term.agent or match.canonical
            head = examples.setdefault(kept[-1].canonical, [])
            restated = agent == kept[-1].canonical  # "Eucrisa (crisaborole)", "(TCS)"
            if not restated and agent not in head:
                head.append(agent)
        elif all(k.canonical != match.canonical for k in kept):
            kept.append(match)

    durations = [
        d
        for d in (find_durations(text) if durations is None else durations)
        if d.is_trial_length and not _inside(override_zones + exclusions, d)
    ]
    counts = _counts(text)
    if kept and _LEAD_END.search(text):
        list_opening = _FOLLOWING.search(text, kept[-1].end)
        if list_opening is not None:
            # "inadequate response to topical therapy, shown by both of the following:" names
            # the category of the list that follows; its items are the requirements.
            kept = []
            counts = [c for c in counts if c[0] >= list_opening.start() - 12]
    if lead is None and not kept:
        return [], _lead(text, trigger is not None, counts, durations, overrides)
    if not kept or (trigger is None and lead is None and not durations):
        return [], None

    owner = _bind(text, kept, durations)
    own: dict[int, int] = {}
    for d_index, k_index in sorted(owner.items()):
        own.setdefault(k_index, durations[d_index].days)
        if durations[d_index].end <= kept[k_index].start:
            # "a 90-day trial of a JAK inhibitor or a TNF inhibitor": the list shares it.
            following = k_index + 1
            while following < len(kept) and _grouped(text, kept[following - 1], kept[following]):
                if any(k == following for k in owner.values()):
                    break
                own.setdefault(following, durations[d_index].days)
                following += 1
    unbound_leading = [
        d
        for i, d in enumerate(durations)
        if i not in owner
        and d.end <= kept[0].start
        and not _CLAUSE_BREAK.search(text[d.end : kept[0].start])
    ]
    leading = unbound_leading[-1].days if unbound_leading else None
    resolved: dict[int, int | None] = {}
    for index in reversed(range(len(kept))):
        canonical = kept[index].canonical
        shared = (
            resolved.get(index + 1)
            if index + 1 < len(kept) and _grouped(text, kept[index], kept[index + 1])
            else None
        )
        lead_days = None
        if lead is not None:
            lead_days = dict(lead.duration_overrides).get(canonical, lead.min_duration_days)
        for candidate in (own.get(index), overrides.get(canonical), shared, leading, lead_days):
            if candidate is not None:
                resolved[index] = candidate
                break
        else:
            resolved[index] = None

    findings: list[StepFinding] = []
    for index, match in enumerate(kept):
        count = _count_for(match.start, counts, kept)
        if count is None:
            # A bare option ("b. Topical calcineurin inhibitor") takes the lead's count; an item
            # that is a criterion of its own ("Patient has tried …") does not.
            bare_option = lead is not None and trigger is None and lead.count_required
            count = lead.count_required if lead is not None and bare_option else 1
        findings.append(
            StepFinding(
                prerequisite=match.canonical,
                count_required=count,
                min_duration_days=resolved[index],
                examples=tuple(examples.get(match.canonical, ())),
            )
        )
    return findings, None


@functools.lru_cache(maxsize=memo.SIZE)
def _remembered_steps(
    text: str, governed_drug: str | None, lead: StepLead | None
) -> tuple[tuple[StepFinding, ...], StepLead | None]:
    durations = remembered_durations(text)
    findings, opened = find_steps(text, governed_drug=governed_drug, lead=lead, durations=durations)
    return tuple(findings), opened


def remembered_steps(
    text: str, *, governed_drug: str | None = None, lead: StepLead | None = None
) -> tuple[list[StepFinding], StepLead | None]:
    """`find_steps` (with the durations `remembered_durations` reads in `text`) remembered for
    short texts, by text, drug and lead (`diffing.extract.memo`): a payer's criteria recur from
    policy to policy, under the same drugs and leads."""
    if len(text) > memo.MAX_CHARS:
        return find_steps(text, governed_drug=governed_drug, lead=lead)
    findings, opened = _remembered_steps(text, governed_drug, lead)
    return list(findings), opened


def _lead(
    text: str,
    triggered: bool,
    counts: list[tuple[int, int]],
    durations: list[Duration],
    overrides: dict[str, int],
) -> StepLead | None:
    if not triggered or not _LEAD_END.search(text):
        return None
    return StepLead(
        count_required=counts[-1][1] if counts else 1,
        min_duration_days=durations[0].days if durations else None,
        duration_overrides=tuple(sorted(overrides.items())),
    )
