"""CMS coverage documents (LCD, billing-and-coding Article, NCD) to `Criteria`.

The input is the bundle the CMS sources write: one JSON object per document version holding the
report row, the detail record and the code tables, exactly as the API (or the MCD export) gave
them. The same bundle always gives the same criteria, whichever source produced it.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import threading
from collections.abc import Iterable, Mapping
from itertools import chain
from typing import Any

from diffing.cms_codes import code_ref, codes_in_order
from diffing.extract.codes import codes_in_prose
from diffing.model import CodePair, CodeRef, CodeSystem, CoverageFlag, Criteria, Section
from diffing.serialize import canonical_json, json_value, plain_json
from diffing.text import html_to_text, normalize_text, unescape_fully
from monitor.errors import ParseError

# The content type of a CMS document bundle (what both CMS sources hand to `cms_criteria`).
BUNDLE_CONTENT_TYPE = "application/vnd.policy-monitor.cms-bundle+json"
# Where a person reads an LCD, Article or NCD version on the Medicare Coverage Database.
MCD_VIEW = "https://www.cms.gov/medicare-coverage-database/view"

BUNDLE_FORMAT = "cms-coverage-bundle/1"

# Which detail fields carry criteria text, per document type, and the section name used.
TEXT_FIELDS: Mapping[str, tuple[str, ...]] = {
    "LCD": (
        "indication",
        "coding_guidelines",
        "doc_reqs",
        "util_guide",
        "diagnoses_support",
        "diagnoses_dont_support",
    ),
    "Article": (
        "description",
        "other_comments",
        "icd10_covered_para",
        "icd10_noncovered_para",
        "revenue_para",
    ),
    "NCD": (
        "item_service_description",
        "indications_limitations",
        "benefit_category",
        "cross_reference",
    ),
}

# (bundle table name, code system, coverage flag, code column, group column)
CODE_TABLES: tuple[tuple[str, CodeSystem, CoverageFlag, str, str], ...] = (
    ("hcpc_code", CodeSystem.HCPCS, CoverageFlag.COVERED, "hcpc_code_id", "hcpc_code_group"),
    ("lcd_hcpc_code", CodeSystem.HCPCS, CoverageFlag.COVERED, "hcpc_code_id", "hcpc_code_group"),
    (
        "icd10_covered",
        CodeSystem.ICD10,
        CoverageFlag.COVERED,
        "icd10_code_id",
        "icd10_covered_group",
    ),
    (
        "icd10_noncovered",
        CodeSystem.ICD10,
        CoverageFlag.NONCOVERED,
        "icd10_code_id",
        "icd10_noncovered_group",
    ),
    (
        "hcpc_modifier",
        CodeSystem.HCPCS_MODIFIER,
        CoverageFlag.COVERED,
        "hcpc_modifier_code_id",
        "hcpc_modifier_group",
    ),
)

_NOTICE_ENDS = re.compile(r"Notice End(?:s|ed)\s+(\d{1,2}/\d{1,2}/\d{4})", re.IGNORECASE)
_RETIRED_STATUSES = frozenset({"r", "retired", "ret"})


def parse_cms_date(value: object) -> dt.date | None:
    """MM/DD/YYYY (CMS), YYYY-MM-DD or YYYYMMDD; "N/A", "" and None mean no date."""
    if value is None:
        return None
    return _parsed_date(str(value).strip())


# Dates recur across documents (a full baseline reads some 20,000, of a few thousand distinct
# days) and strptime is slow: each distinct text is parsed once. A date is immutable, so the
# one kept is the one strptime would give; an unrecognised text raises again each time.
@functools.lru_cache(maxsize=1 << 14)
def _parsed_date(text: str) -> dt.date | None:
    if not text or text.upper() in {"N/A", "NA", "NULL", "NONE"}:
        return None
    for fmt in ("%m/%d/%Y", "%Y-%m-%d", "%Y%m%d", "%m/%d/%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"unrecognised date {text!r}")


def display_id(doc_type: str, row: Mapping[str, Any]) -> str:
    """The id billers know a document by: L33979, A57520, NCD 250.1."""
    shown = str(row.get("document_display_id") or "").strip()
    number = str(row.get("document_id") or "").strip()
    if doc_type == "NCD":
        return f"NCD {shown or number}"
    prefix = "L" if doc_type == "LCD" else "A"
    if shown:
        return shown if shown[:1].isalpha() else f"{prefix}{shown}"
    return f"{prefix}{number}"


def contractor_names(contractor_name_type: str | None) -> tuple[str, ...]:
    """MAC names from the CRLF-laden `contractor_name_type` field (one block per contractor)."""
    if not contractor_name_type:
        return ()
    text = contractor_name_type.replace("\r\n", "\n").replace("\r", "\n")
    names = []
    for block in re.split(r"\n\s*\n", text):
        first = block.strip().split("\n", 1)[0].strip()
        if first:
            names.append(first)
    return tuple(names)


def make_bundle(
    *,
    doc_type: str,
    report: Mapping[str, Any],
    detail: Mapping[str, Any],
    tables: Mapping[str, Iterable[Mapping[str, Any]]],
) -> bytes:
    """Canonical JSON bytes of one document version (stable key order, so sha256 is stable)."""
    return _encoded(_bundle_body(doc_type, report, detail, tables))


def _bundle_body(
    doc_type: str,
    report: Mapping[str, Any],
    detail: Mapping[str, Any],
    tables: Mapping[str, Iterable[Mapping[str, Any]]],
) -> dict[str, Any]:
    return {
        "format": BUNDLE_FORMAT,
        "doc_type": doc_type,
        "report": dict(report),
        "detail": dict(detail),
        "tables": {name: list(rows) for name, rows in sorted(tables.items())},
    }


def _encoded(body: Mapping[str, Any]) -> bytes:
    return canonical_json(body)


def make_bundle_of_json(
    *,
    doc_type: str,
    report: Mapping[str, Any],
    detail: Mapping[str, Any],
    tables: Mapping[str, Iterable[Mapping[str, Any]]],
    plain_detail_and_tables: bool = False,
) -> bytes:
    """`make_bundle` of values of JSON's own types (the Coverage API's decoded JSON, the MCD
    export's text and numbers), and `cms_criteria` of the bytes worked out now, from those
    values, and kept for the call that asks for them.

    A CMS baseline encoded each bundle here and the publishing thread decoded it again to
    extract it (a twelfth of that thread). Such values survive a round trip through JSON
    unchanged (str, int, float, bool, None, lists and str-keyed dicts of them; only key
    order becomes canonical, which extraction never reads), so the criteria are the ones
    the bytes give. Values of other types (tuples, dates …) go through `make_bundle`.

    `plain_detail_and_tables`: the caller checked already that `detail` and `tables` are
    `plain_json` (the Coverage API source does, as it reads them), so only `report` is.
    """
    body = _bundle_body(doc_type, report, detail, tables)
    if plain_detail_and_tables:
        plain = type(doc_type) is str and plain_json(body["report"])
    else:
        plain = plain_json(body)
    content = canonical_json(body, plain=plain)
    if not _MADE.has_room(len(content)):
        return content  # extracted from its bytes when asked, as `make_bundle`'s are
    try:
        criteria = _bundle_criteria(body)
    except Exception:  # raised again where it always was: when the bytes are extracted
        return content
    _MADE.keep(content, criteria)
    return content


class _MadeCriteria:
    """Criteria of bundles made in this process, by bundle bytes, until asked for once.

    Bounded in entries, codes and bytes: when full, a new bundle's criteria are not worked
    out at all (its bytes give them when asked, as before), so nothing is extracted twice and
    what waits here stays small. An entry not asked for while `stale_after` more bundles were
    made (bytes found stored already, a run that stopped) is let go. The bytes kept are the
    fetched document's own, not a copy. Two threads: the one making bundles, the publishing
    one."""

    def __init__(
        self, *, max_entries: int, max_codes: int, max_bytes: int, stale_after: int
    ) -> None:
        self._kept: dict[bytes, tuple[int, Criteria]] = {}
        self._codes = 0
        self._bytes = 0
        self._made = 0  # bundles offered so far: the age of an entry
        self._max_entries = max_entries
        self._max_codes = max_codes
        self._max_bytes = max_bytes
        self._stale_after = stale_after
        self._lock = threading.Lock()

    def has_room(self, size: int) -> bool:
        with self._lock:
            self._made += 1
            while self._kept:
                oldest = next(iter(self._kept))
                if self._kept[oldest][0] >= self._made - self._stale_after:
                    break
                self._drop(oldest)
            return (
                len(self._kept) < self._max_entries
                and self._codes < self._max_codes
                and self._bytes + size <= self._max_bytes
            )

    def keep(self, content: bytes, criteria: Criteria) -> None:
        with self._lock:
            if content not in self._kept:
                self._kept[content] = (self._made, criteria)
                self._codes += len(criteria.codes)
                self._bytes += len(content)

    def take(self, content: bytes) -> Criteria | None:
        with self._lock:
            if content not in self._kept:
                return None
            return self._drop(content)

    def _drop(self, content: bytes) -> Criteria:
        _made, criteria = self._kept.pop(content)
        self._codes -= len(criteria.codes)
        self._bytes -= len(content)
        return criteria


# About what a run has fetched but not yet published (monitor.pipeline.batching gathers up to
# 256 documents or 16 MB while a batch is written), whose criteria would exist soon anyway.
_MADE = _MadeCriteria(
    max_entries=512, max_codes=100_000, max_bytes=16 * 1024 * 1024, stale_after=4096
)


def load_bundle(content: bytes, document_id: str = "?") -> dict[str, Any]:
    try:
        bundle = json_value(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(document_id, f"not a JSON bundle: {exc}") from exc
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise ParseError(document_id, f"not a {BUNDLE_FORMAT} bundle")
    return bundle


def _date(record: Mapping[str, Any], *names: str, document_id: str) -> dt.date | None:
    for name in names:
        try:
            value = parse_cms_date(record.get(name))
        except ValueError as exc:
            raise ParseError(document_id, f"field {name}: {exc}") from exc
        if value is not None:
            return value
    return None


# The same code descriptions recur across hundreds of Articles (a full CMS baseline cleans half
# a million of them): each distinct one is cleaned once.
@functools.lru_cache(maxsize=1 << 16)
def _clean_description(text: str) -> str:
    return normalize_text(unescape_fully(text) if "&" in text else text)


def _group_number(group: object) -> int | None:
    """A code's group number: JSON integers, or digits in a string; else none (0 included)."""
    if not group:
        return None
    if type(group) is int:  # what the JSON gives, nearly always
        return group
    text = str(group).strip()
    return int(text) if text.lstrip("-").isdigit() else None


# Each code table's (system, flag) as a small number, in CodeRef order: two tables (an
# Article's and an LCD's HCPCS) share one, and a code is kept once per (system, flag), the
# first row that names it.
_SHAPES = sorted(dict.fromkeys((system, flag) for _t, system, flag, _c, _g in CODE_TABLES))
_TABLE_SHAPES = tuple(_SHAPES.index((system, flag)) for _t, system, flag, _c, _g in CODE_TABLES)


def _codes(tables: Mapping[str, Any]) -> frozenset[CodeRef]:
    # Half a million rows in a full baseline: duplicates are dropped by code, per (system,
    # flag), before a CodeRef is made (CodeRef's hash is a Python call, the enums' two more),
    # and each CodeRef is made by `code_ref`. The codes come out in CodeRef order, each
    # (system, flag)'s sorted by its plain text in C, so publishing need not sort them again.
    found: list[dict[str, CodeRef]] = [{} for _shape in _SHAPES]
    for (table, system, flag, code_col, group_col), shape in zip(
        CODE_TABLES, _TABLE_SHAPES, strict=True
    ):
        kept = found[shape]
        for row in tables.get(table) or ():
            code = str(row.get(code_col) or "").strip().upper()
            if not code or code in kept:
                continue
            description = row.get("long_description") or row.get("description") or ""
            kept[code] = code_ref(
                system,
                flag,
                code,
                _group_number(row.get(group_col)),
                _clean_description(str(description)),
            )
    return codes_in_order(
        tuple(chain.from_iterable(map(kept.__getitem__, sorted(kept)) for kept in found))
    )


def _code_pairs(tables: Mapping[str, Any]) -> frozenset[CodePair]:
    """Which CPT/HCPCS codes each ICD-10 covered group supports, from the group paragraphs
    ("... provide coverage for CPT codes: 11200, 11201, 11300-11313 ..."). A paragraph that
    names no CPT/HCPCS code ("N/A", a plain heading) pairs nothing."""
    pairs: set[CodePair] = set()
    for row in tables.get("icd10_covered_group") or ():
        group = str(row.get("icd10_covered_group") or "").strip()
        if not group.isdigit():
            continue
        text = html_to_text(str(row.get("paragraph") or ""))
        for mention in codes_in_prose(text):
            if mention.system is CodeSystem.HCPCS:
                pairs.add(CodePair(icd10_group=int(group), code=mention.code, paragraph=text))
    return frozenset(pairs)


def cms_criteria(content: bytes) -> Criteria:
    """Criteria of one CMS document version from its bundle bytes."""
    made = _MADE.take(content)
    if made is not None:
        return made
    return _bundle_criteria(load_bundle(content))


def _bundle_criteria(bundle: Mapping[str, Any]) -> Criteria:
    doc_type = str(bundle.get("doc_type") or "")
    if doc_type not in TEXT_FIELDS:
        raise ParseError("?", f"unknown CMS document type {doc_type!r}")
    report: Mapping[str, Any] = bundle.get("report") or {}
    detail: Mapping[str, Any] = bundle.get("detail") or {}
    document_id = display_id(doc_type, report)
    if not detail:
        raise ParseError(document_id, "the detail record is empty")

    note = str(report.get("note") or "").strip()
    detail_status = str(detail.get("status") or "").strip().lower()
    retired = note.lower().startswith("retired") or detail_status in _RETIRED_STATUSES
    notice = _NOTICE_ENDS.search(note)
    try:
        notice_end = parse_cms_date(notice.group(1)) if notice else None
    except ValueError:
        notice_end = None
    notice_end = notice_end or _date(detail, "notice_end_dt", document_id=document_id)

    effective = _date(report, "effective_date", document_id=document_id) or _date(
        detail,
        "rev_eff_date",
        "article_eff_date",
        "effective_date",
        "orig_det_eff_date",
        document_id=document_id,
    )
    retirement = _date(report, "retirement_date", document_id=document_id) or _date(
        detail,
        "date_retired",
        "rev_end_date",
        "article_end_date",
        "effective_end_date",
        document_id=document_id,
    )
    sections = tuple(
        Section(name=name, text=text)
        for name in TEXT_FIELDS[doc_type]
        if (text := html_to_text(str(detail.get(name) or "")))
    )
    title = normalize_text(unescape_fully(str(report.get("title") or detail.get("title") or "")))
    version = report.get("document_version")
    return Criteria(
        document_id=document_id,
        doc_type=doc_type,
        title=title,
        version=str(version) if version not in (None, "") else None,
        status="retired" if retired else "active",
        effective_date=effective,
        retirement_date=retirement,
        notice_end_date=notice_end,
        contractors=contractor_names(report.get("contractor_name_type")),
        codes=_codes(bundle.get("tables") or {}),
        code_pairs=_code_pairs(bundle.get("tables") or {}),
        sections=sections,
    )
