"""What every source kind provides: a listing of what exists, and a fetch of what is new."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from diffing.model import Criteria, PolicyDiff, RawDocument


@dataclass(frozen=True, kw_only=True)
class ListedDocument:
    """One (document, version) as the source's listing shows it, before anything is fetched."""

    key: str
    source_version: str
    version_number: int | None
    fingerprint: str  # sha256 of the listing row: a change means "fetch again"
    doc_type: str
    title: str
    url: str
    row: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, kw_only=True)
class Validators:
    """What the store remembers of a listed (document, version) from the last fetch."""

    fingerprint: str
    etag: str | None = None
    last_modified: str | None = None
    # Its document was reported withdrawn: a source does not probe it again (its URL answering
    # 404 once more says nothing new), though a page linking it again is followed as ever.
    withdrawn: bool = False


KnownListing = Mapping[tuple[str, str], Validators]  # (key, source_version) -> validators


@dataclass(frozen=True, kw_only=True)
class Listing:
    """What a source lists this run. `complete` is False when part of the listing could not
    be read (an index page failed): then nothing missing from it is treated as withdrawn."""

    documents: Sequence[ListedDocument]
    complete: bool = True
    problems: Sequence[str] = ()
    # Validators of the listing's own files (an MCD export zip's sha256, ETag, Last-Modified),
    # keyed like `KnownListing`; the runner stores them only after a run without errors, so a
    # failed run reads those files again next time.
    validators: Mapping[tuple[str, str], Validators] = field(default_factory=dict)
    # Stored documents the listing dropped whose own URL answered 404 or 410 this run, by key,
    # with what it answered ("HTTP 410"): withdrawn at once, not after a second listing.
    gone: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class FetchFailure:
    """A document that could not be fetched this run; it is retried on the next run."""

    key: str
    source_version: str
    url: str
    message: str


FetchResult = RawDocument | FetchFailure


class Source(Protocol):
    name: str

    @property
    def request_count(self) -> int: ...

    async def list_documents(self, known: KnownListing) -> Listing: ...

    def fetch(self, wanted: Sequence[ListedDocument]) -> AsyncIterator[FetchResult]:
        """Yield every version of one document in version order (documents may interleave)."""
        ...

    async def aclose(self) -> None: ...


# Called with a document the listing downloaded and will list as new or changed, as `fetch`
# will yield it (its `fetched_at` aside).
Arrived = Callable[[RawDocument], None]


@runtime_checkable
class Announcing(Protocol):
    """A source whose listing downloads the documents themselves (a payer site's pages) and can
    hand each one over as it arrives, so that its extraction starts before the listing ends
    (`monitor.pipeline.runner`). What it hands over is a hint: the run still publishes what
    `fetch` yields, and uses the early extraction only for identical bytes."""

    def announce_to(self, arrived: Arrived | None) -> None: ...


@dataclass(frozen=True, kw_only=True)
class SourceKind:
    """A registry entry: the `kind` string of the config and what implements it."""

    kind: str
    options: type
    default_schedule: str
    create: Callable[..., Source]  # (name=, options=) -> Source
    extract: Callable[[RawDocument], Criteria]
    extractor_name: str
    # Extract in worker processes (expensive parsing: PDFs) instead of in the run's process.
    isolated_extract: bool = False
    # (old criteria or None, new criteria, today=) -> PolicyDiff; None: diffing.diff.diff_criteria
    diff: Callable[..., PolicyDiff] | None = None


def check(condition: bool, message: str) -> None:
    """Raise the ValueError that `monitor.settings.build` turns into a ConfigError naming the
    table being validated; sources' option dataclasses call it from their `validate`."""
    if not condition:
        raise ValueError(message)
