"""A run asks the store whether a fetched document's bytes are stored already only when the
document can be stored: known to the store when the run began, or submitted earlier in the run
(`_Extraction._maybe_stored`). Outcomes are the same as when every document was asked."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest
from isolation_support import content_titled_extract

import sources
from diffing.model import RawDocument
from monitor.config import Schedule, SourceConfig
from monitor.pipeline import runner
from monitor.store.core import Store
from sources.base import FetchResult, KnownListing, ListedDocument, Listing, SourceKind

# (key, source version) -> bytes, per run; the listing names them in this order.
RUNS: list[dict[tuple[str, str], bytes]] = [
    # Run 1: two documents, and /a twice (two source versions): its second version is asked,
    # since the run published /a's first version meanwhile.
    {("/a", "1"): b"a1", ("/b", ""): b"b1", ("/a", "2"): b"a2"},
    # Run 2: /b changed, /c is new.
    {("/a", "1"): b"a1", ("/b", ""): b"b2", ("/c", ""): b"c1", ("/a", "2"): b"a2"},
]


@dataclass(frozen=True, kw_only=True)
class _Options:
    parse_timeout_seconds: float = 60.0


class _Source:
    name = "keys"
    request_count = 0
    run = 0

    def __init__(self, **_: object) -> None:
        self.contents = RUNS[_Source.run]

    async def list_documents(self, known: KnownListing) -> Listing:
        return Listing(
            documents=[
                ListedDocument(
                    key=key,
                    source_version=version,
                    version_number=int(version) if version else None,
                    fingerprint=hashlib.sha256(content).hexdigest(),
                    doc_type="test",
                    title=key,
                    url=f"http://127.0.0.1{key}",
                )
                for (key, version), content in self.contents.items()
            ],
            complete=False,
        )

    async def fetch(self, wanted: Sequence[ListedDocument]) -> AsyncIterator[FetchResult]:
        for item in wanted:
            yield RawDocument(
                source="keys",
                key=item.key,
                source_version=item.source_version or None,
                url=item.url,
                content=self.contents[(item.key, item.source_version)],
                content_type="text/plain",
                fetched_at=dt.datetime.now(dt.UTC),
            )

    async def aclose(self) -> None:
        pass


def _config(monkeypatch: pytest.MonkeyPatch) -> SourceConfig:
    kind = SourceKind(
        kind="keys",
        options=_Options,
        default_schedule="every 1h",
        create=_Source,
        extract=content_titled_extract,
        extractor_name="keys/1",
        isolated_extract=True,
    )
    monkeypatch.setitem(sources.SOURCE_KINDS, "keys", kind)
    return SourceConfig(
        name="keys",
        kind="keys",
        schedule=Schedule(expression="every 1h"),
        enabled=True,
        options=_Options(),
    )


def test_only_documents_that_can_be_stored_are_asked_about(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    asked: list[tuple[str, str]] = []
    ask = runner.already_published

    def counting(store, ctx, raw, listed):  # type: ignore[no-untyped-def]
        asked.append((raw.key, raw.source_version or ""))
        return ask(store, ctx, raw, listed)

    monkeypatch.setattr(runner, "already_published", counting)
    config = _config(monkeypatch)
    store = Store.open(f"sqlite:///{tmp_path}/x.db")
    try:
        monkeypatch.setattr(_Source, "run", 0)
        first = asyncio.run(runner.run_source(config, store))
        assert first.outcome == "success"
        assert first.counts.new_versions == 3
        assert asked == [("/a", "2")]  # /a's second version: /a was published meanwhile
        assert store.document_keys(store.ensure_source("keys", "keys").id) == {"/a", "/b"}
        assert store.document_keys(store.ensure_source("other", "keys").id) == frozenset()

        asked.clear()
        monkeypatch.setattr(_Source, "run", 1)
        second = asyncio.run(runner.run_source(config, store))
        assert second.outcome == "success"
        # Only what the listing's fingerprints said changed or is new is fetched: /b (stored,
        # asked) and /c (new to the store, not asked).
        assert asked == [("/b", "")]
        assert second.counts.new_versions == 2
        titles = {
            key: store.criteria_of(store.versions("keys", key)[-1].id).title
            for key in ("/a", "/b", "/c")
        }
        assert titles == {"/a": "a2", "/b": "b2", "/c": "c1"}
        assert [v.source_version for v in store.versions("keys", "/a")] == ["1", "2"]
    finally:
        store.close()
