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


def _offer(made: _MadeCriteria, content: bytes) -> bool:
    """What make_bundle_of_json does with a new bundle: keep its criteria if there is room."""
    if not made.has_room(len(content)):
        return False
    made.keep(content, _from_bytes(content))
    return True


def test_when_full_new_criteria_are_not_worked_out_and_stale_ones_go() -> None:
    bundles = [make_bundle(**_values(n)) for n in (1, 2, 3, 4)]  # 4, 5, 6, 7 codes
    by_entries = _MadeCriteria(max_entries=2, max_codes=1000, max_bytes=1 << 20, stale_after=99)
    assert [_offer(by_entries, content) for content in bundles[:3]] == [True, True, False]
    assert by_entries.take(bundles[2]) is None  # extracted from its bytes instead
    assert by_entries.take(bundles[0]) == _from_bytes(bundles[0])
    assert by_entries.take(bundles[0]) is None  # taken once
    assert _offer(by_entries, bundles[3])  # room again
    by_codes = _MadeCriteria(max_entries=10, max_codes=9, max_bytes=1 << 20, stale_after=99)
    assert [_offer(by_codes, content) for content in bundles] == [True, True, False, False]
    size = len(bundles[0]) + len(bundles[1])
    by_bytes = _MadeCriteria(max_entries=10, max_codes=1000, max_bytes=size, stale_after=99)
    assert [_offer(by_bytes, content) for content in bundles] == [True, True, False, False]
    # Never asked for (stored already): let go once `stale_after` more bundles were offered.
    stale = _MadeCriteria(max_entries=1, max_codes=1000, max_bytes=1 << 20, stale_after=2)
    assert [_offer(stale, content) for content in bundles] == [True, False, False, True]
    assert stale.take(bundles[0]) is None
    assert stale.take(bundles[3]) == _from_bytes(bundles[3])
