"""Code references and code rule rows built in bulk (`diffing.cms_codes`, `diffing.rules`):
the same objects, rows, order and JSON as the frozen dataclasses' own constructors give."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from diffing.cms import cms_criteria, make_bundle, parse_cms_date
from diffing.cms_codes import code_ref, sorted_codes
from diffing.model import CodeRef, CodeSystem, CoverageFlag, Criteria, PriorAuth
from diffing.rules import RuleKind, RuleRow, flatten, rule_payer
from diffing.serialize import criteria_from_json, criteria_to_json


def _refs() -> list[CodeRef]:
    return [
        CodeRef(
            system=system,
            flag=flag,
            code=f"{system.value[:1].upper()}{n:03d}",
            group=n % 3 or None,
            description=f"{system.value} {flag.value} {n}",
        )
        for system in CodeSystem
        for flag in CoverageFlag
        for n in (7, 1, 12)
    ]


def test_code_ref_is_a_frozen_code_ref_equal_in_every_field() -> None:
    for made in _refs():
        built = code_ref(made.system, made.flag, made.code, made.group, made.description)
        assert type(built) is CodeRef
        assert built == made and hash(built) == hash(made) and repr(built) == repr(made)
        assert dataclasses.astuple(built) == dataclasses.astuple(made)
        with pytest.raises(dataclasses.FrozenInstanceError):
            built.code = "X"  # type: ignore[misc]


def test_sorted_codes_is_code_ref_order_and_follows_the_set_asked_for() -> None:
    codes = frozenset(_refs())
    assert list(sorted_codes(codes)) == sorted(codes)
    assert sorted_codes(codes) == tuple(sorted(codes))  # asked again: the same order
    fewer = frozenset(list(codes)[:5])
    assert list(sorted_codes(fewer)) == sorted(fewer)
    assert sorted_codes(frozenset()) == ()


def _reference_code_rows(criteria: Criteria, only_drug: str | None) -> list[RuleRow]:
    """Code rows as RuleRow's own constructor makes them (flatten before the builder)."""
    rows = []
    for code in sorted(criteria.codes):
        covered = code.flag is CoverageFlag.COVERED
        rows.append(
            RuleRow(
                kind=RuleKind.COVERED_CODE if covered else RuleKind.NONCOVERED_CODE,
                text=code.description,
                payer=rule_payer(criteria),
                document=criteria.document_id,
                version=criteria.version,
                effective_from=criteria.effective_date,
                retired_on=criteria.retirement_date,
                code_system=code.system.value,
                code=code.code,
                code_group=code.group,
                drug=None if code.system is CodeSystem.HCPCS_MODIFIER else only_drug,
                evidence_section=code.table,
            )
        )
    return rows


@pytest.mark.parametrize("drug", [None, "dupilumab"])
def test_code_rows_equal_rule_rows_made_by_their_constructor(drug: str | None) -> None:
    criteria = Criteria(
        document_id="A57520",
        doc_type="Article",
        title="t",
        status="active",
        version="4",
        effective_date=dt.date(2024, 1, 1),
        retirement_date=dt.date(2025, 6, 30),
        contractors=("Novitas Solutions, Inc.",),
        codes=frozenset(_refs()),
        prior_auth=(PriorAuth(drug=drug, required=True),) if drug else (),
    )
    rows = flatten(criteria)
    code_rows = [row for row in rows if row.code is not None]
    expected = _reference_code_rows(criteria, drug)
    assert code_rows == expected
    assert [repr(row) for row in code_rows] == [repr(row) for row in expected]
    assert all(type(row) is RuleRow for row in rows)
    assert [dataclasses.astuple(r) for r in code_rows] == [dataclasses.astuple(r) for r in expected]
    with pytest.raises(dataclasses.FrozenInstanceError):
        code_rows[0].code = "X"  # type: ignore[misc]


def test_codes_json_holds_the_enum_values_and_reads_back() -> None:
    criteria = Criteria(
        document_id="L1",
        doc_type="LCD",
        title="t",
        status="active",
        version="1",
        codes=frozenset(_refs()),
    )
    body = json.loads(criteria_to_json(criteria))
    expected = [
        [c.system.value, c.flag.value, c.code, c.group, c.description] for c in sorted(_refs())
    ]
    assert body["codes"] == expected
    assert all(type(value) is str for row in body["codes"] for value in row[:2])
    back = criteria_from_json(criteria_to_json(criteria))
    assert back == criteria
    assert {dataclasses.astuple(c) for c in back.codes} == {
        dataclasses.astuple(c) for c in criteria.codes
    }


def test_a_code_listed_twice_keeps_its_first_row() -> None:
    def row(code: str, description: str, group: int) -> dict[str, object]:
        return {"hcpc_code_id": code, "long_description": description, "hcpc_code_group": group}

    bundle = make_bundle(
        doc_type="Article",
        report={"document_id": 1, "document_version": 1, "title": "t"},
        detail={"title": "t", "description": "d"},
        tables={
            "hcpc_code": [row(" j0135 ", "first", 1), row("J0135", "second", 2)],
            "lcd_hcpc_code": [row("J0135", "third", 3), row("J0136", "other", 0)],
            "hcpc_modifier": [
                {"hcpc_modifier_code_id": "J0135", "description": "a modifier"},
            ],
        },
    )
    codes = {(c.system, c.code): c for c in cms_criteria(bundle).codes}
    assert len(codes) == 3
    first = codes[CodeSystem.HCPCS, "J0135"]
    assert (first.description, first.group) == ("first", 1)
    assert codes[CodeSystem.HCPCS, "J0136"].group is None
    assert codes[CodeSystem.HCPCS_MODIFIER, "J0135"].description == "a modifier"


def test_dates_parsed_once_still_raise_on_unrecognised_text() -> None:
    assert parse_cms_date(" 03/01/2024 ") == dt.date(2024, 3, 1)
    assert parse_cms_date("03/01/2024") is parse_cms_date("03/01/2024")
    assert parse_cms_date("N/A") is None and parse_cms_date(None) is None
    for _ in range(2):
        with pytest.raises(ValueError, match="unrecognised date"):
            parse_cms_date("31st of March")
