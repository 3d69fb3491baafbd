"""orjson where json was: canonical JSON bytes and decoded values must be json's, exactly.

Canonical JSON feeds content hashes and fingerprints (`diffing.serialize.canonical_json`), and
decoded API rows feed both (`diffing.serialize.json_value`): every value here is held equal to
what `json` gives, or the same exception raised.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffing.model import CodeRef, CodeSystem, CoverageFlag, Criteria, Section, Threshold
from diffing.serialize import (
    canonical_json,
    criteria_to_dict,
    criteria_to_json,
    json_value,
    plain_json,
)


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _same_encoding(value: object) -> None:
    try:
        expected: bytes | type[BaseException] = _json_bytes(value)
    except Exception as exc:
        expected = type(exc)
    if isinstance(expected, bytes):
        assert canonical_json(value) == expected
    else:
        with pytest.raises(expected):
            canonical_json(value)


def _same_decoding(data: bytes) -> None:
    try:
        expected: Any = json.loads(data)
    except Exception as exc:
        with pytest.raises(type(exc)) as raised:
            json_value(data)
        assert str(raised.value) == str(exc)
        return
    got = json_value(data)
    assert repr(got) == repr(expected)  # types too: 1 and 1.0 are equal, their reprs not
    assert _types(got) == _types(expected)


def _types(value: object) -> object:
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}, list(value)
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value)


# Every code point but the surrogates, and the ones json and orjson might escape differently.
_EVERY_CHARACTER = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
_AWKWARD = (
    '\x00\x01\x08\t\n\x0b\x0c\r\x1f\x7f\x80\x85\xa0\xad"\\/\u2028\u2029\ufeff\uffff\U0001f600'
)

_text = st.text(st.characters(blacklist_categories=("Cs",))) | st.sampled_from(
    ["", _AWKWARD, "e\u0301", "1.5", "null", "\U0010ffff"]
)
_ints = st.integers() | st.sampled_from(
    [0, -1, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**40]
)
_floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 1e16, 1e-5, 1e-7, 0.1, 1e22, 5e-324, 1.7976931348623157e308, 123456789.0]
)
_plain_scalars = st.none() | st.booleans() | _ints | _text
_any_scalars = _plain_scalars | _floats
_keys = _text


def _nested(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=6)
            | st.lists(inner, max_size=4).map(tuple)
            | st.dictionaries(_keys, inner, max_size=6)
        ),
        max_leaves=40,
    )


class _Flag(enum.StrEnum):
    ON = "on"


class _Number(enum.IntEnum):
    ONE = 1


class _Text(str):
    pass


@dataclasses.dataclass
class _Point:
    x: int


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(_nested(_any_scalars))
def test_canonical_json_writes_json_bytes(value: Any) -> None:
    _same_encoding(value)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_nested(_plain_scalars))
def test_plain_values_are_written_by_orjson_as_json_writes_them(value: Any) -> None:
    assert plain_json(value)
    _same_encoding(value)


@pytest.mark.parametrize(
    "value",
    [
        _EVERY_CHARACTER,
        {_EVERY_CHARACTER[i : i + 500]: i for i in range(0, len(_EVERY_CHARACTER), 500)},
        {"\U0001f600": 1, "\uffff": 2, "z": 3, "Z": 4, "é": 5, "": 6},
        [_AWKWARD, {_AWKWARD: _AWKWARD}],
        {"a": 1.5},
        [float("nan"), float("inf"), -float("inf")],
        {"a": [1e16, 1e-5, -0.0]},
        2**64 - 1,
        2**64,
        -(2**63) - 1,
        {1: "a"},
        {1: "a", "b": 2},
        {None: 1},
        {True: 1},
        {_Text("k"): 1},
        [_Text("v")],
        _Flag.ON,
        {_Flag.ON: 1},
        [_Number.ONE],
        [dt.date(2026, 12, 4)],
        [dt.datetime(2026, 12, 4, 11, 0)],
        [uuid.UUID(int=1)],
        [_Point(x=1)],
        "\ud800",
        {"k": ["\udc00"]},
        {"\ud800": 1},
        ((("deep",),),),
    ],
)
def test_awkward_values_are_written_as_json_writes_them(value: Any) -> None:
    _same_encoding(value)


def test_deep_and_cyclic_values_are_left_to_json() -> None:
    deep: Any = "leaf"
    for _ in range(300):
        deep = [deep]
    assert not plain_json(deep)
    _same_encoding(deep)
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    assert not plain_json(cyclic)
    with pytest.raises(ValueError, match="Circular"):
        canonical_json(cyclic)


def test_enum_members_are_not_plain() -> None:
    # orjson writes an Enum member's `.value`, json a StrEnum's text and an IntEnum's digits.
    assert not plain_json([CodeSystem.HCPCS])
    assert not plain_json({"n": _Number.ONE})
    assert plain_json([str(CodeSystem.HCPCS), str(CoverageFlag.COVERED)])


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(_nested(_any_scalars), st.booleans(), st.sampled_from([None, 1, " "]))
def test_json_value_reads_what_json_reads(value: Any, ascii_only: bool, indent: Any) -> None:
    try:
        text = json.dumps(value, ensure_ascii=ascii_only, indent=indent)
    except ValueError:  # a key json cannot write
        return
    try:
        data = text.encode()
    except UnicodeEncodeError:  # a lone surrogate in a key: only escaped it can be sent
        data = json.dumps(value, ensure_ascii=True, indent=indent).encode()
    _same_decoding(data)


@pytest.mark.parametrize(
    "data",
    [
        b"NaN",
        b"[Infinity, -Infinity]",
        b"1e400",
        b"-1e400",
        b"1e-400",
        b"18446744073709551615",
        b"18446744073709551616",
        b"-9223372036854775808",
        b"-9223372036854775809",
        b'{"big": 123456789012345678901234567890}',
        b'{"data": [{"id": 1, "v": 1.0}]}',
        b"-0",
        b"-0.0",
        b"0.1e1",
        b"1E5",
        b'"\\ud800"',
        b'"\\udc00\\ud800"',
        b'"\\ud83d\\ude00"',
        b'"\\u0000\\u001f\\u2028"',
        b'"\xed\xa0\x80"',  # a surrogate in UTF-8: json reads it (surrogatepass), orjson not
        b"\xef\xbb\xbf{}",
        '{"a": "é"}'.encode("utf-16"),
        '{"a": "é"}'.encode("utf-16-le"),
        '{"a": 1}'.encode("utf-32"),
        b'{"a":1,"a":2,"b":3}',
        b'{"c":1,"a":2,"c":0}',
        b'"\x01"',
        b"[1,]",
        b"",
        b"  ",
        b"{} x",
        b"<html><title>Blocked</title></html>",
        b"\xff",
        b'"\xc3"',
        b"[" * 300 + b"]" * 300,
        b'{"data": [], "meta": {"next_token": 18446744073709551616}}',
    ],
)
def test_json_value_reads_awkward_bytes_as_json_does(data: bytes) -> None:
    _same_decoding(data)


def test_criteria_json_is_json_bytes() -> None:
    codes = frozenset(
        CodeRef(system=system, flag=flag, code=code, group=group, description=text)
        for system, flag, code, group, text in [
            (CodeSystem.HCPCS, CoverageFlag.COVERED, "J1234", 1, "Injection, \u2028 x"),
            (CodeSystem.ICD10, CoverageFlag.NONCOVERED, "E11.9", None, 'Type 2 "DM"\x1f'),
            (CodeSystem.HCPCS_MODIFIER, CoverageFlag.COVERED, "KX", 2**70, "big group"),
        ]
    )
    cms = Criteria(
        document_id="L1",
        doc_type="LCD",
        title="T\u00e9",
        version="3",
        status="active",
        effective_date=dt.date(2026, 1, 1),
        codes=codes,
        sections=(Section(name="indication", text="text\n", page_offsets=((0, 4),)),),
    )
    payer = dataclasses.replace(
        cms,
        codes=frozenset(c for c in codes if c.code != "KX"),
        thresholds=(
            Threshold(measure="HbA1c", op=">=", value=7.5, unit="%"),
            Threshold(measure="BMI", op=">", value=float("nan"), unit=""),
        ),
    )
    for criteria in (cms, payer, dataclasses.replace(cms, codes=payer.codes)):
        assert criteria_to_json(criteria) == _json_bytes(criteria_to_dict(criteria))


def test_every_character_round_trips() -> None:
    data = canonical_json({"t": _EVERY_CHARACTER})
    assert json_value(data) == {"t": _EVERY_CHARACTER}
