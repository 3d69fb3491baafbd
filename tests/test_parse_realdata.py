"""Real payer artifacts (OpenOnco's crawler, see realdata PROVENANCE.md); skipped when absent.

Most `.pdf`/`.html` artifacts there are text already extracted from the page, a few are real
PDFs, some are error pages. Every one must parse or raise `ParseError`, never anything else,
and the byte-identical before/after pairs must parse to equal documents.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from diffing.model import PolicyDocument
from diffing.parse import parse_document
from monitor.errors import ParseError

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
ARTIFACTS = REALDATA / "openonco-payer-artifacts"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ARTIFACTS.is_dir(), reason=f"real data not present: {ARTIFACTS}"),
]


def _artifacts() -> list[Path]:
    if not ARTIFACTS.is_dir():
        return []
    return sorted(
        p for p in ARTIFACTS.glob("*/*") if p.is_file() and not p.name.endswith(".meta.json")
    )


def _content_type(artifact: Path) -> str:
    meta = artifact.with_name(artifact.name.rsplit(".", 1)[0] + ".meta.json")
    if meta.exists():
        return str(json.loads(meta.read_text()).get("contentType") or "")
    return artifact.suffix.lstrip(".")


def _parse(artifact: Path) -> PolicyDocument | ParseError:
    try:
        return parse_document(
            artifact.read_bytes(), _content_type(artifact), document_id=artifact.name
        )
    except ParseError as exc:
        return exc


def _pairs() -> list[dict[str, str]]:
    if not (ARTIFACTS / "PAIRS.csv").exists():
        return []
    with (ARTIFACTS / "PAIRS.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_artifact_parses_or_raises_parse_error() -> None:
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for artifact in _artifacts():
        result = _parse(artifact)  # any other exception fails the test here
        if isinstance(result, ParseError):
            outcomes["ParseError"] += 1
            reasons[result.reason.split(":")[0] + f" ({artifact.parent.name})"] += 1
        else:
            outcomes[f"parsed as {result.content_type}"] += 1
            assert result.sections, artifact.name
    print(f"\nopenonco artifacts: {dict(outcomes)}")
    for reason, count in sorted(reasons.items()):
        print(f"  ParseError x{count}: {reason}")
    assert sum(outcomes.values()) >= 100
    assert outcomes["ParseError"] <= 15


@pytest.mark.parametrize(
    "pair",
    [p for p in _pairs() if p["bytes_identical"] == "True"],
    ids=lambda p: p["doc_key"],
)
def test_byte_identical_pairs_parse_equal(pair: dict[str, str]) -> None:
    before = _parse(ARTIFACTS / pair["before_file"])
    after = _parse(ARTIFACTS / pair["after_file"])
    if isinstance(before, ParseError) or isinstance(after, ParseError):
        assert isinstance(before, ParseError) and isinstance(after, ParseError)
        assert before.reason == after.reason
    else:
        assert before == after


def test_there_are_byte_identical_pairs() -> None:
    assert sum(p["bytes_identical"] == "True" for p in _pairs()) >= 40


def test_changed_pairs_still_parse() -> None:
    """The pairs whose bytes differ: report which ones differ after parsing too."""
    report = []
    for pair in (p for p in _pairs() if p["bytes_identical"] != "True"):
        if not pair["before_file"] or not pair["after_file"]:
            continue  # a key fetched on one date only
        before = _parse(ARTIFACTS / pair["before_file"])
        after = _parse(ARTIFACTS / pair["after_file"])
        if isinstance(before, ParseError) or isinstance(after, ParseError):
            report.append(f"{pair['doc_key']}: ParseError")
            continue
        changed = [
            s.name
            for s in after.sections
            if s != next((b for b in before.sections if b.name == s.name), None)
        ]
        report.append(f"{pair['doc_key']}: {len(changed)} changed section(s)")
    print("\n" + "\n".join(report))
    assert len(report) >= 10
