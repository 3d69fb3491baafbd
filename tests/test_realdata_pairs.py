"""Real payer artifacts (shared/realdata, when present): extraction and diff are deterministic on
real documents. The 41 byte-identical pairs are the same bytes captured on two dates, so this is
diff(extract(x), extract(x)) on real text, which must be empty; it does not show that changed
real documents give the right changes (the golden and integration tests do that)."""

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
def test_extracting_the_same_real_bytes_twice_diffs_to_nothing() -> None:
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
        assert _raw(row, "before").content == _raw(row, "after").content, row["doc_key"]
        after = payer_criteria(_raw(row, "after"))
        assert diff_criteria(before, after, today=dt.date(2026, 3, 22)).is_empty, row["doc_key"]
        compared += 1
    assert compared >= 30 and compared + refused == len(pairs) == 41
