"""The most rows one list query of the store hands back: every list the API or the CLI asks
for is a page, so no caller (a remote client least of all) can make the store load a whole
table into memory."""

from __future__ import annotations

# Above the API's largest page (500, `monitor.api.deps.MAX_PAGE`) plus the one more row a
# route asks for to learn whether another page follows.
MAX_LIST_ROWS = 1000


def bounded(limit: int, maximum: int = MAX_LIST_ROWS) -> int:
    """`limit` held to 1..`maximum`: a larger one gets `maximum` rows (a page, with a cursor
    to carry on), a non-positive one is a caller's bug."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    return min(limit, maximum)
