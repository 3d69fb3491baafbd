"""The change page: one change as a readable HTML page, before and after side by side.

The evidence sentence is found in the text of the version it came from and marked there; the
closest sentence of the other version is shown next to it, with the words that differ marked,
so a reader sees "8 weeks" become "12 weeks" in context. Rendered by Jinja2 with autoescape on:
every value from a document is escaped.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from monitor.report import describe, kind_label
from monitor.store.core import ChangeRecord
from monitor.store.reads import ChangeVersions, Review
from monitor.templating import template_environment

_SPACES = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.;:!?])\s+")
_CONTEXT_CHARS = 280  # of surrounding text shown on each side of a marked sentence
_MIN_SIMILARITY = 0.45  # below this, "the closest sentence" would mislead; show none
_MIN_TEXT = 20  # characters; shorter before/after values are figures, not sentences to find
_LONG_VALUE = 60  # characters; longer before/after values are shown as text, not as figures
# Most word pairs difflib may compare for one alignment: its work grows with the product of the
# two lengths, and both texts come from fetched documents. 20,000 x 20,000 words took ~1 s of
# CPU per request for an adversarial pair; 2 million pairs (1,414 x 1,414 words, a long
# section) stay in milliseconds. Longer texts fall back to the closest sentence, or are shown
# whole as deleted and inserted.
_MAX_ALIGNED_PAIRS = 2_000_000


@dataclass(frozen=True, kw_only=True)
class Segment:
    """A run of text; `op` is "equal", "delete" or "insert" (words that differ)."""

    text: str
    op: str = "equal"


@dataclass(frozen=True, kw_only=True)
class Excerpt:
    """A sentence in its section, to be shown marked between its neighbours."""

    section: str
    before: str
    sentence: str
    after: str
    exact: bool  # the evidence itself (True) or its counterpart in the other version
    segments: tuple[Segment, ...] = ()
    start: int = 0  # of `sentence` in the section's text


def _normal(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _sections(criteria: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not criteria:
        return []
    return [(s["name"], _normal(s["text"])) for s in criteria.get("sections", ())]


def _excerpt(section: str, text: str, start: int, end: int, *, exact: bool) -> Excerpt:
    head = text[max(0, start - _CONTEXT_CHARS) : start]
    tail = text[end : end + _CONTEXT_CHARS]
    if start > _CONTEXT_CHARS:
        head = "…" + head.split(" ", 1)[-1]
    if len(text) - end > _CONTEXT_CHARS:
        tail = tail.rsplit(" ", 1)[0] + "…"
    return Excerpt(
        section=section,
        before=head,
        sentence=text[start:end],
        after=tail,
        exact=exact,
        start=start,
    )


def _candidates(needle: str) -> list[str]:
    # Payer evidence is "what (where): sentence"; the sentence alone is what the text holds.
    wanted = _normal(needle)
    label, colon, sentence = wanted.partition(": ")
    return [wanted, sentence] if colon and label and sentence else [wanted]


def _find(sections: Sequence[tuple[str, str]], needles: Sequence[str | None]) -> Excerpt | None:
    """The first of `needles` found verbatim (whitespace aside) in a section."""
    for needle in needles:
        if not needle:
            continue
        for wanted in _candidates(needle):
            for name, text in sections:
                at = text.find(wanted)
                if at >= 0:
                    return _excerpt(name, text, at, at + len(wanted), exact=True)
    return None


def _counterpart(
    sections: Sequence[tuple[str, str]], found: Excerpt, found_text: str
) -> Excerpt | None:
    """Where `found` is in the other version: the words of the same-named section aligned
    with its words (difflib), so "… a minimum of 8 weeks …" faces "… of 12 weeks …" exactly.
    None when the sentence is new (aligned with nothing) or no section has that name."""
    other = next((text for name, text in sections if name == found.section), None)
    if other is None:
        return None
    mine = list(re.finditer(r"\S+", found_text))
    theirs = list(re.finditer(r"\S+", other))
    if not mine or not theirs or len(mine) * len(theirs) > _MAX_ALIGNED_PAIRS:
        return None
    end = found.start + len(found.sentence)
    first = next(i for i, word in enumerate(mine) if word.end() > found.start)
    last = max(i for i, word in enumerate(mine) if word.start() < end)
    matcher = difflib.SequenceMatcher(
        None, [w.group() for w in mine], [w.group() for w in theirs], autojunk=False
    )
    lows: list[int] = []
    highs: list[int] = []
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if a2 <= first or a1 > last or b2 == b1:
            continue
        if op == "equal":  # word for word: keep only the words inside the span
            lows.append(b1 + max(first - a1, 0))
            highs.append(b1 + min(last, a2 - 1) - a1)
        else:
            lows.append(b1)
            highs.append(b2 - 1)
    if not lows:
        return None
    start, stop = theirs[min(lows)].start(), theirs[max(highs)].end()
    return _excerpt(found.section, other, start, stop, exact=False)


def _closest(sections: Sequence[tuple[str, str]], found: Excerpt) -> Excerpt | None:
    """The sentence of `sections` most like `found.sentence`, preferring its own section."""
    same = [s for s in sections if s[0] == found.section]
    best: tuple[float, str, str, int, int] | None = None
    budget = 10 * _MAX_ALIGNED_PAIRS  # character pairs over all sentences, as above
    for name, text in same or sections:
        position = 0
        for sentence in _SENTENCE_END.split(text):
            start = text.find(sentence, position)
            position = start + len(sentence)
            cost = len(found.sentence) * len(sentence)
            if cost > _MAX_ALIGNED_PAIRS:
                continue
            budget -= cost
            if budget < 0:
                break
            matcher = difflib.SequenceMatcher(None, found.sentence, sentence, autojunk=False)
            if matcher.real_quick_ratio() < _MIN_SIMILARITY:
                continue
            ratio = matcher.ratio()
            if ratio >= _MIN_SIMILARITY and (best is None or ratio > best[0]):
                best = (ratio, name, text, start, position)
    if best is None:
        return None
    _ratio, name, text, start, end = best
    return _excerpt(name, text, start, end, exact=False)


def _textual(value: str | None) -> str | None:
    """`value` when it is text worth finding (a sentence), not a figure like "56" that would
    turn up in any page number or citation."""
    return value if value and len(value) >= _MIN_TEXT and " " in value.strip() else None


def _text_of(sections: Sequence[tuple[str, str]], excerpt: Excerpt) -> str:
    return next(text for name, text in sections if name == excerpt.section)


def word_diff(old: str, new: str) -> tuple[tuple[Segment, ...], tuple[Segment, ...]]:
    """`old` and `new` as segments, with the words only in `old` deleted and only in `new`
    inserted."""
    # A word keeps its trailing space, so "at least 8" -> "a minimum of 12" is one marked run,
    # not three runs split by unmarked spaces.
    old_words = re.findall(r"^\s+|\S+\s*", old)
    new_words = re.findall(r"^\s+|\S+\s*", new)
    if len(old_words) * len(new_words) > _MAX_ALIGNED_PAIRS:
        return (Segment(text=old, op="delete"),), (Segment(text=new, op="insert"),)
    left: list[Segment] = []
    right: list[Segment] = []
    matcher = difflib.SequenceMatcher(None, old_words, new_words, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            left.append(Segment(text="".join(old_words[a1:a2])))
            right.append(Segment(text="".join(new_words[b1:b2])))
            continue
        if a2 > a1:
            left.append(Segment(text="".join(old_words[a1:a2]), op="delete"))
        if b2 > b1:
            right.append(Segment(text="".join(new_words[b1:b2]), op="insert"))
    return tuple(left), tuple(right)


def excerpts(
    change: ChangeRecord, versions: ChangeVersions
) -> tuple[Excerpt | None, Excerpt | None]:
    """(before, after): where the change shows in the previous and the new version's text."""
    new_sections = _sections(versions.criteria)
    old_sections = _sections(versions.previous_criteria)
    after = _find(new_sections, [change.evidence, _textual(change.after)])
    before = _find(
        old_sections, [change.evidence if after is None else None, _textual(change.before)]
    )
    if after is not None and before is None:
        before = _counterpart(old_sections, after, _text_of(new_sections, after))
        before = before or _closest(old_sections, after)
    elif before is not None and after is None:
        after = _counterpart(new_sections, before, _text_of(old_sections, before))
        after = after or _closest(new_sections, before)
    if before is not None and after is not None and before.sentence != after.sentence:
        old, new = word_diff(before.sentence, after.sentence)
        before = Excerpt(**{**before.__dict__, "segments": old})
        after = Excerpt(**{**after.__dict__, "segments": new})
    return before, after


def effective_phrase(effective: dt.date | None, today: dt.date) -> str:
    """ "effective in 45 days (2027-01-10)", "effective today", "effective since …"."""
    if effective is None:
        return "no effective date given"
    days = (effective - today).days
    if days > 1:
        return f"effective in {days} days ({effective.isoformat()})"
    if days == 1:
        return f"effective tomorrow ({effective.isoformat()})"
    if days == 0:
        return f"effective today ({effective.isoformat()})"
    return f"effective since {effective.isoformat()}"


@dataclass(frozen=True, kw_only=True)
class PageLinks:
    source: str | None  # None when the stored URL is not http(s): never a javascript: link
    version: str
    previous_version: str | None
    raw: str


def render_change_page(
    change: ChangeRecord,
    versions: ChangeVersions,
    review: Review | None,
    *,
    links: PageLinks,
    today: dt.date,
) -> str:
    before, after = excerpts(change, versions)
    # Long values (text changes) read better as one text with the differing words marked.
    long_values = len(change.before or "") > _LONG_VALUE or len(change.after or "") > _LONG_VALUE
    value_segments: tuple[tuple[Segment, ...], tuple[Segment, ...]] = ((), ())
    if long_values and change.before and change.after:
        value_segments = word_diff(change.before, change.after)
    return (
        template_environment("monitor")
        .get_template("change_page.html")
        .render(
            long_values=long_values,
            before_segments=value_segments[0],
            after_segments=value_segments[1],
            change=change,
            label=kind_label(change.kind),
            summary=describe(change, width=120),
            effective=effective_phrase(change.effective_date, today),
            future=change.effective_date is not None and change.effective_date > today,
            document=versions.document,
            version=versions.version,
            previous=versions.previous,
            excerpt_before=before,
            excerpt_after=after,
            review=review,
            links=links,
        )
    )
