"""Fewer garbage collections while a source runs.

A baseline makes and keeps hundreds of thousands of objects (bundles, criteria, rule rows on
their way to the store). With CPython's default thresholds (700, 10, 10) a collection of the
youngest generation runs every 700 allocations and each tenth of those of the middle one, and a
full collection follows whenever the objects that survived grew by a quarter: in a CMS
full-scale baseline that was 18 full collections of about 0.3 s each, 15-20 % of the process's
time holding the GIL, for almost no garbage (the objects were alive). While a run is under way
the youngest generation is collected every 10,000 allocations instead, so every generation is
collected about fourteen times less often; what a run leaves as cyclic garbage is still
collected, later. The thresholds in force before are put back when the last run of the process
ends (the daemon runs sources in threads at once: the first run in raises, the last one out
restores).
"""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

RUN_THRESHOLD = 10_000  # allocations between collections of the youngest generation

_lock = threading.Lock()
_running = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect the youngest generation every RUN_THRESHOLD allocations (never more often than
    the thresholds in force already ask) until the last run of this process using it ends."""
    global _running, _saved
    with _lock:
        if _running == 0:
            _saved = gc.get_threshold()
            first, *older = _saved
            if first != 0:  # 0: collection is off; leave it so
                gc.set_threshold(max(first, RUN_THRESHOLD), *older)
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None


_P = ParamSpec("_P")
_T = TypeVar("_T")


def with_fewer_collections(
    run: Callable[_P, Coroutine[Any, Any, _T]],
) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """`run` (a coroutine function) awaited within `fewer_collections`."""

    @functools.wraps(run)
    async def wrapped(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        with fewer_collections():
            return await run(*args, **kwargs)

    return wrapped
