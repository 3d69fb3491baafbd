"""monitor.pipeline.collecting: fewer collections while runs are under way, the thresholds in
force before put back when the last run ends, whatever order concurrent runs end in."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from monitor.config import parse_config
from monitor.errors import FetchError
from monitor.pipeline.collecting import RUN_THRESHOLD, fewer_collections
from monitor.pipeline.runner import run_source
from monitor.store.core import Store
from sources.base import FetchResult, KnownListing, ListedDocument, Listing


@pytest.fixture(autouse=True)
def _thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield (700, 10, 10)
    gc.set_threshold(*before)


def test_raised_while_running_and_put_back_after() -> None:
    with fewer_collections():
        assert gc.get_threshold() == (RUN_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_runs_restore_only_when_the_last_one_ends() -> None:
    first, second = fewer_collections(), fewer_collections()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first one in is the first one out
    assert gc.get_threshold() == (RUN_THRESHOLD, 10, 10)  # the second run still runs
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)


def test_threads_entering_and_leaving_at_once_leave_the_thresholds_as_found() -> None:
    start = threading.Barrier(8)
    seen: list[tuple[int, int, int]] = []

    def run() -> None:
        start.wait()
        for _ in range(200):
            with fewer_collections():
                seen.append(gc.get_threshold())

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(seen) == {(RUN_THRESHOLD, 10, 10)}
    assert gc.get_threshold() == (700, 10, 10)


def test_a_higher_threshold_or_collection_off_is_left_alone() -> None:
    gc.set_threshold(50_000, 20, 20)
    with fewer_collections():
        assert gc.get_threshold() == (50_000, 20, 20)
    gc.set_threshold(0, 10, 10)
    with fewer_collections():
        assert gc.get_threshold() == (0, 10, 10)
    assert gc.get_threshold() == (0, 10, 10)


def test_a_failing_run_puts_the_thresholds_back() -> None:
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)


class _Probe:
    """A source whose listing notes the thresholds in force, then fails (a failed run)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[tuple[int, int, int]] = []

    @property
    def request_count(self) -> int:
        return 0

    async def list_documents(self, known: KnownListing) -> Listing:
        self.seen.append(gc.get_threshold())
        raise FetchError(self.name, "http://127.0.0.1:9/", "listing broke")

    async def fetch(self, wanted: Sequence[ListedDocument]) -> AsyncIterator[FetchResult]:
        return
        yield

    async def aclose(self) -> None:
        return None


def test_run_source_runs_with_fewer_collections(tmp_path: Path) -> None:
    config = parse_config(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'm.db'}"},
            "sources": [{"name": "cms", "kind": "cms_coverage", "base_url": "http://127.0.0.1:9"}],
        }
    )
    store = Store.open(config.database.url)
    source_config = config.source("cms")
    probe = _Probe("cms")
    try:
        summary = asyncio.run(
            run_source(
                source_config,
                store,
                factory=lambda c: probe,
            )
        )
    finally:
        store.close()
    assert summary.outcome == "failed"
    assert "listing broke" in (summary.error or "")
    assert probe.seen == [(RUN_THRESHOLD, 10, 10)]
    assert gc.get_threshold() == (700, 10, 10)
