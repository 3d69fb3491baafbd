"""Golden cases: two CMS bundles in, the exact list of changes out.

Each case is tests/golden/<case>/{before.json, after.json, today.txt, expected.json}. After a
deliberate change to the diff, regenerate with UPDATE_GOLDEN=1 and review the files by eye.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from diffing.cms import cms_criteria
from diffing.diff import diff_criteria

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "before.json").exists())


def _changes(case: Path) -> list[dict[str, object]]:
    before = cms_criteria((case / "before.json").read_bytes())
    after = cms_criteria((case / "after.json").read_bytes())
    today = dt.date.fromisoformat((case / "today.txt").read_text().strip())
    diff = diff_criteria(before, after, today=today)
    return [
        {
            "kind": c.kind.value,
            "field": c.field,
            "before": c.before,
            "after": c.after,
            "severity": c.severity.value,
            "effective_date": c.effective_date.isoformat() if c.effective_date else None,
            "evidence": c.evidence,
        }
        for c in diff.changes
    ]


@pytest.mark.parametrize("case", CASES)
def test_golden_case(case: str) -> None:
    directory = GOLDEN / case
    actual = _changes(directory)
    expected_file = directory / "expected.json"
    if os.environ.get("UPDATE_GOLDEN"):
        expected_file.write_text(json.dumps(actual, indent=1, ensure_ascii=False) + "\n")
    assert actual == json.loads(expected_file.read_text())


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 6
