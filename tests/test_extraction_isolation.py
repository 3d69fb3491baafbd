"""Extraction in worker processes: a hanging or crashing parser costs one document, not the run."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import pytest
from isolation_support import slow_or_broken_extract

import sources
from diffing.model import RawDocument
from monitor.config import Schedule, SourceConfig
from monitor.pipeline.runner import run_source
from monitor.pipeline.workers import end_pool, worker_context
from monitor.store.core import Store
from sources.base import FetchResult, KnownListing, ListedDocument, Listing, SourceKind

KEYS = ("/a", "/hang", "/b", "/crash", "/c", "/d")


@dataclass(frozen=True, kw_only=True)
class _Options:
    parse_timeout_seconds: float = 3.0


class _Source:
    name = "fake"
    request_count = 0

    def __init__(self, **_: object) -> None:
        pass

    async def list_documents(self, known: KnownListing) -> Listing:
        return Listing(
            documents=[
                ListedDocument(
                    key=k,
                    source_version="",
                    version_number=None,
                    fingerprint=hashlib.sha256(k.encode()).hexdigest(),
                    doc_type="test",
                    title=k,
                    url=f"http://127.0.0.1/{k}",
                )
                for k in KEYS
            ],
            complete=False,
        )

    async def fetch(self, wanted: Sequence[ListedDocument]) -> AsyncIterator[FetchResult]:
        for item in wanted:
            yield RawDocument(
                source="fake",
                key=item.key,
                url=item.url,
                content=item.key.encode(),
                content_type="text/plain",
                fetched_at=dt.datetime.now(dt.UTC),
            )

    async def aclose(self) -> None:
        pass


@pytest.fixture
def fake_kind(monkeypatch: pytest.MonkeyPatch) -> Iterator[SourceConfig]:
    kind = SourceKind(
        kind="fake",
        options=_Options,
        default_schedule="every 1h",
        create=_Source,
        extract=slow_or_broken_extract,
        extractor_name="fake/1",
        isolated_extract=True,
    )
    monkeypatch.setitem(sources.SOURCE_KINDS, "fake", kind)
    yield SourceConfig(
        name="fake",
        kind="fake",
        schedule=Schedule(expression="every 1h"),
        enabled=True,
        options=_Options(),
    )


@pytest.fixture
def ready_workers() -> None:
    """The workers' fork server loads the parsers once, before its first worker (seconds on a
    loaded machine): done before the run, so that the 3 s parse timeout here times the
    documents, not that start."""
    with ProcessPoolExecutor(max_workers=1, mp_context=worker_context()) as pool:
        assert pool.submit(int).result(timeout=120) == 0


@pytest.mark.slow
def test_a_hanging_and_a_crashing_parse_cost_one_document_each(
    fake_kind: SourceConfig, tmp_path: object, ready_workers: None
) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/x.db")
    started = time.monotonic()
    summary = asyncio.run(run_source(fake_kind, store))
    elapsed = time.monotonic() - started
    errors = {e.document_key: e.message for e in store.run_errors(summary.run_id)}
    assert set(errors) == {"/hang", "/crash"}
    assert "longer than 3 s" in errors["/hang"]
    assert "worker died on this document" in errors["/crash"]
    assert summary.counts.new_versions == 4  # /a /b /c /d all published
    assert summary.outcome == "partial"
    assert elapsed < 60  # the hanging worker was ended, not waited for
    store.close()


@pytest.mark.parametrize("work", ["hanging", "crashed"])
def test_ending_a_pool_waits_for_its_manager_thread_and_the_next_pool_works(
    work: str, ready_workers: None
) -> None:
    """`end_pool` returns only once the old pool's manager thread is done with the pool's
    pipes: a pool made next cannot have a descriptor closed under it by that thread (which
    made a run crash with "Bad file descriptor" when the old pool was left to end alone)."""
    pool = ProcessPoolExecutor(max_workers=1, mp_context=worker_context())
    if work == "hanging":
        future = pool.submit(time.sleep, 60)
        while not future.running():
            time.sleep(0.01)
    else:
        future = pool.submit(os._exit, 1)  # the worker dies: the pool is broken
        with pytest.raises(BrokenProcessPool):
            future.result(timeout=120)
    manager: threading.Thread | None = getattr(pool, "_executor_manager_thread", None)
    workers = list(getattr(pool, "_processes", {}).values())
    assert manager is not None
    started = time.monotonic()
    end_pool(pool)
    assert not manager.is_alive()
    assert not any(worker.is_alive() for worker in workers)
    assert time.monotonic() - started < 30  # the sleeping worker was ended, not waited for
    with ProcessPoolExecutor(max_workers=1, mp_context=worker_context()) as fresh:
        assert fresh.submit(int, "7").result(timeout=120) == 7
