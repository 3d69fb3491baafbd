"""A code that moves between a document's covered and not-covered lists is one
`code_coverage_changed` (not a removal plus an addition), verified against both texts and worded
as lists; and a dated history line is noise however many sentences it runs to.

Fixture text is invented for these tests (no payer text)."""

from __future__ import annotations

import datetime as dt

from diffing.diff import diff_criteria
from diffing.model import (
    Change,
    ChangeKind,
    CodeRef,
    CodeSystem,
    CoverageFlag,
    Criteria,
    PolicyDiff,
    Section,
    Severity,
)
from diffing.verify import verdicts, verify_diff
from monitor.report import describe, grouped_report, kind_label
from monitor.store.core import ChangeRecord
from monitor.wording import value_as_written

TODAY = dt.date(2026, 2, 1)
COVERED, NONCOVERED = CoverageFlag.COVERED, CoverageFlag.NONCOVERED
HCPCS, ICD10 = CodeSystem.HCPCS, CodeSystem.ICD10


def _code(code: str, flag: CoverageFlag, system: CodeSystem = HCPCS, **more: object) -> CodeRef:
    return CodeRef(system=system, flag=flag, code=code, **more)  # type: ignore[arg-type]


def _policy(*codes: CodeRef, sections: tuple[Section, ...] = ()) -> Criteria:
    return Criteria(
        document_id="/policies/lab/widget-panel.pdf",
        doc_type="payer_policy",
        title="Widget gene panels",
        version=None,
        status="active",
        payer="Acme Health",
        codes=frozenset(codes),
        sections=sections,
    )


def _code_changes(old: Criteria, new: Criteria) -> list[Change]:
    kinds = {
        ChangeKind.CODE_ADDED,
        ChangeKind.CODE_REMOVED,
        ChangeKind.CODE_COVERAGE_CHANGED,
        ChangeKind.CODE_GROUP_CHANGED,
    }
    return [c for c in diff_criteria(old, new, today=TODAY).changes if c.kind in kinds]


# --- the diff -------------------------------------------------------------------------------


def test_not_covered_to_covered_is_one_medium_coverage_change() -> None:
    old = _policy(_code("0999U", NONCOVERED, description="widget variant analysis"))
    new = _policy(_code("0999U", COVERED, description="widget variant analysis"))
    [change] = _code_changes(old, new)
    assert change.kind is ChangeKind.CODE_COVERAGE_CHANGED
    assert (change.field, change.before, change.after) == ("0999U", "hcpcs_noncovered", "hcpcs")
    assert change.severity is Severity.MEDIUM
    # The code's line as the new version lists it: what the change page looks for.
    assert change.evidence == "0999U widget variant analysis"


def test_covered_to_not_covered_is_high() -> None:
    old = _policy(_code("0999U", COVERED))
    new = _policy(_code("0999U", NONCOVERED))
    [change] = _code_changes(old, new)
    assert change.kind is ChangeKind.CODE_COVERAGE_CHANGED
    assert (change.before, change.after) == ("hcpcs", "hcpcs_noncovered")
    assert change.severity is Severity.HIGH


def test_icd10_diagnosis_newly_excluded_is_high() -> None:
    old = _policy(_code("Q99.8", COVERED, ICD10))
    new = _policy(_code("Q99.8", NONCOVERED, ICD10))
    [change] = _code_changes(old, new)
    assert (change.kind, change.field) == (ChangeKind.CODE_COVERAGE_CHANGED, "Q99.8")
    assert (change.before, change.after) == ("icd10_covered", "icd10_noncovered")
    assert change.severity is Severity.HIGH


def test_evidence_quotes_both_versions_when_they_differ() -> None:
    old = _policy(_code("0999U", NONCOVERED, description="widget analysis, common variants"))
    new = _policy(_code("0999U", COVERED, description="widget analysis, all variants"))
    [change] = _code_changes(old, new)
    assert change.evidence is not None
    assert "common variants" in change.evidence and "all variants" in change.evidence


def test_moves_sit_beside_real_removals_and_additions() -> None:
    old = _policy(_code("0999U", NONCOVERED), _code("0888U", COVERED), _code("0777U", COVERED))
    new = _policy(_code("0999U", COVERED), _code("0777U", COVERED), _code("0666U", NONCOVERED))
    shown = {(c.kind, c.field, c.before, c.after) for c in _code_changes(old, new)}
    assert shown == {
        (ChangeKind.CODE_COVERAGE_CHANGED, "0999U", "hcpcs_noncovered", "hcpcs"),
        (ChangeKind.CODE_REMOVED, "hcpcs", "0888U", None),
        (ChangeKind.CODE_ADDED, "hcpcs_noncovered", None, "0666U"),
    }


def test_a_code_kept_on_one_list_and_dropped_from_the_other_is_a_removal() -> None:
    # Listed on both lists before (e.g. covered for one test, not for another), one after: the
    # code did not move, it left one list.
    old = _policy(_code("0999U", NONCOVERED), _code("0999U", COVERED))
    new = _policy(_code("0999U", COVERED))
    [change] = _code_changes(old, new)
    assert (change.kind, change.field, change.before) == (
        ChangeKind.CODE_REMOVED,
        "hcpcs_noncovered",
        "0999U",
    )


def test_a_group_move_within_one_list_stays_a_group_change() -> None:
    old = _policy(_code("Q99.8", COVERED, ICD10, group=1))
    new = _policy(_code("Q99.8", COVERED, ICD10, group=2))
    [change] = _code_changes(old, new)
    assert change.kind is ChangeKind.CODE_GROUP_CHANGED


def test_coverage_change_inverts() -> None:
    a = _policy(_code("0999U", NONCOVERED))
    b = _policy(_code("0999U", COVERED))
    [forward], [backward] = _code_changes(a, b), _code_changes(b, a)
    assert (forward.field, forward.before, forward.after) == (
        backward.field,
        backward.after,
        backward.before,
    )
    assert {forward.severity, backward.severity} == {Severity.MEDIUM, Severity.HIGH}


# --- verification against the texts ---------------------------------------------------------

OLD_TEXT = (
    "Widget panels\nCovered: 0777U widget single gene.\n"
    "Not covered (experimental): 0999U widget variant analysis."
)
NEW_TEXT = (
    "Widget panels\nCovered: 0777U widget single gene; 0999U widget variant analysis.\n"
    "Not covered (experimental): none."
)


def _coverage_diff() -> PolicyDiff:
    change = Change(
        kind=ChangeKind.CODE_COVERAGE_CHANGED,
        severity=Severity.MEDIUM,
        field="0999U",
        before="hcpcs_noncovered",
        after="hcpcs",
    )
    return PolicyDiff(document_id="d", old_version=None, new_version=None, changes=(change,))


def test_a_move_both_texts_name_is_verified() -> None:
    [verdict] = verdicts(_coverage_diff(), OLD_TEXT, NEW_TEXT)
    assert verdict.verified
    assert verdict.new_evidence is not None and "0999U" in verdict.new_evidence


def test_a_move_to_a_code_the_new_text_never_names_is_unverified() -> None:
    new_text = NEW_TEXT.replace("; 0999U widget variant analysis", "")
    [change] = verify_diff(_coverage_diff(), OLD_TEXT, new_text).changes
    assert change.severity is Severity.UNVERIFIED
    assert change.claimed_severity is Severity.MEDIUM
    assert change.contradiction is not None and "new text" in change.contradiction


def test_a_move_of_a_code_the_old_text_never_named_is_unverified() -> None:
    old_text = OLD_TEXT.replace("0999U widget variant analysis", "none")
    [verdict] = verdicts(_coverage_diff(), old_text, NEW_TEXT)
    assert not verdict.verified
    assert "old text" in verdict.reason


def test_a_line_saying_the_code_is_no_longer_excluded_still_names_it() -> None:
    # Removal words on the line make a `code_removed` check skip it; a move is about presence.
    new_text = "0999U is no longer considered experimental and is covered."
    [verdict] = verdicts(_coverage_diff(), OLD_TEXT, new_text)
    assert verdict.verified


def test_end_to_end_diff_then_verify_publishes_the_move() -> None:
    old = _policy(_code("0999U", NONCOVERED), _code("0777U", COVERED))
    new = _policy(_code("0999U", COVERED), _code("0777U", COVERED))
    verified = verify_diff(diff_criteria(old, new, today=TODAY), OLD_TEXT, NEW_TEXT)
    [change] = [c for c in verified.changes if c.kind is ChangeKind.CODE_COVERAGE_CHANGED]
    assert change.severity is Severity.MEDIUM


# --- wording --------------------------------------------------------------------------------


def _record(**values: object) -> ChangeRecord:
    base: dict[str, object] = {
        "id": 1,
        "source": "acme",
        "document_id": "/policies/lab/widget-panel.pdf",
        "title": "Widget gene panels",
        "kind": "code_coverage_changed",
        "field": "0999U",
        "before": "hcpcs_noncovered",
        "after": "hcpcs",
        "severity": "medium",
        "effective_date": None,
        "detected_at": dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
        "url": "https://payer.example/widget-panel.pdf",
        "version": "v2",
        "previous_version": "v1",
        "evidence": "0999U widget variant analysis",
        "baseline": False,
    }
    base.update(values)
    return ChangeRecord(**base)  # type: ignore[arg-type]


def test_lists_are_worded_for_people() -> None:
    assert value_as_written("code_coverage_changed", "0999U", "hcpcs_noncovered", None) == (
        "not covered (CPT/HCPCS)"
    )
    assert value_as_written("code_coverage_changed", "Q99.8", "icd10_covered", None) == (
        "covered (ICD-10)"
    )
    # Other kinds keep their values: a table name is only a list for a coverage change.
    assert value_as_written("code_removed", "hcpcs", "0999U", None) == "0999U"


def test_a_report_line_names_the_code_and_both_lists() -> None:
    assert kind_label("code_coverage_changed") == "code coverage changed"
    line = describe(_record())
    assert line == "code coverage changed (0999U): not covered (CPT/HCPCS) → covered (CPT/HCPCS)"


def test_the_grouped_report_quotes_the_code_as_listed() -> None:
    report = grouped_report([_record(severity="high")], title="Changes")
    assert "HIGH    code coverage changed (0999U)" in report
    assert "            0999U widget variant analysis" in report


# --- dated history lines --------------------------------------------------------------------

CRITERIA = "Widget testing is covered when the patient meets all criteria below."
ENTRY = (
    "01/2026 - The purpose of this update is a quarterly coding refresh. "
    "No coverage is changed by this update. (ref 1234)"
)
OLDER = "10/2025 - Codes were refreshed. No coverage is changed by this update. (ref 1200)"


def _section_change(before: str, after: str) -> Change:
    old = _policy(sections=(Section(name="preamble", text=before),))
    new = _policy(sections=(Section(name="preamble", text=after),))
    [change] = [
        c
        for c in diff_criteria(old, new, today=TODAY).changes
        if c.kind is ChangeKind.SECTION_CHANGED
    ]
    return change


def test_a_new_history_entry_of_several_sentences_is_noise() -> None:
    change = _section_change(
        f"{CRITERIA}\nRevision history\n{OLDER}", f"{CRITERIA}\nRevision history\n{ENTRY}\n{OLDER}"
    )
    assert change.severity is Severity.NOISE


def test_a_criteria_sentence_is_not_history_because_a_dated_line_repeats_it() -> None:
    # The one new sentence stands on an undated line of the new text (and on a dated one): it
    # may be the criteria's own sentence, so the change is scored as text.
    change = _section_change(
        f"{CRITERIA}\n{OLDER}", f"{CRITERIA}\nNo coverage is changed by this update.\n{OLDER}"
    )
    assert change.after == "No coverage is changed by this update."
    assert change.severity is Severity.LOW


def test_an_undated_criteria_change_beside_a_history_entry_is_not_noise() -> None:
    change = _section_change(
        f"{CRITERIA}\n{OLDER}",
        f"{CRITERIA}\nPrior authorization is required for widget panels.\n{ENTRY}\n{OLDER}",
    )
    assert change.severity is Severity.MEDIUM
