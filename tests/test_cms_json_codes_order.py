"""A CMS bundle's codes come out of extraction in CodeRef order, and `sorted_codes` answers
with that order (which the criteria JSON and the rule rows are written in) without sorting:
it must be exactly the order sorting gives."""

from __future__ import annotations

import random
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from diffing import cms, cms_codes
from diffing.cms_codes import codes_in_order, sorted_codes
from diffing.model import CodeRef

_code = st.text(alphabet="ABEJKLZ0123456789.-ab é", min_size=0, max_size=6)
_row = st.fixed_dictionaries(
    {"code": _code, "group": st.one_of(st.none(), st.integers(0, 9), st.just("3"))}
)


def _tables(rows: dict[str, list[dict[str, object]]]) -> dict[str, list[dict[str, object]]]:
    """Rows in the API's shape for each table of `cms.CODE_TABLES`."""
    out: dict[str, list[dict[str, object]]] = {}
    for table, _system, _flag, code_col, group_col in cms.CODE_TABLES:
        out[table] = [
            {code_col: r["code"], group_col: r["group"], "description": f"d {i}"}
            for i, r in enumerate(rows.get(table, []))
        ]
    return out


def _sorted_afresh(codes: frozenset[CodeRef]) -> list[CodeRef]:
    return sorted(codes)


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from([t[0] for t in cms.CODE_TABLES]), st.lists(_row)))
def test_extracted_codes_are_in_the_order_sorting_gives(
    rows: dict[str, list[dict[str, object]]],
) -> None:
    codes = cms._codes(_tables(rows))
    expected = _sorted_afresh(codes)
    assert (id(codes) in cms_codes._orders) == (len(codes) > 1)  # answered without sorting
    # Asked from another thread (the publishing one), so not answered by this thread's last.
    answers: list[tuple[CodeRef, ...]] = []
    worker = threading.Thread(target=lambda: answers.append(sorted_codes(codes)))
    worker.start()
    worker.join()
    assert list(answers[0]) == expected
    assert [(c.group, c.description) for c in answers[0]] == [
        (c.group, c.description) for c in expected
    ]


def test_a_set_not_made_in_order_is_sorted_and_the_kept_orders_are_bounded() -> None:
    refs = [
        CodeRef(system=s, flag=f, code=c)
        for s, f, _t in {(t[1], t[2], 0) for t in cms.CODE_TABLES}
        for c in ("B", "A", "C")
    ]
    random.Random(1).shuffle(refs)
    assert list(sorted_codes(frozenset(refs))) == sorted(refs)
    for n in range(cms_codes._MAX_ORDERS + 10):
        codes_in_order(sorted(refs)[: 2 + n % 5])
    assert len(cms_codes._orders) <= cms_codes._MAX_ORDERS
    # A duplicate in `ordered` means it is not the set's order: nothing is kept for it.
    twice = codes_in_order([refs[0], refs[0], refs[1]])
    assert id(twice) not in cms_codes._orders
    assert list(sorted_codes(twice)) == sorted(twice)
