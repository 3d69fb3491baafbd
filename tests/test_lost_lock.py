"""A run whose source lock is lost mid-run (PostgreSQL connection dropped) stops between
documents, is recorded as failed, leaves nothing half-published, and the next run catches up."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from fixtures.cms_api import CmsApiFixture
from fixtures.cms_corpus.model import scenario_named
from monitor.config import SourceConfig, parse_config
from monitor.pipeline.runner import LOST_LOCK, run_source
from monitor.store.core import Store
from monitor.store.locks import PostgresLocks, lock_key
from monitor.store.models.core import DocumentVersion, SourceRun


@pytest.fixture
def server() -> Iterator[CmsApiFixture]:
    with CmsApiFixture(scenario="week1") as fixture:
        yield fixture


def _source(server: CmsApiFixture) -> SourceConfig:
    config = parse_config(
        {"sources": [{"name": "cms", "kind": "cms_coverage", "base_url": server.base_url}]}
    )
    return config.source("cms")


class _LockLostAfter:
    """Says the lock is held for the first `n` questions, then that it was lost."""

    def __init__(self, n: int) -> None:
        self.remaining = n

    def __call__(self) -> bool:
        self.remaining -= 1
        return self.remaining >= 0


def test_losing_the_lock_stops_the_run_between_documents(
    server: CmsApiFixture, migrated_database_url: str
) -> None:
    store = Store.open(migrated_database_url)
    try:
        today = scenario_named("week1").today
        summary = asyncio.run(
            run_source(_source(server), store, today=lambda: today, still_holding=_LockLostAfter(3))
        )
        assert summary.outcome == "failed"
        assert summary.error == LOST_LOCK
        # Exactly the documents published before the lock was lost, each one whole.
        stopped_after = store.count(DocumentVersion)
        assert 0 < stopped_after <= 3 + 4  # 3 published, at most 4 fetches were in flight
        errors = store.run_errors(summary.run_id)
        assert [e.message for e in errors] == [LOST_LOCK]

        again = asyncio.run(run_source(_source(server), store, today=lambda: today))
        assert again.outcome == "success"
        assert again.counts.new_versions + stopped_after == store.count(DocumentVersion)
        assert store.count(SourceRun) == 2
    finally:
        store.close()


@pytest.mark.postgres
def test_a_dropped_lock_connection_is_noticed(postgres_url: str) -> None:
    locks = PostgresLocks(postgres_url)
    engine = create_engine(postgres_url)
    try:
        lease = locks.try_acquire("victim")
        assert lease is not None
        lease._check_every = 0.0  # ask the server every time in this test
        assert lease.still_held()
        with engine.begin() as connection:
            terminated = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND ((classid::bigint << 32) | objid::bigint) = :key"
                ),
                # The store lives in a schema of its own: the key names it (monitor.store.locks).
                {"key": lock_key("victim", connection.scalar(text("SELECT current_schema()")))},
            ).rowcount
        assert terminated == 1
        assert not lease.still_held()
        # Another instance can take the source now; the old lease stays lost.
        other = locks.try_acquire("victim")
        assert other is not None
        assert not lease.still_held()
        other.release()
        lease.release()
    finally:
        engine.dispose()
        locks.close()
