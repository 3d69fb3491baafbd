"""The readings of short texts, remembered: a worker reads many documents of one payer, and
its policies repeat their sentences, table rows and list items ("Authorization will be issued
for 12 months", "Patient is 18 years of age or older"). The readers remembered are pure
functions of their text, so a remembered answer is the answer; they stay as they were, for
the callers (and tests) that want each text read.

    remembered_durations = per_text(find_durations)   # what the extractor and the tree call

Only texts of at most `MAX_CHARS` characters are remembered (a sentence, a row, an item): a
section's whole text is rarely read twice and would keep megabytes alive. At most `SIZE` of
them, the least recently read forgotten first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

MAX_CHARS = 1000
SIZE = 4096

_Item = TypeVar("_Item")


def per_text(read: Callable[[str], list[_Item]]) -> Callable[[str], list[_Item]]:
    """`read` remembered for short texts. Its items must be immutable (frozen dataclasses):
    they are shared between the calls; each call gets a list of its own."""

    @functools.lru_cache(maxsize=SIZE)
    def remembered(text: str) -> tuple[_Item, ...]:
        return tuple(read(text))

    @functools.wraps(read)
    def reading(text: str) -> list[_Item]:
        if len(text) > MAX_CHARS:
            return read(text)
        return list(remembered(text))

    return reading


_Value = TypeVar("_Value")


def per_short_text(read: Callable[..., _Value]) -> Callable[..., _Value]:
    """`read(text, *more)` remembered when `text` is short, by all its arguments (hashable).
    Its value must be immutable: every call gets the same one."""
    remembered = functools.lru_cache(maxsize=SIZE)(read)

    @functools.wraps(read)
    def reading(text: str, *more: object) -> _Value:
        if len(text) > MAX_CHARS:
            return read(text, *more)
        return remembered(text, *more)

    return reading
