"""The PDF parser's reading order: one sort on top, rows re-sorted by left only where needed,
must be exactly the sort by (top, left) it replaced, ties kept in printed order."""

from __future__ import annotations

import random
from operator import itemgetter

from diffing.parse.pdf import _reading_order
from diffing.parse.pdf_glyphs import Glyph


def _glyphs(rng: random.Random, count: int) -> list[Glyph]:
    # Few distinct tops and lefts, so that rows, ties and leftward steps are common.
    tops = [rng.choice((10.0, 12.5, 12.5, 30.0, 31.25)) for _ in range(count)]
    return [
        (f"g{i}", rng.choice((5.0, 7.5, 7.5, 9.0, 20.0)), 0.0, top, top + 10, 10.0, False)
        for i, top in enumerate(tops)
    ]


def test_reading_order_is_the_sort_by_top_then_left() -> None:
    rng = random.Random(17)
    for count in (0, 1, 2, 5, 40, 300):
        for _ in range(50):
            glyphs = _glyphs(rng, count)
            expected = sorted(glyphs, key=itemgetter(3, 1))
            _reading_order(glyphs)
            assert glyphs == expected


def test_rows_printed_in_order_are_left_as_printed() -> None:
    row = [("a", 1.0, 2.0, 5.0, 9.0, 4.0, False), ("b", 1.0, 2.0, 5.0, 9.0, 4.0, False)]
    glyphs = [("c", 0.0, 1.0, 20.0, 24.0, 4.0, False), *row]
    _reading_order(glyphs)
    assert glyphs == [*row, ("c", 0.0, 1.0, 20.0, 24.0, 4.0, False)]
