"""Criteria to and from canonical JSON, so the store can keep them and diff them later."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from itertools import chain, compress
from operator import attrgetter
from typing import Any

import orjson

from diffing.cms_codes import sorted_codes
from diffing.model import (
    AgeLimit,
    ApprovalPeriod,
    CodePair,
    CodeRef,
    CodeSystem,
    CoverageFlag,
    Criteria,
    DrugMention,
    Evidence,
    PriorAuth,
    RevisionEntry,
    Section,
    StepTherapy,
    TableRow,
    Threshold,
)
from diffing.tree.codec import tree_from_dict, tree_to_dict
from diffing.tree.nodes import tree_of

CRITERIA_FORMAT = 1
_SYSTEM = attrgetter("system")
_FLAG = attrgetter("flag")
_CODE = attrgetter("code")
_GROUP = attrgetter("group")
_DESCRIPTION = attrgetter("description")
# Payer criteria lists: field name -> item type. Items are stored as dicts of their fields.
_ITEM_LISTS: dict[str, type] = {
    "drugs": DrugMention,
    "step_therapy": StepTherapy,
    "prior_auth": PriorAuth,
    "approval_periods": ApprovalPeriod,
    "thresholds": Threshold,
    "age_limits": AgeLimit,
}


# -- canonical JSON ----------------------------------------------------------------------------
#
# Canonical JSON (sorted keys, no spaces, UTF-8 without escapes) feeds content hashes and
# fingerprints, so its bytes are `json.dumps`'s. orjson writes the same bytes, four to five times
# quicker, for values made only of dicts, lists and tuples of str, int, bool and None: the same
# escapes (only '"', '\\' and U+0000-U+001F, as \b \t \n \f \r or lower-case \u00XX), keys in
# code-point order (its UTF-8 byte order), the same digits for an int. It differs on floats (1e-05
# is written 0.00001, NaN null), writes what json refuses (datetimes, dataclasses, UUIDs, any
# Enum), and refuses what json writes (ints outside 64 bits, non-str keys, str subclasses). So the
# value's types are checked first (`plain_json`), and whatever orjson refuses goes to json as well
# (held equal by tests/test_cms_json_identity.py).
_JSON_SCALARS: frozenset[type] = frozenset({str, int, bool, type(None)})
_SEQUENCES: frozenset[type] = frozenset({list, tuple})
_JSON_OR_CONTAINER = _JSON_SCALARS | _SEQUENCES | {dict}
_IS_DICT = frozenset({dict}).__contains__
_IS_SEQUENCE = _SEQUENCES.__contains__
_ORJSON_CANONICAL = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
# Deeper than orjson writes (it refuses past 254 levels), or wider than any value written here:
# such a value (a cyclic one included) is left to json.
_MAX_DEPTH = 255
_MAX_LEVEL = 1 << 24


def plain_json(value: object) -> bool:
    """Whether `value` is made only of dicts, lists and tuples of str, int, bool and None
    (exact types, no subclasses), nested at most `_MAX_DEPTH` deep.

    Depth by depth, each in C: the values of one depth are streamed once to learn their types,
    and kept only when some are containers (the last depth, the bulk of a value, never is).
    A dict's values are checked each on its own: a criteria's code rows and its sections'
    page lists, say, would otherwise meet at one depth, which then takes three more passes
    to part its containers from its scalars."""
    if type(value) is dict:
        return all(_plain_below(child, _MAX_DEPTH - 1) for child in value.values())
    return _plain_below(value, _MAX_DEPTH)


def _plain_below(value: object, depth: int) -> bool:
    dicts: list[Any] = []
    sequences: list[Any] = []
    kind = type(value)
    if kind in _JSON_SCALARS:
        return True
    if kind is dict:
        dicts.append(value)
    elif kind in _SEQUENCES:
        sequences.append(value)
    else:
        return False
    for _depth in range(depth):
        kinds = set(map(type, _children(dicts, sequences)))
        if kinds <= _JSON_SCALARS:
            return True
        if not kinds <= _JSON_OR_CONTAINER:
            return False
        level: list[Any] = list(_children(dicts, sequences))
        if len(level) > _MAX_LEVEL:
            return False
        if kinds <= _SEQUENCES:
            dicts, sequences = [], level
        elif kinds == {dict}:
            dicts, sequences = level, []
        else:
            each = list(map(type, level))
            dicts = list(compress(level, map(_IS_DICT, each)))
            sequences = list(compress(level, map(_IS_SEQUENCE, each)))
    return False


def _children(dicts: list[Any], sequences: list[Any]) -> Iterator[object]:
    return chain(chain.from_iterable(map(dict.values, dicts)), chain.from_iterable(sequences))


def canonical_json(value: object, *, plain: bool | None = None) -> bytes:
    """``json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))``
    encoded to UTF-8, byte for byte; by orjson when `plain_json(value)`, or when the caller
    says `plain` (it checked the value already). Raises what json raises (TypeError,
    ValueError, and UnicodeEncodeError for a lone surrogate)."""
    if plain if plain is not None else plain_json(value):
        try:
            written = orjson.dumps(value, option=_ORJSON_CANONICAL)
        except TypeError:  # orjson.JSONEncodeError: an int past 64 bits, a key not a str …
            pass
        else:
            # Copied to bytes of its own size: orjson's grows by doubling, and the block it
            # returns kept about twice the text's size resident (1,500 CMS bundles, 45 MB of
            # text: 35 MB more RSS, copied 15 MB; a full baseline peaked 30 MB higher).
            return bytes(memoryview(written))
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def json_value(data: bytes) -> Any:
    """``json.loads(data)``: the same value, or the same error, by orjson where it can be.

    orjson reads a number past 64 bits as a float where json keeps an int, so a value holding
    any float is read again by json (`plain_json`). What orjson refuses (NaN, a lone surrogate,
    a byte-order mark or UTF-16, invalid JSON) is read by json, which accepts it or raises as
    it always did."""
    value = json_value_unchecked(data)
    return value if plain_json(value) else json.loads(data)


def json_value_unchecked(data: bytes) -> Any:
    """`json_value` without its check: ``json.loads(data)`` wherever the value read, or the
    part of it that is used, is `plain_json` (the caller checks that, and reads `data` again
    with `json.loads` if not); a value json would not read raises json's error."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def _item_to_dict(item: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(item):
        value = getattr(item, f.name)
        if isinstance(value, Evidence):
            value = dataclasses.asdict(value)
        out[f.name] = value
    return out


def _item_from_dict(cls: type, data: dict[str, Any]) -> Any:
    evidence = data.get("evidence")
    return cls(**{**data, "evidence": Evidence(**evidence) if evidence else None})


def criteria_to_dict(criteria: Criteria) -> dict[str, Any]:
    body: dict[str, Any] = {
        "format": CRITERIA_FORMAT,
        "document_id": criteria.document_id,
        "doc_type": criteria.doc_type,
        "title": criteria.title,
        "version": criteria.version,
        "status": criteria.status,
        "effective_date": _iso(criteria.effective_date),
        "retirement_date": _iso(criteria.retirement_date),
        "notice_end_date": _iso(criteria.notice_end_date),
        "contractors": list(criteria.contractors),
        # Compact rows: [system, flag, code, group, description], sorted for a stable hash.
        # Each row a tuple made in C, column by column (JSON writes a tuple as the same array
        # as a list). The enums' values as `str` gives them (StrEnum: the value's text, made
        # in C), not by `.value`, a Python property, which was a tenth of a CMS baseline's
        # serialising, nor as the members, whose value orjson reads by that property.
        "codes": _code_rows(sorted_codes(criteria.codes)),
        "sections": [
            {"name": s.name, "text": s.text, "pages": [list(p) for p in s.page_offsets]}
            for s in criteria.sections
        ],
    }
    if criteria.code_pairs:
        # Only when present, so criteria stored before code pairs existed keep their hash.
        # Grouped, so each group's paragraph is stored once: [[group, paragraph, [codes]], …]
        groups: dict[int, tuple[str, list[str]]] = {}
        for pair in sorted(criteria.code_pairs):
            groups.setdefault(pair.icd10_group, (pair.paragraph, []))[1].append(pair.code)
        body["code_pairs"] = [[g, text, codes] for g, (text, codes) in sorted(groups.items())]
    if criteria.payer is not None or criteria.policy_number is not None:
        body["payer"] = criteria.payer
        body["policy_number"] = criteria.policy_number
    for name in _ITEM_LISTS:
        items = getattr(criteria, name)
        if items:
            body[name] = [_item_to_dict(item) for item in items]
    if criteria.prescriber_specialties:
        body["prescriber_specialties"] = list(criteria.prescriber_specialties)
    tree = tree_of(criteria)
    if tree is not None and tree.indications:
        # Only when present, so criteria without a tree (CMS, older payer rows) keep their hash.
        body["criteria_tree"] = tree_to_dict(tree)
    if criteria.revision_history:
        body["revision_history"] = [
            {"date": _iso(r.date), "text": r.text} for r in criteria.revision_history
        ]
    if criteria.table_rows:
        # Only when present, so criteria without list tables keep their hash: [[table, cells]].
        body["table_rows"] = [[r.table, list(r.cells)] for r in criteria.table_rows]
    return body


def _code_rows(codes: tuple[CodeRef, ...]) -> list[tuple[str, str, str, int | None, str]]:
    return list(
        zip(
            map(str, map(_SYSTEM, codes)),
            map(str, map(_FLAG, codes)),
            map(_CODE, codes),
            map(_GROUP, codes),
            map(_DESCRIPTION, codes),
            strict=True,
        )
    )


def criteria_to_json(criteria: Criteria) -> bytes:
    return canonical_json(criteria_to_dict(criteria))


def criteria_from_json(data: bytes) -> Criteria:
    body = json.loads(data)
    if body.get("format") != CRITERIA_FORMAT:
        raise ValueError(f"unsupported criteria format {body.get('format')!r}")
    return Criteria(
        document_id=body["document_id"],
        doc_type=body["doc_type"],
        title=body["title"],
        version=body["version"],
        status=body["status"],
        effective_date=_date(body["effective_date"]),
        retirement_date=_date(body["retirement_date"]),
        notice_end_date=_date(body["notice_end_date"]),
        contractors=tuple(body["contractors"]),
        codes=frozenset(
            CodeRef(system=CodeSystem(s), flag=CoverageFlag(f), code=c, group=g, description=d)
            for s, f, c, g, d in body["codes"]
        ),
        code_pairs=frozenset(
            CodePair(icd10_group=g, code=c, paragraph=text)
            for g, text, codes in body.get("code_pairs", ())
            for c in codes
        ),
        sections=tuple(
            Section(
                name=s["name"],
                text=s["text"],
                page_offsets=tuple((a, b) for a, b in s.get("pages", ())),
            )
            for s in body["sections"]
        ),
        payer=body.get("payer"),
        policy_number=body.get("policy_number"),
        prescriber_specialties=tuple(body.get("prescriber_specialties", ())),
        revision_history=tuple(
            RevisionEntry(date=_date(r["date"]), text=r["text"])
            for r in body.get("revision_history", ())
        ),
        **{
            name: tuple(_item_from_dict(cls, item) for item in body.get(name, ()))
            for name, cls in _ITEM_LISTS.items()
        },
        table_rows=tuple(
            TableRow(table=t, cells=tuple(cells)) for t, cells in body.get("table_rows", ())
        ),
        criteria_tree=_tree(body.get("criteria_tree")),
    )


def _tree(body: dict[str, Any] | None) -> object | None:
    if body is None:
        return None
    return tree_from_dict(body)
