"""Payer criteria extraction: a parsed `PolicyDocument` in, its `Criteria` out.

`extract_criteria` walks the document (`diffing.extract.document`); `extract_sentence` reads one
criteria sentence (`diffing.extract.sentences`) and is what the golden sentence set tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diffing.extract.sentences import SentenceContext, SentenceFacts, extract_sentence
    from diffing.extract.steps import StepLead
    from diffing.model import Criteria, PolicyDocument

# The submodules load on first use (PEP 562 below): `diffing.extract.durations` and
# `diffing.extract.codes` are read by the CLI's output and the store, and importing them must not
# pull in the whole extractor and the parsers behind it (the CLI starts in about 0.2 s).
_LAZY = {
    "SentenceContext": "diffing.extract.sentences",
    "SentenceFacts": "diffing.extract.sentences",
    "extract_sentence": "diffing.extract.sentences",
    "StepLead": "diffing.extract.steps",
}

# Bump when a change to the extractor can change its output for the same document, so stored
# criteria from an older extractor are not diffed against a newer one as if the policy changed.
EXTRACTOR_VERSION = "1.3"

__all__ = [
    "EXTRACTOR_VERSION",
    "SentenceContext",
    "SentenceFacts",
    "StepLead",
    "extract_criteria",
    "extract_sentence",
]


def extract_criteria(
    document: PolicyDocument,
    *,
    document_id: str,
    payer: str | None = None,
    version: str | None = None,
) -> Criteria:
    """The criteria a payer policy document states: drugs, step therapy, prior authorization,
    approval periods, thresholds, age limits, prescriber specialties, codes, policy number,
    effective date and revision history, each item with its evidence."""
    from diffing.extract.document import extract_document

    return extract_document(document, document_id=document_id, payer=payer, version=version)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
