"""Benchmark: precision and recall of the criteria extractor on the golden sentence set.

An extracted item is a true positive when an expected item has the same type and the same
values (evidence ignored). Figures are printed for all sentences, for those written during
development and for each held-out batch; ``--misses`` lists every sentence whose items differ.
Target: >= 0.95 precision and recall for every item type.

Held-out batches were written after the extractor worked, expectations by meaning. Their first
runs, before the misses were fixed (so they are no longer blind), were:
  batch 1 (14 sentences): overall precision 0.913, recall 0.875 (ages 0.600/0.750,
      thresholds 1.000/0.750, approval periods 1.000/0.667, all other types 1.000/1.000)
  batch 2 (12 sentences): overall precision 0.952, recall 0.909 (thresholds 0.500/0.333,
      all other types 1.000/1.000)

    python bench/extract_accuracy.py [--golden PATH] [--misses]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from diffing.extract import EXTRACTOR_VERSION
from diffing.extract.golden import GoldenCase, Score, case_from_record, item_key, run_case, score

DEFAULT_GOLDEN = Path(__file__).resolve().parent.parent / "tests/golden/extract_sentences.json"
TARGET = 0.95


def _table(title: str, cases: Sequence[GoldenCase]) -> list[str]:
    lines = [f"{title}: {len(cases)} sentences"]
    lines.append(f"  {'type':<16} {'precision':>9} {'recall':>7} {'tp':>5} {'fp':>4} {'fn':>4}")
    for kind, result in score(cases).items():
        flag = "" if min(result.precision, result.recall) >= TARGET else "  < target"
        lines.append(_row(kind, result) + flag)
    return lines


def _row(kind: str, result: Score) -> str:
    return (
        f"  {kind:<16} {result.precision:>9.3f} {result.recall:>7.3f} "
        f"{result.true_positives:>5} {result.false_positives:>4} {result.false_negatives:>4}"
    )


def _misses(cases: Sequence[GoldenCase]) -> list[str]:
    lines: list[str] = []
    for case in cases:
        found = sorted(map(item_key, run_case(case).items()), key=repr)
        expected = sorted(map(item_key, case.expected), key=repr)
        if found != expected:
            lines.append(f"- {case.id}: {case.sentence}")
            lines.extend(f"    extra   {key}" for key in found if key not in expected)
            lines.extend(f"    missing {key}" for key in expected if key not in found)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--golden", type=Path, default=DEFAULT_GOLDEN)
    parser.add_argument("--misses", action="store_true", help="list sentences that differ")
    args = parser.parse_args(argv)

    records = json.loads(args.golden.read_text("utf-8"))
    cases = [case_from_record(record) for record in records]
    subsets = [("all sentences", cases)]
    subsets.append(("written during development", [c for c in cases if not c.held_out]))
    for batch in sorted({c.batch for c in cases if c.held_out}):
        subsets.append(
            (f"held-out batch {batch}", [c for c in cases if c.held_out and c.batch == batch])
        )

    print(f"criteria extractor {EXTRACTOR_VERSION}, golden set {args.golden.name}")
    for title, subset in subsets:
        print("\n".join(_table(title, subset)))
        print()
    if args.misses:
        print("\n".join(_misses(cases)) or "no misses")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
