"""The Iowa PDL pair (113 -> 110 pages) through parse → extract → diff → verify: the drug rows
its label in tests/realdata/pairs.toml says changed are reported, a renamed PA-form link is not
a changed row, and no published claim is contradicted. Skips when ../shared/realdata is absent;
slow (two large PDFs)."""

from __future__ import annotations

from collections import Counter
from types import ModuleType

import pytest
from realdata_support import real_pairs_bench

KEY = "IA_ia_2025-03-19_vs_2025-06-18"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return real_pairs_bench()


@pytest.mark.slow
def test_the_iowa_pdl_reports_its_drug_rows(bench: ModuleType) -> None:
    pair = next(p for p in bench.load_pairs() if p.key == KEY)
    run = bench.run_pipeline(pair.before, pair.after, pair.key, use_document_codes=False)
    result = bench.score(pair, run)
    assert result.missed == []
    assert result.published_forbidden == []
    assert result.contradicted == 0
    removed = {f"table_row_removed:{row}" for row in ("B | N | Relyvrio", "B | P | Flovent HFA")}
    assert removed <= set(pair.label["must_report"])  # scored by `result.missed` above
    kinds = Counter(c.kind.value for c in run.verified.changes)
    # Tens of rows changed in a half-year update, not thousands (links, pagination, case).
    assert 50 <= kinds["table_row_added"] + kinds["table_row_removed"] <= 400
    assert kinds["table_row_changed"] <= 60
