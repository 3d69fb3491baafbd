"""The two real pairs behind `code_coverage_changed` and dated history lines
(tests/realdata/pairs.toml): Aetna CPB 0715, whose 2026 version lists 81232 as covered where the
2025 print listed it as not covered, and CMS NCD 90.2, whose only change is a new
transmittal-history line. Skipped without ../shared/realdata."""

from __future__ import annotations

from types import ModuleType

import pytest
from realdata_support import real_pairs_bench

from diffing.model import ChangeKind, Severity

AETNA = "AETNA_cpb0715_pharmacogenetic_print2025_vs_html20260322"
NCD = "cms_cms-ncd-90-2"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return real_pairs_bench()


@pytest.mark.slow
def test_aetna_0715_reports_81232_as_one_coverage_change(bench: ModuleType) -> None:
    pair = next(p for p in bench.load_pairs() if p.key == AETNA)
    run = bench.run_pipeline(pair.before, pair.after, pair.key, use_document_codes=False)
    published = [c for c in run.verified.changes if c.severity is not Severity.UNVERIFIED]
    about = [c for c in published if "81232" in (c.field, c.before, c.after)]
    assert [(c.kind, c.field, c.before, c.after, c.severity) for c in about] == [
        (
            ChangeKind.CODE_COVERAGE_CHANGED,
            "81232",
            "hcpcs_noncovered",
            "hcpcs",
            Severity.MEDIUM,
        )
    ]
    result = bench.score(pair, run)
    assert result.published_forbidden == []
    assert result.missed == []
    assert result.contradicted == 0


@pytest.mark.slow
def test_ncd_90_2_transmittal_line_is_not_a_change(bench: ModuleType) -> None:
    pair = next(p for p in bench.load_pairs() if p.key == NCD)
    run = bench.run_pipeline(pair.before, pair.after, pair.key, use_document_codes=False)
    changed = [c for c in run.verified.changes if c.kind is ChangeKind.SECTION_CHANGED]
    assert changed, "the new history line is still stored"
    assert all(c.severity is Severity.NOISE for c in changed)
    assert bench.score(pair, run).false_report is False
