"""Properties of the diff: a version compared with itself is empty; diffs invert."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from diffing.diff import diff_criteria
from diffing.model import ChangeKind, CodeRef, CodeSystem, CoverageFlag, Criteria, Section

TODAY = dt.date(2026, 11, 12)
codes = st.builds(
    CodeRef,
    system=st.sampled_from(list(CodeSystem)),
    flag=st.sampled_from(list(CoverageFlag)),
    code=st.sampled_from(["11400", "17110", "L82.0", "L82.1", "D22.5", "KX", "Q4101", "C44.311"]),
    group=st.one_of(st.none(), st.integers(1, 3)),
)
sentence = st.sampled_from(
    [
        "The lesion bleeds.",
        "It is painful.",
        "The medical record must describe the lesion.",
        "Photographs are kept.",
        "Coverage is limited to two sessions.",
    ]
)
criteria = st.builds(
    Criteria,
    document_id=st.just("L33979"),
    doc_type=st.just("LCD"),
    title=st.sampled_from(["Removal of Benign Skin Lesions", "Benign Skin Lesion Removal"]),
    version=st.sampled_from(["1", "2"]),
    status=st.sampled_from(["active", "retired"]),
    effective_date=st.sampled_from([None, dt.date(2026, 1, 1), dt.date(2026, 6, 1)]),
    codes=st.frozensets(codes, max_size=8),
    sections=st.lists(sentence, max_size=4).map(
        lambda s: (Section(name="indication", text="\n".join(s)),) if s else ()
    ),
)
INVERSE = {
    ChangeKind.CODE_ADDED: ChangeKind.CODE_REMOVED,
    ChangeKind.CODE_REMOVED: ChangeKind.CODE_ADDED,
}


@given(criteria)
def test_diff_with_itself_is_empty(a: Criteria) -> None:
    assert diff_criteria(a, a, today=TODAY).is_empty


@given(criteria, criteria)
def test_code_and_text_changes_invert(a: Criteria, b: Criteria) -> None:
    forward = diff_criteria(a, b, today=TODAY).changes
    backward = diff_criteria(b, a, today=TODAY).changes

    def keyed(changes: tuple, invert: bool) -> set[tuple]:
        out = set()
        for c in changes:
            kind = INVERSE.get(c.kind, c.kind) if invert else c.kind
            before, after = (c.after, c.before) if invert else (c.before, c.after)
            if c.kind in INVERSE or c.kind in (
                ChangeKind.SECTION_CHANGED,
                ChangeKind.TITLE_CHANGED,
                ChangeKind.CODE_GROUP_CHANGED,
            ):
                out.add((kind, c.field, before, after))
        return out

    assert keyed(forward, invert=False) == keyed(backward, invert=True)


@given(criteria)
def test_first_version_is_one_document_added(a: Criteria) -> None:
    changes = diff_criteria(None, a, today=TODAY).changes
    assert [c.kind for c in changes] == [ChangeKind.DOCUMENT_ADDED]
