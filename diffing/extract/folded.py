"""Case-insensitive patterns rewritten to search lower-cased ASCII text case-sensitively (a
case-insensitive search lower-cases every character it compares; about twice the time).

`lowered_source(alias)` is the source of a case-sensitive pattern that matches ``t.lower()``
wherever ``re.compile(alias, re.IGNORECASE)`` matches an ASCII text ``t``, at the same
positions and with the same ends, except that a ``(?-i:…)`` part (a case-sensitive
abbreviation such as "AD") matches in any case: the rewritten pattern finds a superset of the
mentions, each to be confirmed by the original pattern on the original text. Only these
constructs are rewritten: literals, classes, alternations, groups, repeats, atomic groups,
lookarounds, boundaries (a character, such as "α", stands for the ASCII ones it matches,
perhaps none); an alias using anything else (back-references, other inline flags, a
negation within a case-sensitive part or a case-sensitive part within a negative lookaround)
gets None, and its caller keeps the original search. `lowered_pattern` rewrites a whole
pattern exactly (no case-sensitive part; groups kept), for its matches to be read in place.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

_CATEGORIES = {
    sre.CATEGORY_DIGIT: r"\d",
    sre.CATEGORY_NOT_DIGIT: r"\D",
    sre.CATEGORY_SPACE: r"\s",
    sre.CATEGORY_NOT_SPACE: r"\S",
    sre.CATEGORY_WORD: r"\w",
    sre.CATEGORY_NOT_WORD: r"\W",
}
_AT = {
    sre.AT_BEGINNING: "^",
    sre.AT_BEGINNING_STRING: r"\A",
    sre.AT_END: "$",
    sre.AT_END_STRING: r"\Z",
    sre.AT_BOUNDARY: r"\b",
    sre.AT_NON_BOUNDARY: r"\B",
}


class _Unsupported(Exception):
    """A construct whose rewriting would not keep the superset (see the module docstring)."""


def lowered_source(alias: str) -> str | None:
    """The rewritten source of `alias` (see the module docstring), or None."""
    try:
        return _sequence(_parsed(alias), _Region())
    except _Unsupported:
        return None


def _parsed(source: str) -> Any:
    """`source` parsed case-insensitively; no other flag may be set in it ("(?s)", "(?m)")."""
    items = _parser.parse(source, re.IGNORECASE)
    if items.state.flags & ~(re.IGNORECASE | re.UNICODE):
        raise _Unsupported
    return items


def lowered_alternation(aliases: list[str]) -> str | None:
    """One alternation of `aliases` rewritten (`lowered_source`), those that open with the same
    character behind it: ``d(?:upilumab|upixent)|a(?:dbry)|<the others>``; None when one of
    them cannot be rewritten. (The regex engine tries an alternation's branches one by one; a
    branch that opens with a character is passed over at the cost of comparing it.)"""
    groups: dict[str, list[str]] = {}
    others: list[str] = []
    for alias in aliases:
        source = lowered_source(alias)
        if source is None:
            return None
        # Parsed again, the rewritten source opens with its first character when it has one
        # ("(?-i:AD)" rewritten is "(?:ad)", whose first item is "a").
        items = _parsed(source)
        first = items[0] if len(items) else None
        if first is not None and first[0] is sre.LITERAL:
            rest = _sequence(items[1:], _Region())
            groups.setdefault(_class(_chars_of(*first), negate=False), []).append(f"(?:{rest})")
        else:
            others.append(f"(?:{source})")
    branches = [f"{first}(?:{'|'.join(rests)})" for first, rests in groups.items()]
    return "|".join([*branches, *others])


def lowered_pattern(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    """`pattern` (case-insensitive) for lower-cased ASCII text, case-sensitive and exact: it
    matches ``t.lower()`` where `pattern` matches an ASCII text ``t``, with the same spans and
    the same groups (numbers and names); None when that cannot be had (a case-sensitive part,
    other flags, or what `lowered_source` refuses)."""
    if pattern.flags & ~(re.IGNORECASE | re.UNICODE):
        return None
    try:
        items = _parsed(pattern.pattern)
        names = {number: name for name, number in items.state.groupdict.items()}
        return re.compile(_sequence(items, _Region(exact=True, names=names)))
    except _Unsupported:
        return None


class _Region:
    """Where in the pattern an item is: in a case-sensitive part (rewritten to match more), in
    a negative lookaround (where matching more would match less)."""

    def __init__(
        self,
        *,
        relaxed: bool = False,
        negated: bool = False,
        exact: bool = False,
        names: dict[int, str] | None = None,
    ) -> None:
        if (relaxed and negated) or (relaxed and exact):
            raise _Unsupported
        self.relaxed, self.negated = relaxed, negated
        # `exact`: no part may be relaxed, and groups are kept (`names`: their names by number).
        self.exact, self.names = exact, names

    def inner(self, *, relaxed: bool = False, negated: bool = False) -> _Region:
        return _Region(
            relaxed=self.relaxed or relaxed,
            negated=self.negated or negated,
            exact=self.exact,
            names=self.names,
        )


_ASCII = [chr(code) for code in range(128)]


def finditer_in_place(
    pattern: re.Pattern[str], lowered: re.Pattern[str] | None, text: str
) -> Iterator[re.Match[str]]:
    """`pattern`'s matches in `text`. With `lowered` (`lowered_pattern(pattern)`) and ASCII
    text, its matches in the text lower-cased: the same spans and groups (the two strings are as
    long), so their texts are read in `text` by span, never by `group()`."""
    if lowered is not None and text.isascii():
        return lowered.finditer(text.lower())
    return pattern.finditer(text)


def found_in(pattern: re.Pattern[str], lowered: re.Pattern[str] | None, text: str) -> bool:
    """Whether `pattern` finds anything in `text`. With `lowered` (`lowered_pattern(pattern)`)
    and ASCII text, asked of the text lower-cased: the same answer (a case-insensitive search
    of an alternation costs several times as much)."""
    if lowered is not None and text.isascii():
        return lowered.search(text.lower()) is not None
    return pattern.search(text) is not None


@functools.cache
def _lowered_chars(item: str) -> str:
    """The lower-cased ASCII characters that the class `item` ("a", "A-Z", "\\u03b1") matches
    case-insensitively, escaped for a class: "A-Z" is "a-z"; the Kelvin sign is "k"; "α" none."""
    pattern = re.compile(f"[{item}]", re.IGNORECASE)
    return "".join(sorted({re.escape(c.lower()) for c in _ASCII if pattern.fullmatch(c)}))


def _chars_of(op: Any, value: Any) -> str:
    if op is sre.LITERAL:
        return _lowered_chars(re.escape(chr(value)))
    low, high = value  # RANGE
    return _lowered_chars(f"{re.escape(chr(low))}-{re.escape(chr(high))}")


def _class(chars: str, negate: bool) -> str:
    if not chars:
        return r"[\s\S]" if negate else "(?!)"  # any character / none
    if not negate and len(chars) == 1 + chars.startswith("\\"):
        return chars  # one character
    return ("[^" if negate else "[") + chars + "]"


def _sequence(items: Any, region: _Region) -> str:
    return "".join(_item(op, value, region) for op, value in items)


def _item(op: Any, value: Any, region: _Region) -> str:
    # Outside a case-sensitive part each item matches lower(t) exactly where it matched t; in
    # one, a literal or class matches its letters in any case (more), a negation would not.
    if op is sre.LITERAL:
        return _class(_chars_of(op, value), negate=False)
    if op is sre.NOT_LITERAL and not region.relaxed:
        return _class(_chars_of(sre.LITERAL, value), negate=True)
    if op is sre.IN:
        negate = value[:1] == [(sre.NEGATE, None)]
        if negate and region.relaxed:
            raise _Unsupported
        items = value[1:] if negate else value
        return _class("".join(_class_item(o, v) for o, v in items), negate)
    if op is sre.BRANCH:
        return "(?:" + "|".join(_sequence(branch, region) for branch in value[1]) + ")"
    if op is sre.SUBPATTERN:
        group, add_flags, del_flags, inner = value
        if (add_flags | del_flags) & ~re.IGNORECASE:
            raise _Unsupported
        inner_source = _sequence(inner, region.inner(relaxed=bool(del_flags & re.IGNORECASE)))
        if region.exact and group is not None:
            name = (region.names or {}).get(group)
            return ("(" if name is None else f"(?P<{name}>") + inner_source + ")"
        return "(?:" + inner_source + ")"
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        low, high, inner = value
        bound = f"{{{low},{'' if high is sre.MAXREPEAT else high}}}"
        kind = {sre.MIN_REPEAT: "?", sre.POSSESSIVE_REPEAT: "+"}.get(op, "")
        return "(?:" + _sequence(inner, region) + ")" + bound + kind
    if op is sre.ATOMIC_GROUP:
        return "(?>" + _sequence(value, region) + ")"
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        direction, inner = value
        negated = op is sre.ASSERT_NOT
        opening = ("(?" + ("<" if direction < 0 else "")) + ("!" if negated else "=")
        return opening + _sequence(inner, region.inner(negated=negated)) + ")"
    if op is sre.ANY:
        return "."
    if op is sre.AT and value in _AT:
        return _AT[value]
    raise _Unsupported


def _class_item(op: Any, value: Any) -> str:
    if op in (sre.LITERAL, sre.RANGE):
        return _chars_of(op, value)
    if op is sre.CATEGORY and value in _CATEGORIES:
        return _CATEGORIES[value]
    raise _Unsupported


# A word's start as the look-behind ``(?<![\w-])`` asks it, asked of the character before instead:
# in lower-cased ASCII text (no "A"-"Z") a character that is not ``[\w-]`` is one of these.
WORD_START = r"(?<![\w-])"
_NOT_WORD_OR_HYPHEN = r"[^a-z0-9_\-]"


def after_non_word(lowered_rest: str) -> re.Pattern[str]:
    r"""`lowered_rest` (a case-sensitive source for lower-cased ASCII text) after one character
    that is no word character or hyphen: where ``(?<![\w-])`` + `lowered_rest` matches at a
    position p > 0, this matches at p - 1 (and nowhere else), one character longer. A search
    for it passes over the letters inside words as a search for one of a set of characters
    (the regex engine's quick scan of a pattern that opens with a class), where the
    look-behind was tried, and failed, at each of them."""
    return re.compile(_NOT_WORD_OR_HYPHEN + "(?:" + lowered_rest + ")")


def word_start(
    lowered: re.Pattern[str], after: re.Pattern[str], low: str, position: int
) -> int | None:
    r"""Where the first match from `position` on of `lowered` (``(?<![\w-])`` + a rest) in
    `low` (lower-cased ASCII text) starts, found with `after` (`after_non_word` of the rest)
    past the text's start."""
    if position == 0:
        if lowered.match(low) is not None:
            return 0
        position = 1
    found = after.search(low, position - 1)
    return None if found is None else found.start() + 1
