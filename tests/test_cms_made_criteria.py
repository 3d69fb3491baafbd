"""The criteria of a bundle worked out when it is made (`make_bundle_of_json`) are those its
bytes give, taken once, and the store they wait in is bounded."""

from __future__ import annotations

import json

import pytest

from diffing import cms
from diffing.cms import _MadeCriteria, cms_criteria, load_bundle, make_bundle, make_bundle_of_json
from diffing.model import Criteria
from monitor.errors import ParseError

PARAGRAPH = "&lt;p&gt;Supports CPT codes: 11200, 11201 and 11300-11302 — “quoted”.&lt;/p&gt;"


def _values(version: int, *, detail: dict[str, object] | None = None) -> dict[str, object]:
    """An Article's values as the API's JSON decodes (floats, nulls, non-ASCII included)."""
    report = {
        "document_id": 57520,
        "document_version": version,
        "document_display_id": "A57520",
        "note": "",
        "title": "Billing and Coding: Removal of Benign Skin Lesions &amp; Tags",
        "contractor_name_type": "Novitas Solutions, Inc.\r\nA and B MAC\r\n",
        "effective_date": "01/01/2026",
        "retirement_date": "N/A",
        "score": 1.1,
        "url": None,
    }
    tables = {
        "hcpc_code": [
            {"hcpc_code_id": "11200", "hcpc_code_group": 1, "long_description": "Removal é"},
            {"hcpc_code_id": "11201", "hcpc_code_group": "2", "long_description": "More"},
        ],
        "icd10_covered": [
            {"icd10_code_id": f"L82.{n}", "icd10_covered_group": 1, "description": f"dx {n}"}
            for n in range(version)
        ],
        "icd10_covered_group": [{"icd10_covered_group": 1, "paragraph": PARAGRAPH}],
        "icd10_noncovered": [],
        "hcpc_modifier": [{"hcpc_modifier_code_id": "JW", "description": "wasted"}],
    }
    return {
        "doc_type": "Article",
        "report": report,
        "detail": detail if detail is not None else {"article_id": 57520, "description": "x"},
        "tables": tables,
    }


def _from_bytes(content: bytes) -> Criteria:
    return cms._bundle_criteria(load_bundle(content))


@pytest.mark.parametrize("version", [1, 2, 7])
def test_the_criteria_made_with_the_bundle_are_those_of_its_bytes(version: int) -> None:
    values = _values(version)
    decoded = json.loads(json.dumps(values))  # the API's JSON, as the source has it
    content = make_bundle_of_json(**decoded)
    assert content == make_bundle(**decoded)
    made = cms_criteria(content)  # kept when the bundle was made
    assert made == _from_bytes(content)
    assert cms_criteria(content) == made  # taken once; then from the bytes, the same


def test_a_bundle_that_does_not_extract_fails_where_it_always_did() -> None:
    content = make_bundle_of_json(**_values(1, detail={}))
    with pytest.raises(ParseError, match="detail record is empty"):
        cms_criteria(content)


def test_the_criteria_kept_are_bounded_oldest_first() -> None:
    made = _MadeCriteria(max_entries=2, max_codes=1000, max_bytes=1 << 20)
    bundles = [make_bundle(**_values(n)) for n in (1, 2, 3)]
    for content in bundles:
        made.keep(content, _from_bytes(content))
    assert made.take(bundles[0]) is None  # let go: extracted from its bytes instead
    assert made.take(bundles[2]) == _from_bytes(bundles[2])
    assert made.take(bundles[2]) is None
    few_codes = _MadeCriteria(max_entries=10, max_codes=5, max_bytes=1 << 20)
    for content in bundles:
        few_codes.keep(content, _from_bytes(content))
    assert few_codes.take(bundles[0]) is None and few_codes.take(bundles[1]) is None
    small = _MadeCriteria(max_entries=10, max_codes=1000, max_bytes=len(bundles[2]))
    for content in bundles:
        small.keep(content, _from_bytes(content))
    assert [small.take(content) is not None for content in bundles] == [False, False, True]
