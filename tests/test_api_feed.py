"""The change feed's cursor under concurrent publishing: a poller over real HTTP sees every
change id exactly once, in order, while several threads publish (PostgreSQL and SQLite)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from api_support import (
    PolicySpec,
    payer_document,
    policy_text,
    publish_versions,
    serving,
    start_run,
)

from monitor.pipeline.publish import publish
from monitor.store.core import Store

PUBLISHERS = 4
VERSIONS_EACH = 30


@pytest.fixture
def store(migrated_database_url: str) -> Iterator[Store]:
    opened = Store.open(migrated_database_url)
    yield opened
    opened.close()


def _publisher(store: Store, number: int, errors: list[BaseException]) -> None:
    key = f"/policies/drug/concurrent-{number}.txt"
    try:
        ctx = start_run(store, baseline=False)
        for version in range(VERSIONS_EACH):
            # Every version changes the trial length and the approval period: several changes
            # per transaction, so ids are drawn in batches by concurrent transactions.
            spec = PolicySpec(weeks=4 + version, months=1 + version % 11)
            publish(store, ctx, *payer_document(key, policy_text(spec)))
    except BaseException as exc:  # reported by the test, not lost in the thread
        errors.append(exc)


def _poll(client: httpx.Client, since: int) -> tuple[list[int], int, bool]:
    response = client.get("/changes", params={"since": since, "limit": 7, "min_severity": "noise"})
    assert response.status_code == 200
    feed = response.json()
    return [item["id"] for item in feed["items"]], feed["next"], feed["has_more"]


@pytest.mark.slow
def test_poller_sees_every_change_once_while_publishing_runs_concurrently(store: Store) -> None:
    publish_versions(store, [PolicySpec()])  # the baseline run, before the race starts
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_publisher, args=(store, n, errors)) for n in range(PUBLISHERS)
    ]
    seen: list[int] = []
    polls = 0
    with serving(store) as api, api.client() as client:
        for thread in threads:
            thread.start()
        since = 0
        while any(t.is_alive() for t in threads):
            ids, since, _more = _poll(client, since)
            seen.extend(ids)
            polls += 1
        for thread in threads:
            thread.join()
        while True:  # drain what was committed after the last poll
            ids, since, more = _poll(client, since)
            seen.extend(ids)
            if not ids and not more:
                break
    assert not errors, errors
    stored = [c.id for c in store.changes(min_severity="noise")]
    assert len(stored) > PUBLISHERS * VERSIONS_EACH  # several changes per version
    assert polls > 10  # the poller really ran during the publishing
    assert len(seen) == len(set(seen)), "a change was delivered twice"
    assert seen == sorted(seen), "the feed went backwards"
    assert set(seen) == set(stored), f"missed {sorted(set(stored) - set(seen))[:10]}"
