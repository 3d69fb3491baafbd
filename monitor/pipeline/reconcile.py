"""Reconcile two sources that watch the same documents: the CMS Coverage API (``cms_coverage``)
and the MCD bulk exports (``mcd_downloads``).

Per document, the latest published version of each source (highest version number) is compared:
a document only one source has, a different latest version, and, for the same version, the
criteria that differ (code sets by table, code pairs, status, dates, title, contractors, text
sections). The notice-period end is not compared: the Article export has no notice column, so
only the API knows an Article's notice period.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from diffing.model import Criteria
from monitor.errors import StoreError
from monitor.store.core import Store
from monitor.store.reconcile import (
    LatestVersion,
    criteria_of_versions,
    latest_versions,
    source_kind,
)

API_KIND = "cms_coverage"
EXPORT_KIND = "mcd_downloads"
_SHOWN_CODES = 10  # codes quoted per difference; the count says how many there are


@dataclass(frozen=True, kw_only=True)
class Difference:
    """One disagreement between the API and the export about a document."""

    document_id: str
    kind: (
        str  # missing_from_export, missing_from_api, version_mismatch, codes_differ, field_differs
    )
    field: str | None = None
    api: str | None = None
    export: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True, kw_only=True)
class ReconcileReport:
    api_source: str
    export_source: str
    documents_compared: int
    differences: tuple[Difference, ...]


def _codes_by_table(criteria: Criteria) -> dict[str, set[str]]:
    tables: dict[str, set[str]] = {}
    for code in criteria.codes:
        tables.setdefault(code.table, set()).add(code.code)
    return tables


def _listed(codes: set[str]) -> str:
    shown = sorted(codes)
    more = f" (+{len(shown) - _SHOWN_CODES} more)" if len(shown) > _SHOWN_CODES else ""
    return ", ".join(shown[:_SHOWN_CODES]) + more


def compare_criteria(document_id: str, api: Criteria, export: Criteria) -> Iterator[Difference]:
    """What differs between the criteria of the same document version from both sources."""
    api_tables, export_tables = _codes_by_table(api), _codes_by_table(export)
    for table in sorted(set(api_tables) | set(export_tables)):
        only_api = api_tables.get(table, set()) - export_tables.get(table, set())
        only_export = export_tables.get(table, set()) - api_tables.get(table, set())
        if only_api or only_export:
            yield Difference(
                document_id=document_id,
                kind="codes_differ",
                field=table,
                api=_listed(only_api) or None,
                export=_listed(only_export) or None,
            )
    api_pairs = {(p.icd10_group, p.code) for p in getattr(api, "code_pairs", ())}
    export_pairs = {(p.icd10_group, p.code) for p in getattr(export, "code_pairs", ())}
    if api_pairs != export_pairs:
        yield Difference(
            document_id=document_id,
            kind="codes_differ",
            field="code_pairs",
            api=_listed({f"{g}:{c}" for g, c in api_pairs - export_pairs}) or None,
            export=_listed({f"{g}:{c}" for g, c in export_pairs - api_pairs}) or None,
        )
    fields: list[tuple[str, object, object]] = [
        ("title", api.title, export.title),
        ("status", api.status, export.status),
        ("effective_date", api.effective_date, export.effective_date),
        ("retirement_date", api.retirement_date, export.retirement_date),
        ("contractors", sorted(api.contractors), sorted(export.contractors)),
    ]
    api_sections = {s.name: s.text for s in api.sections}
    export_sections = {s.name: s.text for s in export.sections}
    for name in sorted(set(api_sections) | set(export_sections)):
        fields.append((f"section {name}", api_sections.get(name), export_sections.get(name)))
    for name, api_value, export_value in fields:
        if api_value != export_value:
            yield Difference(
                document_id=document_id,
                kind="field_differs",
                field=name,
                api=_shown(api_value),
                export=_shown(export_value),
            )


def _shown(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."


def reconcile(store: Store, *, api_source: str, export_source: str) -> ReconcileReport:
    """Compare the latest published version of every document of the two sources."""
    for name, kind in ((api_source, API_KIND), (export_source, EXPORT_KIND)):
        stored = source_kind(store, name)
        if stored != kind:
            raise StoreError(f"source {name!r} is a {stored!r} source; expected {kind!r}")
    api_latest = latest_versions(store, api_source)
    export_latest = latest_versions(store, export_source)
    differences: list[Difference] = []
    same_version: list[tuple[str, LatestVersion, LatestVersion]] = []
    for key in sorted(set(api_latest) | set(export_latest)):
        api_version, export_version = api_latest.get(key), export_latest.get(key)
        if export_version is None:
            differences.append(Difference(document_id=key, kind="missing_from_export"))
        elif api_version is None:
            differences.append(Difference(document_id=key, kind="missing_from_api"))
        elif api_version.source_version != export_version.source_version:
            differences.append(
                Difference(
                    document_id=key,
                    kind="version_mismatch",
                    field="version",
                    api=api_version.source_version,
                    export=export_version.source_version,
                )
            )
        else:
            same_version.append((key, api_version, export_version))
    for start in range(0, len(same_version), 200):  # bounded memory: criteria by the batch
        batch = same_version[start : start + 200]
        loaded = criteria_of_versions(store, [v.version_id for _, a, e in batch for v in (a, e)])
        for key, api_version, export_version in batch:
            differences.extend(
                compare_criteria(
                    key, loaded[api_version.version_id], loaded[export_version.version_id]
                )
            )
    return ReconcileReport(
        api_source=api_source,
        export_source=export_source,
        documents_compared=len(set(api_latest) | set(export_latest)),
        differences=tuple(differences),
    )


def render_table(report: ReconcileReport) -> str:
    lines = [
        f"{report.api_source} (API) vs {report.export_source} (export): "
        f"{report.documents_compared} documents, {len(report.differences)} differences"
    ]
    for difference in report.differences:
        detail = difference.kind.replace("_", " ")
        if difference.field:
            detail += f" {difference.field}"
        if difference.api is not None or difference.export is not None:
            detail += f": API {difference.api or '-'} / export {difference.export or '-'}"
        lines.append(f"  {difference.document_id:<12} {detail}")
    return "\n".join(lines)
