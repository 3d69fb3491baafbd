"""MCD bulk-export rows (the CSV files of ``current_lcd.zip``, ``current_article.zip`` and
``ncd.zip``) joined per document version into the bundle the CMS Coverage API source writes.

Pure: the known column order of each export file, header detection, and the join of one
version's rows into a ``cms-coverage-bundle/1`` bundle whose report row and detail carry the API's
field names. `diffing.cms.cms_criteria` reads it, so an LCD seen through the export has the same
criteria (and diffs identically) as the same LCD seen through the API. What the export does not
carry is synthesised from what it does: the report ``note`` from ``status`` and the notice dates,
``contractor_name_type`` from the contractor link rows and the contractor lookup.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from diffing.cms import MCD_VIEW, display_id, make_bundle_of_json, parse_cms_date

DocKey = tuple[str, str]  # (document id, version) as the export writes them, normalised
Row = tuple[str, ...]


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: Column order of every export file read here (source-formats.md §B.2), lower case. A file
#: without a header row (``lcd_x_requestor_letters.csv`` in the real export) is read in this order.
COLUMNS: Mapping[str, tuple[str, ...]] = {
    "lcd.csv": _names(
        "lcd_id lcd_version title determination_number orig_det_eff_date ent_det_end_date "
        "rev_eff_date rev_end_date indication diagnoses_support icd9_dont_support_para "
        "icd9_dont_support_ast diagnoses_dont_support coding_guidelines doc_reqs appendices "
        "util_guide source_info adv_meeting comment_start_dt comment_end_dt notice_start_dt "
        "rev_hist_num history_exp last_reviewed_on status last_updated cms_cov_policy display_id "
        "draft_contact revenue_para thirty_percent keywords associated_info notice_end_dt "
        "date_retired draft_released_date source_lcd_id add_icd10_info icd10_doc "
        "synopsis_changes bibliography summary_of_evidence analysis_of_evidence mcd_publish_date "
        "issue issue_change mac_initiated"
    ),
    "lcd_x_contractor.csv": _names(
        "lcd_id lcd_version contractor_id contractor_type_id contractor_version last_updated"
    ),
    "lcd_x_requestor_letters.csv": _names(
        "lcd_id lcd_version letter_id requestor_name letter_path size sort_order last_updated"
    ),
    "article.csv": _names(
        "article_id article_version article_type title article_pub_date article_eff_date "
        "article_end_date description other_comments sad_url status last_updated history_exp "
        "key_article icd9_covered_para icd9_noncovered_para revenue_para thirty_percent "
        "article_rev_end_date source_article_id date_retired keywords icd10_doc add_icd10_info "
        "cms_cov_policy display_id reference_article"
    ),
    "article_x_hcpc_code.csv": _names(
        "article_id article_version hcpc_code_id hcpc_code_version hcpc_code_group range "
        "last_updated long_description short_description"
    ),
    "article_x_icd10_covered.csv": _names(
        "article_id article_version icd10_code_id icd10_code_version icd10_covered_group range "
        "last_updated sort_order description asterisk"
    ),
    "article_x_icd10_covered_group.csv": _names(
        "article_id article_version icd10_covered_group paragraph last_updated icd10_covered_ast"
    ),
    "article_x_icd10_noncovered.csv": _names(
        "article_id article_version icd10_code_id icd10_code_version icd10_noncovered_group "
        "range last_updated sort_order description"
    ),
    "article_x_hcpc_modifier.csv": _names(
        "article_id article_version hcpc_modifier_code_id hcpc_modifier_code_version "
        "hcpc_modifier_group last_updated description"
    ),
    "article_x_contractor.csv": _names(
        "article_id article_version article_type contractor_id contractor_type_id "
        "contractor_version last_updated"
    ),
    "contractor.csv": _names(
        "contractor_id contractor_type_id contractor_version contractor_bus_name "
        "contractor_number dmerc_rgn address1 address2 address3 city state_id zipcode phone fax "
        "status last_updated url email ignore status_flag cmd_name cmd_title "
        "contractor_subtype_id"
    ),
    "contractor_type_lookup.csv": _names("contractor_type_id description"),
    # NCD files: the real headers are mixed case (NCD_id, NCD_vrsn_num); compared lower-cased.
    "ncd_trkg.csv": _names(
        "ncd_id ncd_vrsn_num natl_cvrg_type cvrg_lvl_cd ncd_mnl_sect ncd_mnl_sect_title "
        "ncd_efctv_dt ncd_impltn_dt ncd_trmntn_dt itm_srvc_desc indctn_lmtn xref_txt othr_txt "
        "trnsmtl_num trnsmtl_issnc_dt trnsmtl_url chg_rqst_num pblctn_cd rev_hstry under_rvw "
        "creatd_tmstmp last_updt_tmstmp last_clrnc_tmstmp ncd_lab ncd_keyword ncd_ama"
    ),
    "ncd_trkg_bnft_xref.csv": _names(
        "ncd_id ncd_vrsn_num bnft_ctgry_cd creatd_tmstmp last_updt_tmstmp"
    ),
    "ncd_bnft_ctgry_ref.csv": _names("bnft_ctgry_cd bnft_ctgry_desc"),
}


@dataclass(frozen=True, kw_only=True)
class ExportSpec:
    """One export zip: where its document rows are and which files join onto them."""

    doc_type: str  # "LCD", "Article", "NCD" (the API's document types)
    option: str  # its name in the source's `document_types` option
    zip_name: str
    main_file: str
    # Bundle table name -> export file. The same tables the API source fetches per version
    # (sources.cms_coverage.ARTICLE_TABLES; a test keeps the two in step).
    tables: Mapping[str, str] = field(default_factory=dict)
    contractor_file: str | None = None
    lookup_files: tuple[str, ...] = ()

    @property
    def files(self) -> tuple[str, ...]:
        """Every file this spec reads, main file first."""
        linked = (self.contractor_file,) if self.contractor_file else ()
        return (self.main_file, *self.tables.values(), *linked, *self.lookup_files)


EXPORTS: tuple[ExportSpec, ...] = (
    ExportSpec(
        doc_type="LCD",
        option="lcd",
        zip_name="current_lcd.zip",
        main_file="lcd.csv",
        contractor_file="lcd_x_contractor.csv",
        lookup_files=("contractor.csv", "contractor_type_lookup.csv"),
    ),
    ExportSpec(
        doc_type="Article",
        option="article",
        zip_name="current_article.zip",
        main_file="article.csv",
        tables={
            "hcpc_code": "article_x_hcpc_code.csv",
            "icd10_covered": "article_x_icd10_covered.csv",
            "icd10_covered_group": "article_x_icd10_covered_group.csv",
            "icd10_noncovered": "article_x_icd10_noncovered.csv",
            "hcpc_modifier": "article_x_hcpc_modifier.csv",
        },
        contractor_file="article_x_contractor.csv",
        lookup_files=("contractor.csv", "contractor_type_lookup.csv"),
    ),
    ExportSpec(
        doc_type="NCD",
        option="ncd",
        zip_name="ncd.zip",
        main_file="ncd_trkg.csv",
        lookup_files=("ncd_trkg_bnft_xref.csv", "ncd_bnft_ctgry_ref.csv"),
    ),
)

_DOCUMENT_ID_COLUMNS = frozenset({"lcd_id", "article_id", "ncd_id"})


def is_keyed(file_name: str) -> bool:
    """Whether the file's first two columns are a document id and version."""
    return COLUMNS[file_name][0] in _DOCUMENT_ID_COLUMNS


def resolve_header(file_name: str, first_row: Sequence[str]) -> tuple[tuple[str, ...], bool]:
    """The column names of `file_name` and whether `first_row` is its header.

    A header is recognised by its first cell naming the file's first column (any case); a file
    whose first row is data is read in the known column order (`COLUMNS`)."""
    known = COLUMNS[file_name]
    cells = tuple(cell.strip().lstrip("\ufeff").lower() for cell in first_row)
    if cells and cells[0] == known[0]:
        return cells, True
    return known, False


def doc_key(doc_id: str, version: str) -> DocKey:
    """Ids as the API gives them: "00054117" and "54117" are the same document."""
    doc_id, version = doc_id.strip(), version.strip()
    return (
        str(int(doc_id)) if doc_id.isdigit() else doc_id,
        str(int(version)) if version.isdigit() else version,
    )


@dataclass(frozen=True, kw_only=True)
class ExportTable:
    """The rows of one export file: grouped by document version, or flat for lookups."""

    name: str
    columns: tuple[str, ...]
    by_document: Mapping[DocKey, list[Row]] = field(default_factory=dict)
    rows: Sequence[Row] = ()
    # Set by whoever made the table when every column name and cell is a `str` (not a
    # subclass), as the CSV reader makes them: its records are then `plain_json` unchecked.
    plain_text: bool = False

    def records(self, key: DocKey) -> list[dict[str, str]]:
        # dict(zip(columns, row)) per row, each step in C (no Python frame per row): a full
        # MCD backfill makes a dict of each of some 600,000 rows.
        return list(map(dict, map(zip, repeat(self.columns), self.by_document.get(key, ()))))


@dataclass(frozen=True, kw_only=True)
class ExportData:
    """Everything read from one export zip that the bundles need."""

    spec: ExportSpec
    tables: Mapping[str, ExportTable]  # by file name

    def table(self, file_name: str) -> ExportTable:
        return self.tables.get(file_name) or ExportTable(
            name=file_name, columns=COLUMNS[file_name], plain_text=True
        )

    def keys(self) -> list[DocKey]:
        return list(self.table(self.spec.main_file).by_document)


@dataclass(frozen=True, kw_only=True)
class ExportVersion:
    """One (document, version) of an export, as a listing shows it."""

    key: str  # the display id: L33979, A57520, NCD 270.1
    doc_key: DocKey
    version: str
    title: str
    url: str
    report: Mapping[str, Any]


def _mdy(value: str) -> str:
    """An export date (MM/DD/YYYY, YYYY-MM-DD, with or without a time) in the API's form."""
    try:
        day = parse_cms_date(value)
    except ValueError:
        return value.strip()
    return "N/A" if day is None else f"{day:%m/%d/%Y}"


def _date(value: str | None) -> dt.date | None:
    try:
        return parse_cms_date(value)
    except ValueError:
        return None


def _note(status: str, notice_end: str) -> str:
    """The report's ``note`` ("Retired", "Future(Notice Ends …)", "(Notice Ended …)") from
    the version's status and notice-period end, as the MCD derives it."""
    code = status.strip()[:1].upper()
    notice = _date(notice_end)
    if code == "R":
        return "Retired"
    if code == "F":
        return f"Future(Notice Ends {notice:%m/%d/%Y})" if notice else "Future"
    return f"(Notice Ended {notice:%m/%d/%Y})" if notice else ""


def _contractor_name_type(
    data: ExportData,
    key: DocKey,
    names: Mapping[tuple[str, ...], str],
    types: Mapping[str, str],
) -> str:
    """``Name\\r\\n(type, type)`` blocks, one per contractor, blank-line separated (the API's
    ``contractor_name_type``), from the link rows in their order."""
    if data.spec.contractor_file is None:
        return ""
    blocks: dict[str, list[str]] = {}
    for link in data.table(data.spec.contractor_file).records(key):
        contractor = (link.get("contractor_id", ""), link.get("contractor_type_id", ""))
        name = names.get((*contractor, link.get("contractor_version", ""))) or names.get(
            contractor[:1], contractor[0]
        )
        type_name = types.get(contractor[1], "")
        listed = blocks.setdefault(name, [])
        if type_name and type_name not in listed:
            listed.append(type_name)
    return "\r\n\r\n".join(
        f"{name}\r\n({', '.join(kinds)})" if kinds else name for name, kinds in blocks.items()
    )


def _lookup_contractors(data: ExportData) -> tuple[dict[tuple[str, ...], str], dict[str, str]]:
    names: dict[tuple[str, ...], str] = {}
    table = data.table("contractor.csv")
    for row in table.rows:
        record = dict(zip(table.columns, row, strict=False))
        name = record.get("contractor_bus_name", "").strip()
        contractor_id = record.get("contractor_id", "").strip()
        triple = (contractor_id, record.get("contractor_type_id", "").strip())
        names[(*triple, record.get("contractor_version", "").strip())] = name
        names.setdefault((contractor_id,), name)
    types_table = data.table("contractor_type_lookup.csv")
    types = {
        record.get("contractor_type_id", "").strip(): record.get("description", "").strip()
        for record in (dict(zip(types_table.columns, r, strict=False)) for r in types_table.rows)
    }
    return names, types


class ExportBundles:
    """Listing rows and bundles of every document version of one export."""

    def __init__(self, data: ExportData) -> None:
        self.data = data
        self.spec = data.spec
        self._main = data.table(self.spec.main_file)
        self._contractors: tuple[dict[tuple[str, ...], str], dict[str, str]] = ({}, {})
        if self.spec.contractor_file is not None:
            self._contractors = _lookup_contractors(data)
        self._benefits = self._benefit_categories() if self.spec.doc_type == "NCD" else {}

    def versions(self) -> Iterator[ExportVersion]:
        for key, rows in self._main.by_document.items():
            record = dict(zip(self._main.columns, rows[0], strict=False))
            report = self._report(key, record)
            yield ExportVersion(
                key=display_id(self.spec.doc_type, report),
                doc_key=key,
                version=key[1],
                title=str(report.get("title") or ""),
                url=str(report["url"]),
                report=report,
            )

    def fingerprint(self, version: ExportVersion) -> str:
        """sha256 of everything the version's bundle is made of, without building it (the
        listing fingerprints every version; only new ones become bundles)."""
        key = version.doc_key
        digest = hashlib.sha256(repr(sorted(version.report.items())).encode())
        digest.update(repr(self._main.by_document[key][0]).encode())
        for file_name in self.spec.tables.values():
            digest.update(repr(self.data.table(file_name).by_document.get(key)).encode())
        if self.spec.doc_type == "NCD":
            digest.update(self._benefits.get(key, "").encode())
        return digest.hexdigest()

    def bundle(self, version: ExportVersion) -> bytes:
        """The canonical bundle bytes of one version (see `diffing.cms.make_bundle`); the
        export's values are text and numbers, so its criteria are worked out with it."""
        key = version.doc_key
        record = dict(zip(self._main.columns, self._main.by_document[key][0], strict=False))
        detail = self._ncd_detail(key, record) if self.spec.doc_type == "NCD" else record
        used = [self.data.table(file_name) for file_name in self.spec.tables.values()]
        tables = {
            name: table.records(key) for name, table in zip(self.spec.tables, used, strict=True)
        }
        return make_bundle_of_json(
            doc_type=self.spec.doc_type,
            report=version.report,
            detail=detail,
            tables=tables,
            # Text read from CSV, and an NCD's detail of that text, `int`s and `str`s: checking
            # them again was a tenth of a backfill's bundle making (bench/mcd_export.py).
            plain_detail_and_tables=self._main.plain_text and all(t.plain_text for t in used),
        )

    # -- report rows and details in the API's shape -------------------------------------------

    def _report(self, key: DocKey, record: Mapping[str, str]) -> dict[str, Any]:
        doc_id, version = key
        if self.spec.doc_type == "NCD":
            updated = _date(record.get("last_updt_tmstmp"))
            return {
                "document_id": _int_or_text(doc_id),
                "document_version": _int_or_text(version),
                "document_display_id": record.get("ncd_mnl_sect", "").strip(),
                "document_status": "Final",
                "last_updated": f"{updated:%m/%d/%Y}" if updated else "",
                "document_type": "NCD",
                "title": record.get("ncd_mnl_sect_title", ""),
                "chapter": "",
                "is_lab": record.get("ncd_lab", ""),
                "url": f"{MCD_VIEW}/ncd.aspx?ncdid={doc_id}&ncdver={version}",
            }
        lcd = self.spec.doc_type == "LCD"
        effective = record.get("rev_eff_date" if lcd else "article_eff_date", "")
        page, param = ("lcd.aspx", "lcdid") if lcd else ("article.aspx", "articleid")
        return {
            "document_id": _int_or_text(doc_id),
            "document_version": _int_or_text(version),
            "document_display_id": f"{'L' if lcd else 'A'}{doc_id}",
            "document_type": self.spec.doc_type,
            "note": _note(record.get("status", ""), record.get("notice_end_dt", "")),
            "title": record.get("title", ""),
            "contractor_name_type": _contractor_name_type(self.data, key, *self._contractors),
            "updated_on": _mdy(record.get("last_updated", "")),
            "effective_date": _mdy(effective),
            "retirement_date": _mdy(record.get("date_retired", "")),
            "url": f"{MCD_VIEW}/{page}?{param}={doc_id}&ver={version}",
        }

    def _benefit_categories(self) -> dict[DocKey, str]:
        names_table = self.data.table("ncd_bnft_ctgry_ref.csv")
        names = {row[0].strip(): row[1] if len(row) > 1 else "" for row in names_table.rows if row}
        links = self.data.table("ncd_trkg_bnft_xref.csv")
        out: dict[DocKey, str] = {}
        for key, rows in links.by_document.items():
            codes = [dict(zip(links.columns, row, strict=False)) for row in rows]
            out[key] = "; ".join(
                names.get(c.get("bnft_ctgry_cd", "").strip(), "") for c in codes
            ).strip("; ")
        return out

    def _ncd_detail(self, key: DocKey, record: Mapping[str, str]) -> dict[str, Any]:
        """The NCD row under the API's field names (``/v1/data/ncd``)."""
        return {
            "document_id": _int_or_text(key[0]),
            "document_version": _int_or_text(key[1]),
            "document_display_id": record.get("ncd_mnl_sect", ""),
            "title": record.get("ncd_mnl_sect_title", ""),
            "publication_number": record.get("pblctn_cd", ""),
            "effective_date": _mdy(record.get("ncd_efctv_dt", "")),
            "effective_end_date": _mdy(record.get("ncd_trmntn_dt", "")),
            "implementation_date": _mdy(record.get("ncd_impltn_dt", "")),
            "benefit_category": self._benefits.get(key, ""),
            "item_service_description": record.get("itm_srvc_desc", ""),
            "indications_limitations": record.get("indctn_lmtn", ""),
            "cross_reference": record.get("xref_txt", ""),
            "transmittal_number": record.get("trnsmtl_num", ""),
            "transmittal_url": record.get("trnsmtl_url", ""),
            "revision_history": record.get("rev_hstry", ""),
            "other_text": record.get("othr_txt", ""),
            "ama_statement": record.get("ncd_ama", ""),
        }


def _int_or_text(value: str) -> int | str:
    return int(value) if value.isdigit() else value
