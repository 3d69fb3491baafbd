"""Benchmark: precision and recall of the criteria extractor on the golden sentence set.

An extracted item is a true positive when an expected item has the same type and the same
values (evidence ignored). Figures are printed for all sentences, for those written during
development and for each held-out batch; ``--misses`` lists every sentence whose items differ.
Target: >= 0.95 precision and recall for every item type.

Held-out batches 1 and 2 (in the golden set) were written after the extractor worked; their
first scores (0.913/0.875 and 0.952/0.909 precision/recall) were noted by hand and the misses
fixed, so they are not blind any more and those figures cannot be reproduced from git.

From batch 3 on, held-out sentences live in bench/heldout/*.json, each committed before any rule
change it prompts. Every run scores them; the first score of each file is kept in
bench/results/extract_accuracy.json (never overwritten), next to the latest.

Drugs are also measured on whole real documents (issue 13): `Criteria.drugs` of the documents
listed in tests/realdata/drug_counts.toml against the hand count written there before measuring
(an FEP oncology policy, Ohio Medicaid PDL pages), when ../shared/realdata is present; the
figures go to the same results file under "document_drugs".

    python bench/extract_accuracy.py [--golden PATH] [--misses]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import tomllib
from collections.abc import Sequence
from pathlib import Path

from diffing.extract import EXTRACTOR_VERSION
from diffing.extract.golden import GoldenCase, Score, case_from_record, item_key, run_case, score

DEFAULT_GOLDEN = Path(__file__).resolve().parent.parent / "tests/golden/extract_sentences.json"
HELDOUT = Path(__file__).resolve().parent / "heldout"
RESULTS = Path(__file__).resolve().parent / "results" / "extract_accuracy.json"
TARGET = 0.95
ROOT = Path(__file__).resolve().parent.parent
DRUG_COUNTS = ROOT / "tests" / "realdata" / "drug_counts.toml"
REALDATA = ROOT.parent / "shared" / "realdata"
_CONTENT_TYPES = {".pdf": "text/plain", ".md": "text/markdown"}  # .pdf captures are text


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

    heldout = {
        path.name: [case_from_record(r) for r in json.loads(path.read_text("utf-8"))]
        for path in sorted(HELDOUT.glob("*.json"))
    }
    subsets.extend((f"held-out {name}", batch) for name, batch in heldout.items())

    print(f"criteria extractor {EXTRACTOR_VERSION}, golden set {args.golden.name}")
    for title, subset in subsets:
        print("\n".join(_table(title, subset)))
        print()
    _keep_scores(heldout)
    _document_drugs()
    if args.misses:
        print(
            "\n".join(_misses([*cases, *(c for b in heldout.values() for c in b)])) or "no misses"
        )
    return 0


def _overall(cases: Sequence[GoldenCase]) -> dict[str, object]:
    scores = score(cases)
    tp = sum(r.true_positives for r in scores.values())
    fp = sum(r.false_positives for r in scores.values())
    fn = sum(r.false_negatives for r in scores.values())
    return {
        "sentences": len(cases),
        "precision": round(tp / (tp + fp), 3) if tp + fp else 1.0,
        "recall": round(tp / (tp + fn), 3) if tp + fn else 1.0,
        "by_type": {k: [round(r.precision, 3), round(r.recall, 3)] for k, r in scores.items()},
    }


def _keep_scores(heldout: dict[str, list[GoldenCase]]) -> None:
    """First score of each held-out file kept as it was; the latest replaced every run."""
    kept = json.loads(RESULTS.read_text("utf-8")) if RESULTS.exists() else {}
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HELDOUT
    ).stdout.strip()
    stamp = {"date": dt.date.today().isoformat(), "commit": commit, "extractor": EXTRACTOR_VERSION}
    for name, cases in heldout.items():
        entry = kept.setdefault(name, {})
        figures = {**stamp, **_overall(cases)}
        entry.setdefault("first", figures)
        entry["latest"] = figures
        first = entry["first"]
        print(f"held-out {name}: first scored {first['precision']}/{first['recall']} "
              f"(precision/recall) at {first['commit']}, now {figures['precision']}/"
              f"{figures['recall']}")  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(kept, indent=1) + "\n")


def _document_drugs() -> None:
    """`Criteria.drugs` of real documents against their hand counts; figures kept as the
    latest under "document_drugs" in the results file."""
    from diffing.extract import extract_criteria
    from diffing.payer import parse_cached

    if not REALDATA.exists():
        print(f"document drugs: skipped, no real data at {REALDATA}")
        return
    figures: list[dict[str, object]] = []
    print("document drugs (Criteria.drugs vs a hand count written before measuring):")
    for label in tomllib.loads(DRUG_COUNTS.read_text("utf-8"))["document"]:
        path = REALDATA / label["path"]
        document = parse_cached(path.read_bytes(), _CONTENT_TYPES[path.suffix], document_id="d")
        found = {d.name for d in extract_criteria(document, document_id="d").drugs}
        hand = set(label["drugs"])
        figures.append(
            {
                "document": label["path"],
                "hand": len(hand),
                "found": len(found),
                "correct": len(found & hand),
                "extra": sorted(found - hand),
                "missed": sorted(hand - found),
            }
        )
        print(f"  {path.name[:60]:<60} hand {len(hand):>3}  found {len(found):>3}  "
              f"correct {len(found & hand):>3}  extra {sorted(found - hand)}  "
              f"missed {sorted(hand - found)}")  # fmt: skip
    kept = json.loads(RESULTS.read_text("utf-8")) if RESULTS.exists() else {}
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    kept["document_drugs"] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "extractor": EXTRACTOR_VERSION,
        "cores": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "documents": figures,
    }
    RESULTS.write_text(json.dumps(kept, indent=1) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
