"""`Criteria.drugs` of real documents against the hand counts of tests/realdata/drug_counts.toml
(written before measuring): an FEP oncology policy and two Ohio Medicaid PDL pages. Every drug
found is one the hand count lists (no gene, test or word taken for a drug); the FEP policy, whose
drugs are all written "Brand (generic)", is found to within one drug. Skips when
../shared/realdata is absent."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from diffing.extract import extract_criteria
from diffing.payer import parse_cached

ROOT = Path(__file__).resolve().parents[1]
REALDATA = ROOT.parent / "shared" / "realdata"
LABELS = tomllib.loads((ROOT / "tests" / "realdata" / "drug_counts.toml").read_text())["document"]
_CONTENT_TYPES = {".pdf": "text/plain", ".md": "text/markdown"}  # the .pdf capture is text


def _found(label: dict[str, Any]) -> set[str]:
    path = REALDATA / label["path"]
    if not path.exists():
        pytest.skip(f"real data not present: {path}")
    document = parse_cached(path.read_bytes(), _CONTENT_TYPES[path.suffix], document_id="d")
    return {drug.name for drug in extract_criteria(document, document_id="d").drugs}


@pytest.mark.parametrize("label", LABELS, ids=[label["path"].split("/")[-1] for label in LABELS])
def test_every_drug_found_is_in_the_hand_count(label: dict[str, Any]) -> None:
    found = _found(label)
    assert found, "no drug found"
    assert found <= set(label["drugs"])


def test_the_fep_oncology_policy_is_found_to_within_one_drug() -> None:
    label = next(label for label in LABELS if "fepblue" in label["path"])
    assert len(set(label["drugs"]) - _found(label)) <= 1
