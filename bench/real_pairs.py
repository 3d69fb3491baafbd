"""Benchmark: parse → extract → diff → verify over every labelled real before/after pair.

Reads the pairs of ``shared/realdata/payer-pairs-2025`` and the changed pairs of
``shared/realdata/openonco-payer-artifacts`` with the labels of ``tests/realdata/pairs.toml``
and prints, per pair and in total: substantive changes caught, changes reported on pairs without
one, claims the texts contradict (found by `diffing.verify`, so published as unverified), and
label violations (a must-report change missed, a must-not-report change published). Raw figures
go to ``bench/results/real_pairs.json``.

    python bench/real_pairs.py [--only KEY] [--document-codes] [--no-write]

``--document-codes`` replaces the walker's codes by `diffing.extract.codes.document_codes` (what
the pipeline sees once `extract/document.py` calls it). Big PDLs take a minute each to parse on
one core; the whole run takes about five minutes.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffing.diff import diff_criteria  # noqa: E402
from diffing.extract import extract_criteria  # noqa: E402
from diffing.extract.codes import document_codes  # noqa: E402
from diffing.model import (  # noqa: E402
    Change,
    ChangeKind,
    Criteria,
    PolicyDiff,
    PolicyDocument,
    Severity,
)
from diffing.payer import parse_cached  # noqa: E402
from diffing.verify import (  # noqa: E402
    Verdict,
    document_text,
    extraction_collapsed,
    verdicts,
    verify_diff,
)
from monitor.errors import ParseError  # noqa: E402

REALDATA = ROOT.parent / "shared" / "realdata"
LABELS = ROOT / "tests" / "realdata" / "pairs.toml"
RESULTS = ROOT / "bench" / "results" / "real_pairs.json"
TODAY = dt.date(2026, 3, 22)
# Changes that say what a document is rather than what it requires: not counted as substantive.
NOT_SUBSTANTIVE = frozenset({ChangeKind.DATE_CHANGED, ChangeKind.TITLE_CHANGED})
_CONTENT_TYPES = {
    ".pdf": "application/pdf",
    ".html": "text/html",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Pair:
    corpus: str
    key: str
    before: Path
    after: Path
    label: dict[str, object]


@dataclass(frozen=True, kw_only=True, slots=True)
class PipelineRun:
    """What the pipeline would publish for one pair, before and after verification."""

    diff: PolicyDiff  # as diffed
    verified: PolicyDiff  # after `verify_diff`
    verdicts: list[Verdict]
    collapse: str | None  # `extraction_collapsed` reason, when it fires
    texts: tuple[str, str]  # the old and new text verification read


@dataclass(kw_only=True, slots=True)
class PairScore:
    corpus: str
    key: str
    substantive: bool
    status: str = "ok"  # ok | refused (a side the parser refuses) | error
    seconds: float = 0.0
    changes: int = 0
    published_substantive: int = 0
    contradicted: int = 0
    caught: bool | None = None
    false_report: bool | None = None
    missed: list[str] = field(default_factory=list)
    published_forbidden: list[str] = field(default_factory=list)
    collapse: str | None = None
    kinds: dict[str, int] = field(default_factory=dict)


def _criteria(document: PolicyDocument, key: str, *, use_document_codes: bool) -> Criteria:
    criteria = extract_criteria(document, document_id=key)
    if use_document_codes:
        codes = frozenset(row.ref for row in document_codes(document))
        criteria = dataclasses.replace(criteria, codes=codes)
    return criteria


def run_pipeline(before: Path, after: Path, key: str, *, use_document_codes: bool) -> PipelineRun:
    """The glue: the one place that knows the current parse/extract/diff/verify API."""
    documents = [
        parse_cached(path.read_bytes(), _CONTENT_TYPES[path.suffix], document_id=key)
        for path in (before, after)
    ]
    old, new = (_criteria(d, key, use_document_codes=use_document_codes) for d in documents)
    diff = diff_criteria(old, new, today=TODAY)  # list-table (PDL, xlsx) rows included
    old_text, new_text = (document_text(d) for d in documents)
    return PipelineRun(
        diff=diff,
        verified=verify_diff(diff, old_text, new_text),
        verdicts=verdicts(diff, old_text, new_text),
        collapse=extraction_collapsed(old_text, new_text, old, new),
        texts=(old_text, new_text),
    )


def _value(change: Change) -> str:
    if change.kind in (
        ChangeKind.CODE_REMOVED,
        ChangeKind.DRUG_REMOVED,
        ChangeKind.TABLE_ROW_REMOVED,
    ):
        return f"{change.kind.value}:{change.before}"
    if change.kind is ChangeKind.CODE_COVERAGE_CHANGED:  # field: the code; before/after: lists
        return f"{change.kind.value}:{change.field}"
    return f"{change.kind.value}:{change.after}"


def score(pair: Pair, run: PipelineRun) -> PairScore:
    label = pair.label
    published = [c for c in run.verified.changes if c.severity is not Severity.UNVERIFIED]
    substantive = [
        c for c in published if c.severity is not Severity.NOISE and c.kind not in NOT_SUBSTANTIVE
    ]
    reported = {_value(c) for c in published}
    forbidden = set(_strings(label.get("must_not_report")))
    code_kinds = (ChangeKind.CODE_ADDED, ChangeKind.CODE_REMOVED)
    if label.get("no_code_changes"):
        forbidden |= {_value(c) for c in published if c.kind in code_kinds}
    if label.get("no_code_removed"):
        forbidden |= {_value(c) for c in published if c.kind is ChangeKind.CODE_REMOVED}
    limit = label.get("max_code_removed")
    removed = [c for c in published if c.kind is ChangeKind.CODE_REMOVED]
    if isinstance(limit, int) and len(removed) > limit:
        expected = set(_strings(label.get("must_report")))
        forbidden |= {_value(c) for c in removed if _value(c) not in expected}
    missed = [item for item in _strings(label.get("must_report")) if item not in reported]
    is_substantive = bool(label["substantive"])
    return PairScore(
        corpus=pair.corpus,
        key=pair.key,
        substantive=is_substantive,
        changes=len(run.diff.changes),
        published_substantive=len(substantive),
        contradicted=sum(1 for v in run.verdicts if not v.verified),
        caught=(bool(substantive) and not missed) if is_substantive else None,
        false_report=bool(substantive) if not is_substantive else None,
        missed=missed,
        published_forbidden=sorted(reported & forbidden),
        collapse=run.collapse,
        kinds=dict(Counter(c.kind.value for c in published)),
    )


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def load_pairs() -> list[Pair]:
    labels = {(p["corpus"], p["key"]): p for p in tomllib.loads(LABELS.read_text())["pair"]}  # type: ignore[index]
    pairs: list[Pair] = []
    corpus = REALDATA / "payer-pairs-2025"
    with (corpus / "PAIRS.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            pairs.append(
                Pair(
                    corpus="payer-pairs-2025",
                    key=row["key"],
                    before=corpus / row["before_file"],
                    after=corpus / row["after_file"],
                    label=labels[("payer-pairs-2025", row["key"])],
                )
            )
    corpus = REALDATA / "openonco-payer-artifacts"
    with (corpus / "PAIRS.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["bytes_identical"] != "False":
                continue
            pairs.append(
                Pair(
                    corpus="openonco-payer-artifacts",
                    key=row["doc_key"],
                    before=corpus / row["before_file"],
                    after=corpus / row["after_file"],
                    label=labels[("openonco-payer-artifacts", row["doc_key"])],
                )
            )
    return pairs


def evaluate(pair: Pair, *, use_document_codes: bool) -> PairScore:
    started = time.perf_counter()
    try:
        run = run_pipeline(pair.before, pair.after, pair.key, use_document_codes=use_document_codes)
    except ParseError:
        result = PairScore(
            corpus=pair.corpus,
            key=pair.key,
            substantive=bool(pair.label["substantive"]),
            status="refused",
            caught=False if pair.label["substantive"] else None,
            false_report=None if pair.label["substantive"] else False,
        )
    else:
        result = score(pair, run)
    result.seconds = round(time.perf_counter() - started, 1)
    return result


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", action="append", default=[], help="part of a pair key")
    parser.add_argument("--document-codes", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not LABELS.exists() or not REALDATA.exists():
        print(f"real data not present at {REALDATA}", file=sys.stderr)
        return 2
    pairs = [p for p in load_pairs() if not args.only or any(o in p.key for o in args.only)]
    results: list[PairScore] = []
    print(f"{'pair':58} {'lbl':4} {'subst':>5} {'contra':>6} {'result':7} notes")
    for pair in pairs:
        r = evaluate(pair, use_document_codes=args.document_codes)
        results.append(r)
        verdict = (
            r.status
            if r.status != "ok"
            else ("caught" if r.caught else "MISSED")
            if r.substantive
            else ("FALSE" if r.false_report else "quiet")
        )
        notes = []
        if r.missed:
            notes.append(f"missed {len(r.missed)}: {' '.join(r.missed[:4])}")
        if r.published_forbidden:
            notes.append(
                f"forbidden {len(r.published_forbidden)}: {' '.join(r.published_forbidden[:4])}"
            )
        if r.collapse:
            notes.append("collapse")
        print(
            f"{r.key[:58]:58} {'S' if r.substantive else '-':4} {r.published_substantive:5d} "
            f"{r.contradicted:6d} {verdict:7} {'; '.join(notes)}",
            flush=True,
        )
    substantive = [r for r in results if r.substantive]
    quiet = [r for r in results if not r.substantive]
    totals = {
        "pairs": len(results),
        "substantive_pairs": len(substantive),
        "substantive_caught": sum(1 for r in substantive if r.caught),
        "substantive_caught_ignoring_must_report": sum(
            1 for r in substantive if r.published_substantive
        ),
        "non_substantive_pairs": len(quiet),
        "non_substantive_with_reports": sum(1 for r in quiet if r.false_report),
        "claims_texts_contradict": sum(r.contradicted for r in results),
        "forbidden_published": sum(len(r.published_forbidden) for r in results),
        "must_report_missed": sum(len(r.missed) for r in results),
        "refused": sum(1 for r in results if r.status == "refused"),
    }
    print()
    for name, value in totals.items():
        print(f"{name:45} {value}")
    if not args.no_write and not args.only:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "commit": _commit(),
                    "cores": os.cpu_count(),
                    "loadavg": [round(x, 2) for x in os.getloadavg()],
                    "document_codes": args.document_codes,
                    "totals": totals,
                    "pairs": [dataclasses.asdict(r) for r in results],
                },
                indent=1,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
