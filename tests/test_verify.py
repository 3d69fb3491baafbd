"""diffing.verify: a change the two texts contradict is published as unverified, never alerted."""

from __future__ import annotations

from diffing.model import (
    Change,
    ChangeKind,
    CodeRef,
    CodeSystem,
    CoverageFlag,
    Criteria,
    PolicyDiff,
    Severity,
)
from diffing.verify import extraction_collapsed, find_code, verdicts, verify_diff

OLD = """Covered codes
81455 Targeted genomic sequence analysis panel
81458
81479 Unlisted molecular pathology procedure
Diagnosis codes C18.0 Malignant neoplasm of cecum; C21.8 other
Trial of a topical corticosteroid for at least 8 weeks.
"""
NEW = """Covered codes
81455Targeted genomic sequence analysis panel
81458
81459
Diagnosis codes C180, C21.8
Trial of a topical corticosteroid for at least 8 weeks.
Revision history: removed CPT 81479.
"""


def _diff(*changes: Change) -> PolicyDiff:
    return PolicyDiff(document_id="doc", old_version="1", new_version="2", changes=changes)


def _removed(code: str) -> Change:
    return Change(kind=ChangeKind.CODE_REMOVED, severity=Severity.HIGH, field="hcpcs", before=code)


def _added(code: str, field: str = "hcpcs") -> Change:
    return Change(kind=ChangeKind.CODE_ADDED, severity=Severity.MEDIUM, field=field, after=code)


def test_code_removed_but_still_listed_is_unverified() -> None:
    checked = verify_diff(_diff(_removed("81458"), _removed("81455")), OLD, NEW)
    assert [c.severity for c in checked.changes] == [Severity.UNVERIFIED, Severity.UNVERIFIED]
    first = checked.changes[0]
    assert first.claimed_severity is Severity.HIGH
    assert first.contradiction is not None and "81458" in first.contradiction


def test_real_removal_stays_even_when_the_history_names_it() -> None:
    checked = verify_diff(_diff(_removed("81479")), OLD, NEW)
    assert checked.changes[0].severity is Severity.HIGH
    assert checked.changes[0].contradiction is None


def test_code_added_that_was_already_there_is_unverified() -> None:
    diff = _diff(
        _added("C18.0", "icd10_covered"), _added("C21.8", "icd10_covered"), _added("81459")
    )
    found = verdicts(diff, OLD, NEW)
    assert [v.verified for v in found] == [False, False, True]
    assert found[0].old_evidence is not None and "C18.0" in found[0].old_evidence


def test_code_moved_between_tables_is_verified() -> None:
    moved = _diff(_removed("81458"), _added("81458", "hcpcs_noncovered"))
    assert all(v.verified for v in verdicts(moved, OLD, NEW))


def test_a_code_inside_a_stated_range_is_still_listed() -> None:
    assert find_code("Codes 81410-81417 apply", "81412") is not None
    assert find_code("Codes 81410-81417 apply", "81418") is None
    assert find_code("dose 814123 mg", "81412") is None


def test_duration_change_contradicted_by_the_new_text() -> None:
    claimed = Change(
        kind=ChangeKind.STEP_THERAPY_CHANGED,
        severity=Severity.HIGH,
        field="min_duration_days",
        before="56",
        after="84",
    )
    assert verify_diff(_diff(claimed), OLD, NEW).changes[0].severity is Severity.UNVERIFIED
    rewritten = NEW.replace("8 weeks", "twelve (12) weeks")
    assert verify_diff(_diff(claimed), OLD, rewritten).changes[0].severity is Severity.HIGH


def test_drug_added_already_named_is_unverified() -> None:
    old, new = "Preferred: Dupixent (dupilumab)", "Preferred: dupilumab, tralokinumab"
    diff = _diff(
        Change(kind=ChangeKind.DRUG_ADDED, severity=Severity.MEDIUM, after="dupilumab"),
        Change(kind=ChangeKind.DRUG_ADDED, severity=Severity.MEDIUM, after="tralokinumab"),
    )
    assert [v.verified for v in verdicts(diff, old, new)] == [False, True]


def test_unverified_is_never_alerted() -> None:
    assert Severity.UNVERIFIED.rank < Severity.LOW.rank


def _criteria(codes: list[str]) -> Criteria:
    return Criteria(
        document_id="doc",
        doc_type="payer_policy",
        title="t",
        version=None,
        status="active",
        codes=frozenset(
            CodeRef(system=CodeSystem.HCPCS, flag=CoverageFlag.COVERED, code=c) for c in codes
        ),
    )


def test_extraction_collapse_is_a_failure_not_a_rewrite() -> None:
    old_codes = [f"8{n:04d}" for n in range(1100, 1140)]
    new_text = "\n".join(f"{code}Gene analysis" for code in old_codes[:36])
    old, collapsed = _criteria(old_codes), _criteria(old_codes[:5])
    reason = extraction_collapsed("", new_text, old, collapsed)
    assert reason is not None and "36 of the 40" in reason
    # A real rewrite: the text no longer lists them either.
    assert extraction_collapsed("", "\n".join(old_codes[:5]), old, collapsed) is None
    # Extraction kept up: no collapse whatever the text.
    assert extraction_collapsed("", new_text, old, _criteria(old_codes[:30])) is None


def test_a_change_log_entry_that_added_a_code_does_not_keep_it_listed() -> None:
    """A later version keeps "Added ICD-10 code L40.1" in its history after the code left the
    table: that names the code, it does not list it (the fixture adalimumab policy)."""
    from diffing.verify import find_code

    history = (
        "Diagnosis Code | Description\nL40.0 | Psoriasis vulgaris\n"
        "Date | Summary of Changes\n02/15/2026 | Applicable Codes • Removed ICD-10 code L40.1\n"
        "01/01/2025 | Applicable Codes • Added ICD-10 code L40.1 Supporting Information"
    )
    assert find_code(history, "L40.1") is None
    assert find_code(history + "\nL40.1 | Generalized pustular psoriasis", "L40.1")
