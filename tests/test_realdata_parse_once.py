"""`realdata_support.parse_real`, the session's memo of real-document parses: it gives what
`parse_document` gives, refuses as it refuses, and parses anything but real data every time."""

from __future__ import annotations

import pytest
import realdata_support
from realdata_support import REALDATA, parse_real

import diffing.payer
from diffing.parse import parse_document
from monitor.errors import ParseError

pytestmark = pytest.mark.skipif(not REALDATA.exists(), reason=f"{REALDATA} absent")

SMALL = REALDATA / "payer-pairs-2025" / "OH_updl_androgens_2023-12-20_vs_2024-01-25__after.md"


def test_a_real_document_is_parsed_once_and_equals_a_fresh_parse() -> None:
    content = SMALL.read_bytes()
    first = parse_real(content, "text/markdown", document_id="one")
    again = parse_real(content, "text/markdown", document_id="two")
    assert again is first
    assert first == parse_document(content, "text/markdown", document_id="one")


def test_a_refusal_is_raised_again_with_the_callers_document_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    content = SMALL.read_bytes()
    monkeypatch.setattr(realdata_support, "_parses", {})  # this test's own memo

    def refuse(*_: object, **__: object) -> None:
        raise ParseError("first", "looks like an error page: test")

    monkeypatch.setattr(realdata_support, "parse_document", refuse)
    for document_id in ("first", "second"):
        with pytest.raises(ParseError) as refused:
            parse_real(content, "text/plain", document_id=document_id)
        assert refused.value.document_id == document_id
        assert refused.value.reason == "looks like an error page: test"


def test_other_bytes_are_parsed_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def parse(content: bytes, content_type: str, **kwargs: object) -> object:
        calls.append(content)
        return parse_document(content, content_type, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(realdata_support, "parse_document", parse)
    content = SMALL.read_bytes().replace(b"Androgens", b"Not real data")
    assert parse_real(content, "text/plain") == parse_real(content, "text/plain")
    assert len(calls) == 2


def test_payer_parses_go_through_it() -> None:
    assert diffing.payer.parse_document is parse_real
