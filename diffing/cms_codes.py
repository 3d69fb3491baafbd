"""Code references made and ordered in bulk, for CMS code tables (half a million rows in a full
baseline): `CodeRefBuilder` makes a `CodeRef` without the frozen dataclass's per-field
``object.__setattr__``, and `sorted_codes` orders a criteria's codes once for both the rule
rows and the stored JSON, or not at all when they were made in order (`codes_in_order`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from operator import attrgetter

from diffing.model import CodeRef, CodeSystem, CoverageFlag


class CodeRefBuilder:
    """`CodeRef`'s slots, not frozen: built here, an instance becomes a `CodeRef` by
    ``__class__`` assignment (CPython allows it between classes of the same slot layout and
    raises TypeError on any other, so a field added to `CodeRef` fails loudly here). About five
    times quicker than `CodeRef(...)`, whose generated ``__init__`` calls
    ``object.__setattr__`` per field. Use `code_ref`, which returns the `CodeRef`."""

    __slots__ = CodeRef.__slots__

    def __init__(
        self,
        system: CodeSystem,
        flag: CoverageFlag,
        code: str,
        group: int | None,
        description: str,
    ) -> None:
        self.system = system
        self.flag = flag
        self.code = code
        self.group = group
        self.description = description


def code_ref(
    system: CodeSystem, flag: CoverageFlag, code: str, group: int | None, description: str
) -> CodeRef:
    """``CodeRef(system=…, flag=…, code=…, group=…, description=…)``, equal in every way."""
    ref = CodeRefBuilder(system, flag, code, group, description)
    ref.__class__ = CodeRef  # type: ignore[assignment]
    return ref  # type: ignore[return-value]


# CodeRef's order (system, flag, code): the same as its own comparison and as the order of
# (system.value, flag.value, code), since both enums are StrEnums; as a key sorted() applies in C.
_CODE_ORDER = attrgetter("system", "flag", "code")

# The last set sorted and its order. Publishing a version serialises its criteria and then
# flattens them into rule rows, and both want the codes in this order: the second asks for the
# same frozenset (immutable, so the order kept for it stays right) and is answered from here.
_last = threading.local()

# Sets made from codes already in order (`codes_in_order`), by id, each with its order; the
# set itself is kept too, so no other object takes its id while it waits. Made by the thread
# extracting a CMS bundle, asked for by the one publishing it; at most `_MAX_ORDERS` wait (the
# oldest is let go: its set is sorted when asked for, as any other).
_orders: dict[int, tuple[frozenset[CodeRef], tuple[CodeRef, ...]]] = {}
_orders_lock = threading.Lock()
_MAX_ORDERS = 1024


def codes_in_order(ordered: Sequence[CodeRef]) -> frozenset[CodeRef]:
    """``frozenset(ordered)``, whose `sorted_codes` is `ordered` without sorting: `ordered`
    must be in CodeRef order, each code once (a CMS bundle's codes come out of `_codes` so)."""
    codes = frozenset(ordered)
    if 1 < len(codes) == len(ordered):
        with _orders_lock:
            if len(_orders) >= _MAX_ORDERS:
                del _orders[next(iter(_orders))]
            _orders[id(codes)] = (codes, tuple(ordered))
    return codes


def sorted_codes(codes: frozenset[CodeRef]) -> tuple[CodeRef, ...]:
    """`codes` in CodeRef order (system, flag, code)."""
    kept: tuple[frozenset[CodeRef], tuple[CodeRef, ...]] | None = getattr(_last, "sorted", None)
    if kept is not None and kept[0] is codes:
        return kept[1]
    with _orders_lock:
        made = _orders.pop(id(codes), None)
    if made is not None and made[0] is codes:
        ordered = made[1]
    else:
        ordered = tuple(sorted(codes, key=_CODE_ORDER))
    _last.sorted = (codes, ordered)
    return ordered
