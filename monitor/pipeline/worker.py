"""What runs in an extraction worker process, and nothing more: the workers' fork server
imports this module (not the runner, the store or SQLAlchemy; `monitor.pipeline.warm`), so a
worker starts on the parser's imports.

A worker extracts a document's criteria, parsing it with a light reference to its previous
version (that version's page edges; `diffing.parse.printed_alike`), and sends back beside the
criteria, for a payer document, its text (the publishing checks the changes against it and
keeps it with the payload for the next version) and the reference its next version is to be
parsed with.
"""

from __future__ import annotations

from collections.abc import Callable

from diffing.model import Criteria, RawDocument
from diffing.parse import PageEdges, printed_alike, reference_edges
from diffing.payer import parse_cached
from diffing.verify import document_text
from monitor.errors import MonitorError


def is_payer(criteria: Criteria) -> bool:
    return criteria.payer is not None


class WorkerText(str):
    """A payer document's text as an extraction worker sends it back (the publishing checks
    the changes against it), with `reference`: the page edges its next version is to be parsed
    with. A `str`, so whatever took the text before takes it still."""

    reference: PageEdges

    def __new__(cls, text: str, reference: PageEdges = ()) -> WorkerText:
        made = super().__new__(cls, text)
        made.reference = reference
        return made


def worker_text(
    raw: RawDocument, criteria: Criteria, reference: PageEdges = ()
) -> WorkerText | None:
    """In an extraction worker: a payer document's text, from the parse its extraction just
    cached (with `reference`, the previous version's page edges), and the reference for its
    next version; None for other documents (nothing verifies them) or when it cannot be had."""
    if not is_payer(criteria):
        return None
    try:
        document = parse_cached(raw.content, raw.content_type, document_id=raw.key)
        return WorkerText(document_text(document), reference_edges(document, reference))
    except Exception:  # the criteria stand; the parent parses again if it must
        return None


def extract_printed_alike(
    extract: Callable[[RawDocument], Criteria], raw: RawDocument, reference: PageEdges = ()
) -> tuple[Criteria, WorkerText | None]:
    """In an extraction worker: `extract(raw)` parsing with `reference` (the previous version's
    page edges), and what goes back beside the criteria (`worker_text`)."""
    with printed_alike(reference):
        criteria = extract(raw)
        return criteria, worker_text(raw, criteria, reference)


# Address space of an extraction worker (it starts at ~110 MB): a document that would need
# more (a decompression bomb the inflate budget missed, a pathological table) ends that one
# extraction with a MemoryError instead of the host's memory.
WORKER_ADDRESS_SPACE_BYTES = 2 * 1024**3


def limit_worker_memory(limit: int = WORKER_ADDRESS_SPACE_BYTES) -> None:
    """Initializer of every extraction worker process: RLIMIT_AS of `limit` bytes."""
    try:
        import resource
    except ImportError:  # not on this platform (Windows): no limit
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    chosen = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (chosen, hard))


# What a worker sends back: the criteria and, for a payer document, its text (which the
# publishing transaction checks the changes against) and page edges, or the error message.
Extracted = tuple[Criteria, WorkerText | None]


def extract_or_error(
    extract: Callable[[RawDocument], Criteria], raw: RawDocument, reference: PageEdges = ()
) -> Extracted | str:
    """Run in a worker process: criteria and text, or the error message (exceptions with custom
    constructors do not survive pickling). The text comes from the parse the extraction just
    did (cached in this process), so this process parses the document once, not the parent
    a second time to verify its changes."""
    try:
        return extract_printed_alike(extract, raw, reference)
    except MonitorError as exc:
        return str(exc)
    except Exception as exc:  # a parser bug must not take the run down
        return f"extraction failed: {type(exc).__name__}: {exc}"
