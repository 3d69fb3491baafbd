"""No PA checklist holds contradictory items (an age floor above its ceiling, or one measure
twice with different limits, in one all-of group): every checklist the fixture payer site and the
real payer documents in ../shared/realdata produce."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from diffing.checklist import (
    Checklist,
    ChecklistItem,
    build_checklists,
    contradictions,
)
from diffing.model import RawDocument
from diffing.payer import payer_criteria
from fixtures.payer_site import PayerSite, render_document

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
TYPES = {
    ".pdf": "application/pdf",
    ".html": "text/html",
    ".htm": "text/html",
    ".txt": "text/plain",
    ".md": "text/plain",
}


def _checklists(path: str, content: bytes, content_type: str) -> tuple[Checklist, ...]:
    raw = RawDocument(
        source="contradictions",
        key=path,
        url=f"https://example.test/{path}",
        content=content,
        content_type=content_type,
        fetched_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        source_meta=(("payer", "Acme Health"),),
    )
    return build_checklists(payer_criteria(raw))


def _item(**kwargs: object) -> ChecklistItem:
    base: dict[str, object] = {"key": "k", "category": "age", "text": "t", "requirement": "r"}
    return ChecklistItem(**{**base, **kwargs})  # type: ignore[arg-type]


def test_the_check_finds_what_it_must() -> None:
    def checklist(*items: ChecklistItem) -> Checklist:
        return Checklist(
            payer="p",
            subject="s",
            subject_kind="drug",
            label="S",
            document="d",
            title="t",
            version=None,
            effective_date=None,
            prior_auth_required=None,
            items=items,
        )

    floor = _item(key="age|>", op=">=", value=40.0, group="g")
    ceiling = _item(key="age|<", op="<=", value=9.0, group="g")
    assert contradictions(checklist(floor, ceiling))
    assert not contradictions(checklist(floor, _item(key="x", op="<=", value=9.0, group="h")))
    bsa = {"category": "threshold", "op": ">=", "group": "g"}
    assert contradictions(
        checklist(
            _item(key="threshold|ad|initial|BSA|>", value=10.0, **bsa),
            _item(key="threshold|ad|initial|BSA|>#2", value=5.0, **bsa),
        )
    )


@pytest.mark.parametrize("week", ["week1", "week2"])
def test_fixture_checklists_are_never_contradictory(week: str) -> None:
    site = PayerSite()
    seen = 0
    for path in site.document_paths(week):
        content_type = "application/pdf" if path.endswith(".pdf") else "text/html"
        for checklist in _checklists(path, render_document(path, week), content_type):
            seen += 1
            assert contradictions(checklist) == (), (path, checklist.subject)
    assert seen >= 5


def test_fixture_dupixent_checklist_follows_the_policy_logic() -> None:
    from fixtures.payer_site.uhc_dupixent import URL_PATH

    (checklist,) = _checklists(URL_PATH, render_document(URL_PATH, "week2"), "application/pdf")
    items = checklist.items
    assert items[0].text.startswith("Diagnosis of atopic dermatitis or prurigo nodularis")
    severity = next(i for i in items if i.alternatives and "BSA >= 10%" in i.requirement)
    assert len(severity.alternatives) == 3 and severity.branch == "initial"
    assert any(i.category == "exclusion" and i.indication == "atopic dermatitis" for i in items)
    trial = next(i for i in items if i.category == "step_therapy" and i.days == 84)
    assert trial.requirement == "12 weeks" and trial.indication == "atopic dermatitis"
    approvals = {(i.indication, i.category, i.requirement) for i in items if i.days and not i.op}
    assert ("atopic dermatitis", "approval", "6 months") in approvals
    assert ("prurigo nodularis", "renewal", "1 year") in approvals
    assert checklist.outline[0] == "Atopic dermatitis"
    assert any("Must not be receiving" in line for line in checklist.outline)


def _labelled() -> list[Path]:
    """The documents with hand-labelled criteria trees (tests/criteria_trees/): quick."""
    import json

    labels = Path(__file__).parent / "criteria_trees"
    return [REALDATA / json.loads(p.read_text())["source"] for p in sorted(labels.glob("*.json"))]


def _other_real_documents() -> list[Path]:
    if not REALDATA.exists():
        return []
    labelled = set(_labelled())
    return [
        p
        for folder in ("payer-pairs-2025", "criteria-trees")
        for p in sorted((REALDATA / folder).glob("*"))
        if p.suffix.lower() in TYPES and p not in labelled
    ]


def _check_real(path: Path) -> None:
    for checklist in _checklists(path.name, path.read_bytes(), TYPES[path.suffix.lower()]):
        assert contradictions(checklist) == (), checklist.subject


@pytest.mark.skipif(not REALDATA.exists(), reason=f"{REALDATA} absent")
@pytest.mark.parametrize("path", _labelled(), ids=lambda p: p.name[:60])
def test_labelled_real_checklists_are_never_contradictory(path: Path) -> None:
    _check_real(path)


@pytest.mark.slow
@pytest.mark.skipif(not REALDATA.exists(), reason=f"{REALDATA} absent")
@pytest.mark.parametrize("path", _other_real_documents(), ids=lambda p: p.name[:60])
def test_real_checklists_are_never_contradictory(path: Path) -> None:
    """Every payer document pair in realdata (about 8 minutes on 2 cores)."""
    _check_real(path)
