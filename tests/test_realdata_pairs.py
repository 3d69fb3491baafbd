"""Real payer artifacts (shared/realdata, when present): byte-identical pairs give no change."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from diffing.diff import diff_criteria
from diffing.model import RawDocument
from diffing.payer import payer_criteria
from monitor.errors import ParseError

ARTIFACTS = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "openonco-payer-artifacts"


def _pairs() -> list[dict[str, str]]:
    if not (ARTIFACTS / "PAIRS.csv").exists():
        return []
    with (ARTIFACTS / "PAIRS.csv").open(newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["bytes_identical"] == "True"]


def _raw(row: dict[str, str], side: str) -> RawDocument:
    return RawDocument(
        source="realdata",
        key=row["doc_key"],
        url=row["source_url"],
        content=(ARTIFACTS / row[f"{side}_file"]).read_bytes(),
        content_type=row["content_type"],
        fetched_at=dt.datetime(2026, 3, 22, tzinfo=dt.UTC),
        source_meta=(("payer", row["payer_dir"]),),
    )


@pytest.mark.slow
def test_byte_identical_real_pairs_yield_no_change() -> None:
    pairs = _pairs()
    if not pairs:
        pytest.skip(f"real payer artifacts not present at {ARTIFACTS}")
    compared = refused = 0
    for row in pairs:
        try:
            before = payer_criteria(_raw(row, "before"))
        except ParseError:
            refused += 1  # error pages and corrupt captures: refused, never a version
            continue
        after = payer_criteria(_raw(row, "after"))
        assert diff_criteria(before, after, today=dt.date(2026, 3, 22)).is_empty, row["doc_key"]
        compared += 1
    assert compared >= 30 and compared + refused == len(pairs) == 41
