"""Source-health alerts to the operators' profile, over real SMTP: told once when a source
breaks (N failed runs, an empty listing, extraction that suddenly finds nothing) and once when
it recovers, however often the sender looks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from notify_support import (
    Inbox,
    body_text,
    cms_doc,
    config_for,
    icd,
    later,
    publish_version,
    smtp_server,
)
from sqlite_support import migrated_sqlite

from diffing.model import Section
from monitor.config import Config
from monitor.store.core import RunCounts, Store
from monitor.store.outbox import RunInfo
from notifications.health import judge
from notifications.sender import Sender

SOURCES = [{"name": "cms", "kind": "cms_coverage", "base_url": "http://127.0.0.1:9"}]
OPERATORS = [
    {"name": "operators", "addresses": ["ops@example.org"], "digest": False, "alerts": False}
]


def _run(n: int, outcome: str, listed: int = 100, new_versions: int = 0) -> RunInfo:
    return RunInfo(id=n, outcome=outcome, listed=listed, new_versions=new_versions, error="boom")


def test_judge() -> None:
    assert judge([], failing_runs=3) is None
    failed = [_run(3, "failed"), _run(2, "failed"), _run(1, "failed")]
    verdict = judge(failed, failing_runs=3)
    assert (
        verdict is not None and verdict.state == "broken" and "last 3 runs failed" in verdict.reason
    )
    assert judge([*failed[:2], _run(1, "success")], failing_runs=3) is None  # not yet N
    empty = judge([_run(2, "success", listed=0), _run(1, "success", listed=523)], failing_runs=3)
    assert empty is not None and empty.state == "broken" and "listed 0" in empty.reason
    assert judge([_run(2, "success", listed=0), _run(1, "success", listed=2)], failing_runs=3) == (
        judge([_run(2, "success", listed=0)], failing_runs=3)
    )  # a source that never listed much is not "suddenly empty"
    nothing = judge([_run(2, "success")], failing_runs=3, emptied=(4, 4))
    assert nothing is not None and nothing.state == "broken" and "found nothing" in nothing.reason
    fine = judge([_run(2, "partial")], failing_runs=3, emptied=(4, 3))
    assert fine is not None and fine.state == "ok"


@pytest.fixture
def store(tmp_path: Path, migrated_sqlite_template: Path) -> Iterator[Store]:
    opened = Store.open(migrated_sqlite(migrated_sqlite_template, tmp_path / "monitor.store.db"))
    yield opened
    opened.close()


def _finished_run(store: Store, outcome: str, *, listed: int = 50) -> None:
    source = store.ensure_source("cms", "cms_coverage")
    run_id = store.start_run(source.id, baseline=False)
    store.finish_run(
        run_id,
        outcome=outcome,
        counts=RunCounts(listed=listed),
        error="listing failed: HTTP 503" if outcome == "failed" else None,
    )


def _config(store: Store, port: int) -> Config:
    return config_for(
        str(store.engine.url),
        port,
        recipients=OPERATORS,
        sources=SOURCES,
        notifications={"failing_runs_threshold": 3},
    )


def test_a_failing_source_is_reported_once_and_its_recovery_once(store: Store) -> None:
    inbox = Inbox()
    with smtp_server(inbox) as server:
        sender = Sender(store, _config(store, server.port))
        _finished_run(store, "success")
        assert sender.run_once(later(1)).planned == 0  # healthy: nothing to say
        for _ in range(2):
            _finished_run(store, "failed")
            assert sender.run_once(later(1)).planned == 0  # not three in a row yet
        _finished_run(store, "failed")
        assert sender.run_once(later(1)).planned == 1
        _finished_run(store, "failed")
        assert sender.run_once(later(1)).planned == 0  # still broken: already told
        # A second instance (or a restart) knows it was told: the state is in the database.
        assert Sender(store, _config(store, server.port)).run_once(later(1)).planned == 0
        _finished_run(store, "success")
        assert sender.run_once(later(1)).planned == 1
        assert sender.run_once(later(1)).planned == 0
    subjects = [str(m["Subject"]) for m in inbox.messages()]
    assert subjects == [
        "Source cms is failing: the last 3 runs failed; last error: listing failed: HTTP 503",
        "Source cms has recovered: run 6 finished: success",
    ]
    assert all(str(m["To"]) == "ops@example.org" for m in inbox.messages())
    assert "policy-monitor sources" in body_text(inbox.messages()[0])


def test_extraction_that_suddenly_finds_nothing_is_reported(store: Store) -> None:
    inbox = Inbox()
    with smtp_server(inbox) as server:
        sender = Sender(store, _config(store, server.port))
        article = cms_doc("A1", "Article", codes=[icd("L10.0")])
        publish_version(store, article, version=1, baseline=True)
        assert sender.run_once(later(1)).planned == 0
        # The next version parses to nothing at all: no codes, no text.
        empty = replace(article, codes=frozenset(), sections=(Section(name="indication", text=""),))
        publish_version(store, empty, version=2)
        assert sender.run_once(later(1)).planned == 1
    [message] = inbox.messages()
    assert "extraction found nothing in 1 new version(s)" in str(message["Subject"])
