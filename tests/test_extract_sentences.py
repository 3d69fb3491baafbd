"""The golden sentence set: each criteria sentence gives exactly the expected items.

tests/golden/extract_sentences.json holds the sentences (written in the style of real payer
criteria, not copied from them), their context and the exact items expected; evidence is not
compared. `bench/extract_accuracy.py` reports precision and recall over the same set.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffing.extract.golden import GoldenCase, case_from_record, item_key, run_case, score

GOLDEN_FILE = Path(__file__).parent / "golden" / "extract_sentences.json"
CASES = [case_from_record(record) for record in json.loads(GOLDEN_FILE.read_text("utf-8"))]


def _sorted_keys(items: tuple[object, ...]) -> list[tuple[object, ...]]:
    return sorted((item_key(item) for item in items), key=repr)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_golden_sentence(case: GoldenCase) -> None:
    facts = run_case(case)
    assert _sorted_keys(facts.items()) == _sorted_keys(case.expected)
    if case.examples is not None:
        assert dict(facts.step_examples) == dict(case.examples)
    if case.checks_lead:
        assert facts.lead == case.lead
    for item in facts.items():
        if not isinstance(item, str) and hasattr(item, "evidence"):
            assert item.evidence is not None and item.evidence.sentence == case.sentence


def test_golden_set_is_large_and_varied() -> None:
    assert len(CASES) >= 60
    assert len({case.id for case in CASES}) == len(CASES)
    assert sum(1 for case in CASES if not case.expected) >= 8  # precision cases
    assert sum(1 for case in CASES if case.held_out) >= 10
    kinds = {key[0] for case in CASES for key in map(item_key, case.expected)}
    assert kinds == {
        "drug",
        "step_therapy",
        "prior_auth",
        "approval_period",
        "threshold",
        "age_limit",
        "specialty",
        "code",
    }


def test_golden_scores_meet_the_target() -> None:
    scores = score(CASES)
    for kind, result in scores.items():
        assert result.precision >= 0.95, (kind, result)
        assert result.recall >= 0.95, (kind, result)
