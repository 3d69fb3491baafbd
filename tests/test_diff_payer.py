"""Criteria-level diff of payer policies, and the round trip of payer criteria through JSON."""

from __future__ import annotations

import dataclasses
import datetime as dt

from diffing.diff import diff_criteria
from diffing.model import (
    AgeLimit,
    ApprovalPeriod,
    ChangeKind,
    Criteria,
    DrugMention,
    Evidence,
    PriorAuth,
    RevisionEntry,
    Section,
    Severity,
    StepTherapy,
    Threshold,
)
from diffing.serialize import criteria_from_json, criteria_to_json

TODAY = dt.date(2026, 2, 1)
OLD_SENTENCE = (
    "Patient has tried at least one medium-potency topical corticosteroid applied daily for at "
    "least 8 weeks with inadequate response."
)
NEW_SENTENCE = (
    "Patient has tried at least one medium-potency topical corticosteroid applied daily for a "
    "minimum of 12 weeks with inadequate response."
)


def _policy(*, weeks: int, sentence: str, **changes: object) -> Criteria:
    base = Criteria(
        document_id="/policies/drug/dupixent-dupilumab.pdf",
        doc_type="payer_policy",
        title="Dupixent (dupilumab)",
        version=None,
        status="active",
        effective_date=dt.date(2026, 3, 1),
        payer="Acme Health",
        policy_number="2026D0045A",
        sections=(
            Section(
                name="coverage rationale",
                text=f"Dupixent is proven for atopic dermatitis.\n{sentence}",
            ),
        ),
        drugs=(DrugMention(name="dupilumab", drug_class="IL-4 receptor antagonist"),),
        step_therapy=(
            StepTherapy(
                prerequisite="topical corticosteroid",
                drug="dupilumab",
                indication="atopic dermatitis",
                min_duration_days=weeks * 7,
                evidence=Evidence(sentence=sentence, page=2, section="coverage rationale"),
            ),
        ),
        approval_periods=(ApprovalPeriod(phase="initial", days=183, drug="dupilumab"),),
        thresholds=(Threshold(measure="BSA", op=">=", value=10, unit="%"),),
        age_limits=(AgeLimit(op=">=", years=6),),
        prescriber_specialties=("allergist", "dermatologist", "immunologist"),
        prior_auth=(PriorAuth(required=True, drug="dupilumab"),),
        revision_history=(RevisionEntry(date=dt.date(2026, 1, 15), text="Updated criteria."),),
    )
    return dataclasses.replace(base, **changes)


def test_step_therapy_duration_is_one_criterion_change() -> None:
    old = _policy(weeks=8, sentence=OLD_SENTENCE)
    new = _policy(weeks=12, sentence=NEW_SENTENCE)
    changes = diff_criteria(old, new, today=TODAY).changes
    assert [(c.kind, c.field, c.before, c.after, c.severity.value) for c in changes] == [
        (ChangeKind.STEP_THERAPY_CHANGED, "min_duration_days", "56", "84", "high")
    ]
    assert changes[0].effective_date == dt.date(2026, 3, 1)
    assert "topical corticosteroid (dupilumab, atopic dermatitis)" in (changes[0].evidence or "")
    assert "minimum of 12 weeks" in (changes[0].evidence or "")


def test_shorter_trial_is_medium_and_inverts() -> None:
    old = _policy(weeks=12, sentence=NEW_SENTENCE)
    new = _policy(weeks=8, sentence=OLD_SENTENCE)
    [change] = diff_criteria(old, new, today=TODAY).changes
    assert (change.before, change.after, change.severity.value) == ("84", "56", "medium")


def test_thresholds_approval_periods_pa_age_and_specialty() -> None:
    old = _policy(weeks=8, sentence=OLD_SENTENCE)
    new = _policy(
        weeks=8,
        sentence=OLD_SENTENCE,
        thresholds=(
            Threshold(measure="BSA", op=">=", value=5, unit="%"),
            Threshold(measure="EASI", op=">=", value=16),
        ),
        approval_periods=(ApprovalPeriod(phase="initial", days=122, drug="dupilumab"),),
        prior_auth=(),
        age_limits=(AgeLimit(op=">=", years=12),),
        prescriber_specialties=("dermatologist",),
    )
    found = {
        (c.kind, c.field): (c.before, c.after, c.severity.value)
        for c in diff_criteria(old, new, today=TODAY).changes
    }
    assert found == {
        (ChangeKind.THRESHOLD_CHANGED, "BSA"): (">= 10%", ">= 5%", "medium"),
        (ChangeKind.THRESHOLD_ADDED, "EASI"): (None, ">= 16", "high"),
        (ChangeKind.APPROVAL_PERIOD_CHANGED, "initial"): ("183", "122", "medium"),
        (ChangeKind.PRIOR_AUTH_REMOVED, "dupilumab"): ("required", None, "medium"),
        (ChangeKind.AGE_LIMIT_CHANGED, "minimum_age"): ("6", "12", "medium"),
        (ChangeKind.SPECIALTY_CHANGED, "prescriber_specialty"): (
            "allergist, dermatologist, immunologist",
            "dermatologist",
            "medium",
        ),
    }


def test_new_prior_auth_and_stricter_threshold_are_high() -> None:
    old = _policy(weeks=8, sentence=OLD_SENTENCE, prior_auth=())
    new = _policy(
        weeks=8,
        sentence=OLD_SENTENCE,
        thresholds=(Threshold(measure="BSA", op=">=", value=20, unit="%"),),
    )
    severities = {c.kind: c.severity.value for c in diff_criteria(old, new, today=TODAY).changes}
    assert severities == {ChangeKind.PRIOR_AUTH_ADDED: "high", ChangeKind.THRESHOLD_CHANGED: "high"}


def test_unexplained_sentence_is_still_a_text_change() -> None:
    old = _policy(weeks=8, sentence=OLD_SENTENCE)
    extra = OLD_SENTENCE + "\nThe patient must not use Dupixent with another biologic."
    new = _policy(weeks=8, sentence=extra)
    [change] = diff_criteria(old, new, today=TODAY).changes
    assert change.kind is ChangeKind.SECTION_CHANGED
    assert change.after == "The patient must not use Dupixent with another biologic."


def test_identical_payer_criteria_give_nothing() -> None:
    policy = _policy(weeks=8, sentence=OLD_SENTENCE)
    assert diff_criteria(policy, _policy(weeks=8, sentence=OLD_SENTENCE), today=TODAY).is_empty


def test_payer_criteria_survive_the_json_round_trip() -> None:
    policy = _policy(weeks=8, sentence=OLD_SENTENCE)
    again = criteria_from_json(criteria_to_json(policy))
    assert again == policy
    assert again.step_therapy[0].evidence == policy.step_therapy[0].evidence
    assert again.revision_history == policy.revision_history


def test_new_and_dropped_prerequisites_and_drugs() -> None:
    old = _policy(weeks=8, sentence=OLD_SENTENCE)
    extra = StepTherapy(
        prerequisite="topical calcineurin inhibitor",
        drug="dupilumab",
        indication="atopic dermatitis",
        min_duration_days=42,
    )
    new = _policy(
        weeks=8,
        sentence=OLD_SENTENCE,
        step_therapy=(*old.step_therapy, extra),
        drugs=(DrugMention(name="tralokinumab"),),
    )
    found = {
        (c.kind, c.field, c.before, c.after, c.severity.value)
        for c in diff_criteria(old, new, today=TODAY).changes
    }
    assert found == {
        (
            ChangeKind.STEP_THERAPY_ADDED,
            "topical calcineurin inhibitor",
            None,
            "topical calcineurin inhibitor: 1 agent, >= 42 days",
            "high",
        ),
        (ChangeKind.DRUG_ADDED, None, None, "tralokinumab", "medium"),
        (ChangeKind.DRUG_REMOVED, None, "dupilumab", None, "medium"),
    }
    back = {(c.kind, c.severity.value) for c in diff_criteria(new, old, today=TODAY).changes}
    assert (ChangeKind.STEP_THERAPY_REMOVED, "medium") in back


def test_context_sections_are_diffed_as_text_at_low_severity() -> None:
    background = Section(name="background", text="Patients must try two topical agents first.")
    old = _policy(weeks=8, sentence=OLD_SENTENCE)
    old = dataclasses.replace(old, sections=(*old.sections, background))
    changed = dataclasses.replace(
        background, text="Patients must try three topical agents for 12 weeks first."
    )
    new = dataclasses.replace(old, sections=(old.sections[0], changed))
    (change,) = diff_criteria(old, new, today=TODAY).changes
    assert (change.kind, change.field, change.severity) == (
        ChangeKind.SECTION_CHANGED,
        "background",
        Severity.LOW,
    )
