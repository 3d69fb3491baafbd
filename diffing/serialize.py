"""Criteria to and from canonical JSON, so the store can keep them and diff them later."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from diffing.model import CodeRef, CodeSystem, CoverageFlag, Criteria, Section

CRITERIA_FORMAT = 1


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _code_order(code: CodeRef) -> tuple[str, str, str]:
    return (code.system.value, code.flag.value, code.code)


def criteria_to_dict(criteria: Criteria) -> dict[str, Any]:
    return {
        "format": CRITERIA_FORMAT,
        "document_id": criteria.document_id,
        "doc_type": criteria.doc_type,
        "title": criteria.title,
        "version": criteria.version,
        "status": criteria.status,
        "effective_date": criteria.effective_date.isoformat() if criteria.effective_date else None,
        "retirement_date": (
            criteria.retirement_date.isoformat() if criteria.retirement_date else None
        ),
        "notice_end_date": (
            criteria.notice_end_date.isoformat() if criteria.notice_end_date else None
        ),
        "contractors": list(criteria.contractors),
        # Compact rows: [system, flag, code, group, description], sorted for a stable hash.
        "codes": [
            [c.system.value, c.flag.value, c.code, c.group, c.description]
            for c in sorted(criteria.codes, key=_code_order)
        ],
        "sections": [{"name": s.name, "text": s.text} for s in criteria.sections],
    }


def criteria_to_json(criteria: Criteria) -> bytes:
    return json.dumps(
        criteria_to_dict(criteria), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    ).encode()


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
        sections=tuple(Section(name=s["name"], text=s["text"]) for s in body["sections"]),
    )
