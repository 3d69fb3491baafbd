"""Golden parse cases: one document in, its exact `PolicyDocument` (as JSON) out.

Each case is tests/golden/parse_<case>/{input.pdf|input.html|input.txt, expected.json}; SOURCE.md
says how the input was made. After a deliberate change to the parser, regenerate with
UPDATE_GOLDEN=1, review the diff of expected.json by eye, and bump `PARSER_VERSION`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from diffing.model import PolicyDocument
from diffing.parse import parse_document

GOLDEN = Path(__file__).parent / "golden"
CONTENT_TYPES = {
    ".pdf": "application/pdf",
    ".html": "text/html",
    ".txt": "text/plain",
    ".md": "text/markdown",
}
CASES = sorted(p.name for p in GOLDEN.glob("parse_*") if any(p.glob("input.*")) and p.is_dir())


def as_json(document: PolicyDocument) -> dict[str, object]:
    return {
        "title": document.title,
        "content_type": document.content_type,
        "pages": document.pages,
        "meta": [list(pair) for pair in document.meta],
        "sections": [
            {
                "name": s.name,
                "page_offsets": [list(pair) for pair in s.page_offsets],
                "text": s.text.split("\n") if s.text else [],
            }
            for s in document.sections
        ],
        "tables": [
            {"page": t.page, "section": t.section, "rows": [list(row) for row in t.rows]}
            for t in document.tables
        ],
    }


@pytest.mark.parametrize("case", CASES)
def test_golden_parse(case: str) -> None:
    directory = GOLDEN / case
    (source,) = directory.glob("input.*")
    document = parse_document(source.read_bytes(), CONTENT_TYPES[source.suffix], document_id=case)
    actual = as_json(document)
    expected_file = directory / "expected.json"
    if os.environ.get("UPDATE_GOLDEN"):
        expected_file.write_text(json.dumps(actual, indent=1, ensure_ascii=False) + "\n")
    assert actual == json.loads(expected_file.read_text())


def test_there_are_parse_golden_cases() -> None:
    assert {Path(c).name.split("_")[-1] for c in CASES} >= {"pdf", "html", "txt"}
    assert len(CASES) >= 3
    for case in CASES:
        (source,) = (GOLDEN / case).glob("input.*")
        assert source.stat().st_size < 50_000, source
