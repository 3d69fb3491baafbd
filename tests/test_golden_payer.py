"""Golden payer cases: two documents (PDF or HTML) in, the exact criteria-level changes out.

tests/golden/payer_<case>/{before.*, after.*, expected.json}; regenerate with UPDATE_GOLDEN=1
after a deliberate change and review the diff of expected.json by eye.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from diffing.diff import diff_criteria
from diffing.model import Criteria, RawDocument
from diffing.payer import payer_criteria

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.glob("payer_*") if p.is_dir())
TYPES = {".pdf": "application/pdf", ".html": "text/html", ".txt": "text/plain"}
TODAY = dt.date(2026, 1, 15)


def _criteria(path: Path) -> Criteria:
    raw = RawDocument(
        source="golden",
        key=f"/{path.parent.name}",
        url=f"https://x/{path.name}",
        content=path.read_bytes(),
        content_type=TYPES[path.suffix],
        fetched_at=dt.datetime(2026, 1, 15, tzinfo=dt.UTC),
        source_meta=(("payer", "Acme Health"),),
    )
    return payer_criteria(raw)


@pytest.mark.parametrize("case", CASES)
def test_payer_golden_case(case: str) -> None:
    directory = GOLDEN / case
    before = _criteria(next(directory.glob("before.*")))
    after = _criteria(next(directory.glob("after.*")))
    actual = [
        {
            "kind": c.kind.value,
            "field": c.field,
            "before": c.before,
            "after": c.after,
            "severity": c.severity.value,
            "effective_date": c.effective_date.isoformat() if c.effective_date else None,
        }
        for c in diff_criteria(before, after, today=TODAY).changes
    ]
    expected_file = directory / "expected.json"
    if os.environ.get("UPDATE_GOLDEN"):
        expected_file.write_text(json.dumps(actual, indent=1) + "\n")
    assert actual == json.loads(expected_file.read_text())


def test_there_are_payer_golden_cases() -> None:
    assert len(CASES) >= 3
