"""tests/golden/provenance.json says, for every golden case, whether its expectation was written
by hand or captured from the code's output (UPDATE_GOLDEN); these tests keep it complete."""

from __future__ import annotations

import json
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).resolve().parents[1]
MANIFEST = json.loads((GOLDEN / "provenance.json").read_text(encoding="utf-8"))
NOT_CASES = {"provenance.json", "parser_versions.json"}


def _golden_cases() -> set[str]:
    return {p.name for p in GOLDEN.iterdir() if p.is_dir() or p.name not in NOT_CASES}


def test_every_golden_case_has_its_provenance_and_no_entry_is_stale() -> None:
    listed = set(MANIFEST["cases"])
    assert _golden_cases() - listed == set(), "golden cases missing from provenance.json"
    assert listed - _golden_cases() == set(), "provenance.json lists cases that do not exist"


def test_each_entry_names_how_its_expectation_was_made() -> None:
    for case, entry in MANIFEST["cases"].items():
        assert entry["expected"] in ("captured", "hand-written"), case
        for name in entry["inputs"]:
            assert (GOLDEN / case / name).exists() or (GOLDEN / name).exists(), (case, name)


def test_captured_goldens_name_their_writer_and_hand_written_ones_have_none() -> None:
    """A captured expectation is rewritten by its test under UPDATE_GOLDEN; a hand-written one
    must not be, or it would silently become a capture of the code's output."""
    writers = {
        path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
        for path in (ROOT / "tests").glob("test_*.py")
        if "UPDATE_GOLDEN" in path.read_text(encoding="utf-8")
    }
    for case, entry in MANIFEST["cases"].items():
        if entry["expected"] == "captured":
            assert entry["writer"] in writers, case
        else:
            assert entry["writer"] is None, case
            assert not any(case in source for source in writers.values()), case
