"""The labelled real pairs (tests/realdata/pairs.toml) through parse → extract → diff → verify:
nothing the labels forbid is published and no published claim is contradicted by the texts.
Only the pairs that parse in seconds; bench/real_pairs.py runs all of them."""

from __future__ import annotations

from types import ModuleType

import pytest
from realdata_support import real_pairs_bench

FAST = (
    "kaiser_kaiser-wa-genetic-screening",
    "excellus_excellus-ctdna-liquid-biopsy",
    "geisinger_geisinger-mp360-mrd",
    "molina_molina-genetic-testing-051",
    "OH_updl_antidepressants_2023-06-15_vs_2023-07-20",
)


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return real_pairs_bench()


def test_every_pair_has_a_label(bench) -> None:  # type: ignore[no-untyped-def]
    pairs = bench.load_pairs()
    assert len(pairs) == 26 + 11
    assert all(isinstance(p.label["substantive"], bool) for p in pairs)


@pytest.mark.slow
@pytest.mark.parametrize("key", FAST)
def test_no_forbidden_or_contradicted_claim_is_published(bench, key: str) -> None:  # type: ignore[no-untyped-def]
    from diffing.model import Severity
    from diffing.verify import verdicts

    pair = next(p for p in bench.load_pairs() if p.key == key)
    run = bench.run_pipeline(pair.before, pair.after, pair.key, use_document_codes=True)
    result = bench.score(pair, run)
    assert result.published_forbidden == []
    if pair.label["substantive"]:
        assert result.published_substantive > 0
    published = [c for c in run.verified.changes if c.severity is not Severity.UNVERIFIED]
    rechecked = verdicts(
        type(run.verified)(
            document_id=key, old_version=None, new_version=None, changes=tuple(published)
        ),
        *run.texts,
    )
    assert all(v.verified for v in rechecked)


# Pairs where extraction once made claims the texts contradict (layouts fixed in
# diffing/extract/codes.py): none may be made again, not even as `unverified`.
ONCE_CONTRADICTED = (
    "molina_molina-genetic-testing-051",  # "HER-2, K20" read as a diagnosis
    "UHC_molecular_oncology_solid_tumor_eff20250401_vs_eff20260101",  # "of 30000 … loci"
    "CARELON_somatic_tumor_testing_eff20250323_vs_eff20251005",  # history in the codes section
    "AETNA_cpb0715_pharmacogenetic_print2025_vs_html20260322",  # code lists under test headings
)


@pytest.mark.slow
@pytest.mark.parametrize("key", ONCE_CONTRADICTED)
def test_the_texts_contradict_no_claim(bench, key: str) -> None:  # type: ignore[no-untyped-def]
    pair = next(p for p in bench.load_pairs() if p.key == key)
    run = bench.run_pipeline(pair.before, pair.after, pair.key, use_document_codes=False)
    assert [v.reason for v in run.verdicts if not v.verified] == []
