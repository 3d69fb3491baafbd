"""The golden sentence set as data, and precision/recall of `extract_sentence` against it.

A golden record (parsed JSON) holds a sentence, its context, optionally the lead sentence it is
a list item of, and the exact items expected. An extracted item is a true positive when an
expected item has the same type and the same values; evidence is ignored.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from diffing.extract.sentences import SentenceContext, SentenceFacts, extract_sentence
from diffing.extract.steps import StepLead
from diffing.model import (
    AgeLimit,
    ApprovalPeriod,
    CodeRef,
    CodeSystem,
    CoverageFlag,
    DrugMention,
    PriorAuth,
    StepTherapy,
    Threshold,
)

ITEM_TYPES: Mapping[str, type] = {
    "drug": DrugMention,
    "step_therapy": StepTherapy,
    "prior_auth": PriorAuth,
    "approval_period": ApprovalPeriod,
    "threshold": Threshold,
    "age_limit": AgeLimit,
    "specialty": str,
    "code": CodeRef,
}
_TYPE_NAMES = {cls: name for name, cls in ITEM_TYPES.items()}
ItemKey = tuple[Any, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class GoldenCase:
    id: str
    sentence: str
    context: SentenceContext
    expected: tuple[object, ...]
    preceded_by: str | None = None  # the lead sentence this one is a list item of
    examples: tuple[tuple[str, tuple[str, ...]], ...] | None = None  # None: not checked
    lead: StepLead | None = None
    checks_lead: bool = False
    held_out: bool = False  # written after the extractor worked, expectations by meaning
    batch: int = 0  # which held-out batch (1, 2, …); 0 for sentences written during development


@dataclass(frozen=True, kw_only=True, slots=True)
class Score:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        expected = self.true_positives + self.false_negatives
        return self.true_positives / expected if expected else 1.0

    def __add__(self, other: Score) -> Score:
        return Score(
            true_positives=self.true_positives + other.true_positives,
            false_positives=self.false_positives + other.false_positives,
            false_negatives=self.false_negatives + other.false_negatives,
        )


def item_from_record(record: Mapping[str, Any]) -> object:
    """{"type": "threshold", "measure": "BSA", …} -> Threshold(measure="BSA", …)."""
    fields = dict(record)
    kind = fields.pop("type")
    if kind == "specialty":
        return str(fields["name"])
    if kind == "code":
        fields["system"] = CodeSystem(fields["system"])
        fields["flag"] = CoverageFlag(fields["flag"])
    cls = ITEM_TYPES[kind]
    return cls(**fields)


def item_key(item: object) -> ItemKey:
    """(type name, compared values…): what "the same item" means for scoring."""
    if isinstance(item, str):
        return ("specialty", item)
    if not dataclasses.is_dataclass(item) or isinstance(item, type):
        raise TypeError(f"not an extracted item: {item!r}")
    values = tuple(getattr(item, f.name) for f in dataclasses.fields(item) if f.compare)
    return (_TYPE_NAMES[type(item)], *values)


def _context(record: Mapping[str, Any]) -> SentenceContext:
    return SentenceContext(
        drug=record.get("drug"), indication=record.get("indication"), phase=record.get("phase")
    )


def _lead(record: Mapping[str, Any] | None) -> StepLead | None:
    if record is None:
        return None
    return StepLead(
        count_required=record["count_required"],
        min_duration_days=record.get("min_duration_days"),
        duration_overrides=tuple(sorted(record.get("duration_overrides", {}).items())),
    )


RECORD_KEYS = frozenset(
    {
        "id",
        "sentence",
        "context",
        "expected",
        "preceded_by",
        "examples",
        "lead",
        "held_out",
        "batch",
    }
)


def case_from_record(record: Mapping[str, Any]) -> GoldenCase:
    unknown = set(record) - RECORD_KEYS
    if unknown:
        raise ValueError(
            f"golden record {record.get('id')!r} has unknown keys {sorted(unknown)};"
            f" allowed: {sorted(RECORD_KEYS)}"
        )
    examples = record.get("examples")
    return GoldenCase(
        id=record["id"],
        sentence=record["sentence"],
        context=_context(record.get("context", {})),
        expected=tuple(item_from_record(item) for item in record.get("expected", ())),
        preceded_by=record.get("preceded_by"),
        examples=(
            tuple((head, tuple(names)) for head, names in examples.items())
            if examples is not None
            else None
        ),
        lead=_lead(record.get("lead")),
        checks_lead="lead" in record,
        held_out=bool(record.get("held_out", False)),
        batch=int(record.get("batch", 1 if record.get("held_out") else 0)),
    )


def run_case(case: GoldenCase) -> SentenceFacts:
    """`extract_sentence` on the case, inside its lead when it is a list item."""
    context = case.context
    if case.preceded_by is not None:
        lead = extract_sentence(case.preceded_by, context).lead
        context = dataclasses.replace(context, lead=lead)
    return extract_sentence(case.sentence, context)


def score_case(case: GoldenCase, facts: SentenceFacts) -> dict[str, Score]:
    """Per item type: how the extracted items of one sentence match the expected ones."""
    found = Counter(item_key(item) for item in facts.items())
    expected = Counter(item_key(item) for item in case.expected)
    scores: dict[str, Score] = {}
    for kind in ITEM_TYPES:
        mine = Counter({k: n for k, n in found.items() if k[0] == kind})
        wanted = Counter({k: n for k, n in expected.items() if k[0] == kind})
        hits = sum((mine & wanted).values())
        scores[kind] = Score(
            true_positives=hits,
            false_positives=sum(mine.values()) - hits,
            false_negatives=sum(wanted.values()) - hits,
        )
    return scores


def score(cases: Iterable[GoldenCase]) -> dict[str, Score]:
    """Per item type and "overall" over all cases."""
    totals = {kind: Score() for kind in ITEM_TYPES}
    for case in cases:
        for kind, case_score in score_case(case, run_case(case)).items():
            totals[kind] = totals[kind] + case_score
    totals["overall"] = sum(totals.values(), Score())
    return totals
