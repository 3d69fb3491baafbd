"""Compare what two stores published, ignoring ids and clocks (not a test).

Two runs of the same source publish the same versions in whatever order their fetches
finished, so row ids and timestamps differ; everything else must be identical. Rows are keyed
by (document key, source version) and compared as sorted lists: documents, versions, payloads
(sha256), criteria (sha256), rule rows, changes, checklist versions, listing entries and the
outbox. Prints the first differences and a digest per table; exits 1 when they differ.

    python bench/compare_stores.py sqlite:///a.db sqlite:///b.db
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence

from sqlalchemy import create_engine, text

# table -> SELECT of its content without ids or clocks, each row led by its version's key.
QUERIES = {
    "documents": "SELECT d.key, d.doc_type, d.title, d.url, d.missing_runs FROM documents d",
    "versions": "SELECT d.key, v.source_version, v.version_number, v.content_sha256, "
    "v.content_type, v.title, v.status, v.effective_date, v.retirement_date, v.url "
    "FROM document_versions v JOIN documents d ON d.id = v.document_id",
    "payloads": "SELECT p.sha256, p.size FROM payloads p",
    "criteria": "SELECT d.key, v.source_version, c.extractor, c.sha256 FROM criteria c "
    "JOIN document_versions v ON v.id = c.version_id JOIN documents d ON d.id = v.document_id",
    "rule_rows": "SELECT d.key, v.source_version, r.version_number, r.effective_from, "
    "r.retired_on, r.kind, r.payer, r.text, r.code_system, r.code, r.code_group, r.drug, "
    "r.indication, r.subject, r.op, r.value, r.unit, r.days, r.count, r.required, r.evidence, "
    "r.evidence_page, r.evidence_section, r.branch, r.tree_path FROM rule_rows r "
    "JOIN document_versions v ON v.id = r.version_id JOIN documents d ON d.id = r.document_id",
    "changes": "SELECT d.key, v.source_version, pv.source_version, c.kind, c.field, c.before, "
    "c.after, c.severity, c.evidence, c.effective_date, c.baseline FROM changes c "
    "JOIN documents d ON d.id = c.document_id JOIN document_versions v ON v.id = c.version_id "
    "LEFT JOIN document_versions pv ON pv.id = c.previous_version_id",
    "checklist_versions": "SELECT d.key, v.source_version, k.subject, cv.number, cv.removed, "
    "cv.items, cv.sha256 FROM checklist_versions cv JOIN checklists k ON k.id = cv.checklist_id "
    "JOIN document_versions v ON v.id = cv.version_id JOIN documents d ON d.id = v.document_id",
    "listing_entries": "SELECT l.key, l.source_version, l.fingerprint, l.etag, l.last_modified "
    "FROM listing_entries l",
    "outbox": "SELECT d.key, v.source_version, c.kind, c.field, c.before, c.after "
    "FROM outbox_events o JOIN changes c ON c.id = o.change_id "
    "JOIN documents d ON d.id = c.document_id JOIN document_versions v ON v.id = c.version_id",
}


def _rows(url: str, sql: str) -> list[tuple[str, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = [tuple(repr(value) for value in row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()
    return sorted(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first")
    parser.add_argument("second")
    args = parser.parse_args(argv)
    same = True
    for table, sql in QUERIES.items():
        first, second = _rows(args.first, sql), _rows(args.second, sql)
        digest = hashlib.sha256(repr(first).encode()).hexdigest()[:12]
        if first == second:
            print(f"{table:20} {len(first):>8} rows  identical  ({digest})")
            continue
        same = False
        only_first = sorted(set(first) - set(second))
        only_second = sorted(set(second) - set(first))
        print(f"{table:20} {len(first):>8} vs {len(second)} rows  DIFFERENT")
        for row in only_first[:3]:
            print(f"  only in first:  {row}")
        for row in only_second[:3]:
            print(f"  only in second: {row}")
    print("identical" if same else "DIFFERENT")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
