"""Real data for tests (../shared/realdata; CI has it): the real-pairs evaluation
(`bench/real_pairs.py`), loaded once and skipped with the reason when the data is absent, and
`parse_real`, which parses each real document once per test session.

Several modules parse the same real documents (the checklist check, the code tables, the real
pairs through the pipeline, the parse determinism checks); the big state drug lists take tens
of seconds each on a loaded 2-core machine. `parse_real` is `parse_document` memoised for bytes
that are files of ../shared/realdata, and conftest.py routes `diffing.payer`'s parses through
it, so `payer_criteria` and `bench/real_pairs.py` share the same parses. A parse is a frozen
`PolicyDocument` (tuples of frozen dataclasses), so handing out the same one cannot let a test
change what another sees; a refusal is kept as its reason and raised as a new `ParseError`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

from diffing.model import PolicyDocument
from diffing.parse import _PRINTED_ALIKE, DEFAULT_MAX_PAGES, detect_format, parse_document
from monitor.errors import ParseError

ROOT = Path(__file__).resolve().parents[1]
REALDATA = ROOT.parent / "shared" / "realdata"

# (sha256, detected format, max_pages, declared type when no format is detected) -> the parse.
# The declared type reaches `parse_document`'s result only through `detect_format` (and the
# message refusing an unknown format), and `document_id` only through `ParseError`.
_parses: dict[tuple[str, str | None, int, str], PolicyDocument | str] = {}


def real_pairs_bench() -> ModuleType:
    if not REALDATA.exists():
        pytest.skip(f"real data not present at {REALDATA}")
    bench = str(ROOT / "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    return importlib.import_module("real_pairs")


@functools.cache
def _real_files_by_size() -> dict[int, tuple[Path, ...]]:
    by_size: dict[int, list[Path]] = {}
    if REALDATA.exists():
        for path in sorted(REALDATA.rglob("*")):
            if path.is_file():
                by_size.setdefault(path.stat().st_size, []).append(path)
    return {size: tuple(paths) for size, paths in by_size.items()}


@functools.cache
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _real_digest(content: bytes) -> str | None:
    """The sha256 of `content` when it is the content of a file of ../shared/realdata (sizes
    first: the suite's other documents cost a dictionary look-up), else None."""
    paths = _real_files_by_size().get(len(content), ())
    if not paths:
        return None
    digest = hashlib.sha256(content).hexdigest()
    return digest if any(_digest(path) == digest for path in paths) else None


def parse_real(
    content: bytes,
    content_type: str,
    *,
    document_id: str = "?",
    max_pages: int = DEFAULT_MAX_PAGES,
) -> PolicyDocument:
    """`parse_document(content, content_type, …)`, parsed once per session when `content` is a
    real document; anything else (fixture documents, a parse inside `printed_alike`, whose
    result depends on the references) is parsed every time, as without this."""
    digest = _real_digest(content)
    if digest is None or _PRINTED_ALIKE.get():
        return parse_document(content, content_type, document_id=document_id, max_pages=max_pages)
    kind = detect_format(content, content_type)
    key = (digest, kind, max_pages, "" if kind else content_type)
    if key not in _parses:
        try:
            _parses[key] = parse_document(
                content, content_type, document_id=document_id, max_pages=max_pages
            )
        except ParseError as exc:
            _parses[key] = exc.reason
    parsed = _parses[key]
    if isinstance(parsed, str):
        raise ParseError(document_id, parsed)
    return parsed
