"""The worker that extracts a payer document also sends its text back, so the publishing
transaction verifies changes without parsing the new version a second time."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from diffing.model import RawDocument
from diffing.parse import parse_document
from diffing.payer import payer_criteria
from diffing.verify import document_text
from monitor.pipeline import verification
from monitor.pipeline.runner import extract_or_error

POLICY = b"""Genetic Testing: Hereditary Cancer Panels
Policy Number: GT-0042
Effective Date: 11/01/2026

Coverage Criteria
Panels are covered when the member meets the criteria below.

Applicable Codes
The following CPT codes are covered when criteria are met:
81432
81433
"""


def _raw(content: bytes, key: str = "/gt-0042.txt") -> RawDocument:
    return RawDocument(
        source="acme",
        key=key,
        url=f"https://acme.example{key}",
        content=content,
        content_type="text/plain",
        fetched_at=dt.datetime.now(dt.UTC),
        source_meta=(("payer", "Acme Health"),),
    )


def test_the_worker_returns_the_criteria_and_the_text_it_parsed() -> None:
    outcome = extract_or_error(payer_criteria, _raw(POLICY))
    assert isinstance(outcome, tuple)
    criteria, text = outcome
    assert {code.code for code in criteria.codes} >= {"81432", "81433"}
    expected = document_text(parse_document(POLICY, "text/plain", document_id="/gt-0042.txt"))
    assert text == expected
    assert "81433" in text


def test_documents_nothing_verifies_send_no_text() -> None:
    # Without a payer the criteria are not a payer policy's: no text travels back.
    raw = dataclasses.replace(_raw(POLICY), source_meta=())
    outcome = extract_or_error(payer_criteria, raw)
    assert isinstance(outcome, tuple)
    assert outcome[1] is None


def test_an_extraction_error_is_still_a_message() -> None:
    def broken(_raw: RawDocument) -> object:
        raise ValueError("boom")

    outcome = extract_or_error(broken, _raw(POLICY))  # type: ignore[arg-type]
    assert outcome == "extraction failed: ValueError: boom"


def test_a_remembered_text_is_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    content = POLICY + b"\nRevised 12/2026\n"
    verification.remember_text(content, "the text the worker sent")

    def no_parse(*_args: object, **_kwargs: object) -> object:
        raise AssertionError("parsed again")

    monkeypatch.setattr(verification, "parse_cached", no_parse)
    pair = verification.texts(_raw(content), lambda: (content, "text/plain"))
    assert pair is not None
    assert pair.new == pair.old == "the text the worker sent"


def test_the_text_cache_is_bounded() -> None:
    for n in range(verification._TEXT_CACHE_SIZE + 10):
        verification.remember_text(f"document {n}".encode(), f"text {n}")
    assert len(verification._texts) == verification._TEXT_CACHE_SIZE
    newest = verification._TEXT_CACHE_SIZE + 9
    assert verification._text(f"document {newest}".encode(), "text/plain", "k") == f"text {newest}"
