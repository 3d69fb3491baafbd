"""Real payer artifacts (OpenOnco's crawler, see realdata PROVENANCE.md); skipped when absent.

Most `.pdf`/`.html` artifacts there are text already extracted from the page, a few are real
PDFs, some are error pages. Every one must parse or raise `ParseError`, never anything else,
the byte-identical before/after pairs must parse to equal documents (determinism), and the
pairs that changed by whole lines must parse to documents that differ.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from realdata_support import parse_real

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


def _parse(artifact: Path, *, fresh: bool = False) -> PolicyDocument | ParseError:
    """The session's parse of `artifact` (`parse_real`: other modules parse some of the same
    files), or with `fresh` a parse of its own."""
    parse = parse_document if fresh else parse_real
    try:
        return parse(artifact.read_bytes(), _content_type(artifact), document_id=artifact.name)
    except ParseError as exc:
        return exc


@pytest.fixture(scope="module")
def parsed() -> Iterator[dict[Path, PolicyDocument | ParseError]]:
    """Every artifact parsed once for the session (any exception but ParseError fails here):
    the tests below read the same files (every artifact, then the pairs among them), and
    parsing is deterministic, which test_parsing_a_real_document_is_deterministic checks with
    a second, fresh parse. Parsing all of them takes about two minutes on a loaded 2-core
    machine, the test functions' hang guard; a fixture's time is not counted in it."""
    results = {artifact: _parse(artifact) for artifact in _artifacts()}
    yield results
    results.clear()


def _parsed(
    parsed: dict[Path, PolicyDocument | ParseError], artifact: Path
) -> PolicyDocument | ParseError:
    """The module's parse of `artifact` (parsed now if PAIRS.csv names a file not listed)."""
    return parsed[artifact] if artifact in parsed else _parse(artifact)


def _pairs() -> list[dict[str, str]]:
    if not (ARTIFACTS / "PAIRS.csv").exists():
        return []
    with (ARTIFACTS / "PAIRS.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_artifact_parses_or_raises_parse_error(
    parsed: dict[Path, PolicyDocument | ParseError],
) -> None:
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    assert list(parsed) == _artifacts()
    for artifact in _artifacts():
        result = parsed[artifact]  # any other exception failed the fixture
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
def test_parsing_a_real_document_is_deterministic(
    pair: dict[str, str], parsed: dict[Path, PolicyDocument | ParseError]
) -> None:
    """The same bytes captured on two dates (byte-identical files): a determinism check on
    real documents, parse(x) == parse(x) with x read from two files; it says nothing about
    how changed documents parse (see test_changed_real_pairs_parse_to_changed_documents).
    `before` is the session's parse of its file; `after` is parsed here, again."""
    assert (ARTIFACTS / pair["before_file"]).read_bytes() == (
        ARTIFACTS / pair["after_file"]
    ).read_bytes()
    before = _parsed(parsed, ARTIFACTS / pair["before_file"])
    after = _parse(ARTIFACTS / pair["after_file"], fresh=True)
    if isinstance(before, ParseError) or isinstance(after, ParseError):
        assert isinstance(before, ParseError) and isinstance(after, ParseError)
        assert before.reason == after.reason
    else:
        assert before == after


def test_there_are_byte_identical_pairs() -> None:
    assert sum(p["bytes_identical"] == "True" for p in _pairs()) >= 40


def test_changed_real_pairs_parse_to_changed_documents(
    parsed: dict[Path, PolicyDocument | ParseError],
) -> None:
    """The pairs whose bytes differ. Both captures of a document parse the same way (both to
    a document, or both refused for the same reason), and a pair whose captured text differs
    by whole lines (PAIRS.csv's own line diff) parses to documents whose sections differ: the
    noise removal does not swallow a real edit."""
    both_sides = [p for p in _pairs() if p["bytes_identical"] != "True"]
    both_sides = [p for p in both_sides if p["before_file"] and p["after_file"]]
    line_edits = changed = 0
    report = []
    for pair in both_sides:
        before = _parsed(parsed, ARTIFACTS / pair["before_file"])
        after = _parsed(parsed, ARTIFACTS / pair["after_file"])
        if isinstance(before, ParseError) or isinstance(after, ParseError):
            assert isinstance(before, ParseError) and isinstance(after, ParseError), pair
            assert before.reason.split(":")[0] == after.reason.split(":")[0], pair["doc_key"]
            report.append(f"{pair['doc_key']}: refused both times ({before.reason})")
            continue
        sections = [
            s.name
            for s in after.sections
            if s != next((b for b in before.sections if b.name == s.name), None)
        ]
        report.append(f"{pair['doc_key']}: {len(sections)} changed section(s)")
        changed += bool(sections)
        if pair["diff_unit"] == "line" and int(pair["units_added"] or 0) > 0:
            line_edits += 1
            assert sections, f"{pair['doc_key']}: lines added, yet every section is equal"
    print("\n" + "\n".join(report))
    assert len(both_sides) >= 10  # the data set: 11 changed pairs, 10 with both captures
    assert line_edits >= 6 and changed >= line_edits
