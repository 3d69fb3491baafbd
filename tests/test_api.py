"""The HTTP API over real HTTP on loopback: documents with slash keys, raw bytes, the change
feed's pages and filters, ETags, reviews, /healthz and /metrics."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from api_support import (
    PAYER_KEY,
    SOURCE,
    THREE_VERSIONS,
    Harness,
    PolicySpec,
    payer_document,
    policy_text,
    publish_versions,
    serving,
    start_run,
)
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from monitor.api.app import create_app
from monitor.api.auth import create_api_key
from monitor.api.server import ApiServer
from monitor.cli.main import main
from monitor.config import parse_config
from monitor.errors import StoreError
from monitor.pipeline.publish import publish
from monitor.report import change_to_json
from monitor.store.core import Store

# Keys `policy-monitor changes --format json` adds to the stored record.
WORDING = {
    "kind_label",
    "before_text",
    "after_text",
    "effective_note",
    "same_fact_as",
    "stated_effective_date",
    "flag_notes",
}


@pytest.fixture
def store(migrated_database_url: str) -> Iterator[Store]:
    opened = Store.open(migrated_database_url)
    yield opened
    opened.close()


@pytest.fixture
def api(store: Store) -> Iterator[Harness]:
    publish_versions(store, THREE_VERSIONS)
    with serving(store) as harness:
        yield harness


def _metrics(response: httpx.Response) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_documents_with_slash_keys_their_versions_and_raw_bytes(api: Harness) -> None:
    with api.client() as client:
        listing = client.get("/documents").json()
        [document] = listing["items"]
        assert document["key"] == PAYER_KEY and document["versions"] == 3
        assert listing["next"] is None
        # The link escapes every "/" of the key; the plain "//" form reaches the same document.
        encoded = client.get(document["links"]["self"]).json()
        plain = client.get(f"/documents/{SOURCE}/{PAYER_KEY}").json()
        assert encoded == plain
        assert [v["version_number"] for v in plain["versions"]] == [1, 2, 3]

        version = client.get(plain["versions"][1]["links"]["self"]).json()
        [step] = version["criteria"]["step_therapy"]
        assert step["min_duration_days"] == 84  # "12 weeks" in version 2
        assert "sections" not in version["criteria"]
        rationale = next(s for s in version["sections"] if s["name"] == "coverage rationale")
        assert "a minimum of 12 weeks" in rationale["text"]

        raw = client.get(plain["versions"][0]["links"]["raw"])
        expected = policy_text(THREE_VERSIONS[0]).encode()
        assert raw.status_code == 200 and raw.content == expected
        assert raw.headers["content-type"] == "text/plain; charset=utf-8"
        assert raw.headers["etag"] == f'"{hashlib.sha256(expected).hexdigest()}"'
        assert "sandbox" in raw.headers["content-security-policy"]

        assert (
            client.get(f"/documents/{SOURCE}/{quote(PAYER_KEY, safe='')}/versions/9").status_code
            == 404
        )
        assert client.get(f"/documents/{SOURCE}/no-such-key").status_code == 404
        assert client.get(f"/documents/nosuchsource/{PAYER_KEY}/versions/1/raw").status_code == 404


def test_documents_page_by_cursor_without_gaps(store: Store) -> None:
    for index in range(5):
        publish_versions(store, [PolicySpec()], key=f"/policies/drug/drug-{index}.txt")
    with serving(store) as api, api.client() as client:
        keys: list[str] = []
        after = 0
        pages = 0
        while True:
            page = client.get("/documents", params={"after": after, "limit": 2}).json()
            keys.extend(d["key"] for d in page["items"])
            pages += 1
            if page["next"] is None:
                break
            after = page["next"]
        assert keys == [f"/policies/drug/drug-{i}.txt" for i in range(5)]
        assert pages == 3
        only = client.get("/documents", params={"source": "other"}).json()
        assert only == {"items": [], "next": None}
        assert client.get("/documents", params={"limit": 0}).status_code == 422


def test_change_feed_matches_the_cli_json_and_pages_by_cursor(
    api: Harness, capsys: pytest.CaptureFixture[str], database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n')
    capsys.readouterr()
    assert main(["--config", str(config), "changes", "--format", "json"]) == 0
    cli = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(cli) >= 5

    with api.client() as client:
        items: list[dict] = []
        since = 0
        while True:
            feed = client.get("/changes", params={"since": since, "limit": 2}).json()
            items.extend(feed["items"])
            assert feed["next"] == (feed["items"][-1]["id"] if feed["items"] else since)
            since = feed["next"]
            if not feed["has_more"]:
                break
        # The CLI's lines are the API's records plus their wording for people.
        assert [{k: item[k] for k in cli[0] if k not in WORDING} for item in items] == [
            {k: v for k, v in line.items() if k not in WORDING} for line in cli
        ]
        assert client.get("/changes", params={"since": since}).json() == {
            "items": [],
            "next": since,
            "has_more": False,
        }

        high = client.get("/changes", params={"min_severity": "high"}).json()["items"]
        assert high and {c["severity"] for c in high} == {"high"}
        step = next(c for c in high if c["kind"] == "step_therapy_changed")
        assert (step["before"], step["after"], step["effective_date"]) == (
            "8 weeks",
            "12 weeks",
            "2026-03-01",
        )
        assert client.get(step["links"]["version"]).json()["version"]["version_number"] == 2
        by_document = client.get("/changes", params={"document": PAYER_KEY}).json()["items"]
        assert [c["id"] for c in by_document] == [c["id"] for c in items]
        assert client.get("/changes", params={"source": "other"}).json()["items"] == []
        no_baseline = client.get("/changes", params={"include_baseline": "false"}).json()
        assert all(not c["baseline"] for c in no_baseline["items"])
        assert len(no_baseline["items"]) == len(items) - 1
        assert client.get("/changes", params={"min_severity": "urgent"}).status_code == 422


def test_etags_give_304_until_the_data_changes(api: Harness) -> None:
    with api.client() as client:
        first = client.get("/changes")
        etag = first.headers["etag"]
        again = client.get("/changes", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        listed = client.get("/changes", headers={"If-None-Match": f'"other", W/{etag}'})
        assert listed.status_code == 304
        assert client.get("/changes", headers={"If-None-Match": '"other"'}).status_code == 200

        raw_path = f"/documents/{SOURCE}/{quote(PAYER_KEY, safe='')}/versions/1/raw"
        raw = client.get(raw_path)
        assert (
            client.get(raw_path, headers={"If-None-Match": raw.headers["etag"]}).status_code == 304
        )

        ctx = start_run(api.store, baseline=False)
        publish(api.store, ctx, *payer_document(PAYER_KEY, policy_text(PolicySpec(weeks=16))))
        changed = client.get("/changes", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        # Errors carry no ETag.
        assert "etag" not in client.get("/changes/999999").headers


def test_review_flow_latest_review_wins_and_reviews_are_immutable(api: Harness) -> None:
    with api.client("review") as reviewer, api.client("read") as reader:
        unreviewed = reader.get("/changes", params={"unreviewed": "true"}).json()["items"]
        target = next(c for c in unreviewed if c["kind"] == "step_therapy_changed")
        assert target["review"] is None

        body = {"reviewer": "Dana Biller", "note": "Updated the PA template."}
        assert reader.post(f"/changes/{target['id']}/review", json=body).status_code == 403
        first = reviewer.post(target["links"]["review"], json=body)
        assert first.status_code == 201
        assert first.json()["reviewer"] == "Dana Biller"
        second = reviewer.post(
            target["links"]["review"], json={"reviewer": "Sam Lead", "note": "Checked again."}
        )
        assert second.status_code == 201 and second.json()["id"] > first.json()["id"]

        left = reader.get("/changes", params={"unreviewed": "true"}).json()["items"]
        assert target["id"] not in {c["id"] for c in left}
        assert len(left) == len(unreviewed) - 1
        listed = next(c for c in reader.get("/changes").json()["items"] if c["id"] == target["id"])
        assert listed["review"]["reviewer"] == "Sam Lead"  # the latest wins
        detail = reader.get(target["links"]["self"]).json()
        assert [r["reviewer"] for r in detail["reviews"]] == ["Dana Biller", "Sam Lead"]

        assert reviewer.post("/changes/999999/review", json=body).status_code == 404
        blank = reviewer.post(target["links"]["review"], json={"reviewer": "  ", "note": ""})
        assert blank.status_code == 422
        assert reviewer.post(target["links"]["review"], json={"note": "x"}).status_code == 422
        nul = {"reviewer": "Dana", "note": "a\x00b"}  # PostgreSQL text cannot hold NUL
        assert reviewer.post(target["links"]["review"], json=nul).status_code == 422
        assert reader.get("/changes", params={"source": "a\x00b"}).status_code == 422

    with pytest.raises(StoreError, match="immutable"), api.store.session() as session:
        session.execute(text("UPDATE change_reviews SET note = 'rewritten'"))
    with pytest.raises(StoreError, match="immutable"), api.store.session() as session:
        session.execute(text("DELETE FROM change_reviews"))


def test_review_from_the_command_line(
    api: Harness, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n')
    args = ["--config", str(config), "review"]
    assert main([*args, "2", "--reviewer", "Dana", "--note", "ok"]) == 0
    assert "change 2 reviewed by Dana" in capsys.readouterr().out
    assert main([*args, "999999", "--reviewer", "Dana"]) == 1
    with api.client() as client:
        assert client.get("/changes/2").json()["review"]["note"] == "ok"


def test_healthz_reports_the_scheduler_and_the_database(store: Store) -> None:
    alive = {"ok": True}

    def scheduler() -> tuple[bool, str]:
        return alive["ok"], "" if alive["ok"] else "scheduler thread is not running"

    with serving(store, health=scheduler) as api, api.client(scope=None) as anonymous:
        ok = anonymous.get("/healthz")
        assert ok.status_code == 200 and ok.json() == {"status": "ok", "reason": None}
        alive["ok"] = False
        down = anonymous.get("/healthz")
        assert down.status_code == 503
        assert down.json() == {"status": "unavailable", "reason": "scheduler thread is not running"}


def test_healthz_fails_when_the_health_probe_raises_or_the_database_is_gone(
    tmp_path: Path,
) -> None:
    def broken() -> tuple[bool, str]:
        raise RuntimeError("scheduler state unreadable")

    store = Store.open(f"sqlite:///{tmp_path / 'up.db'}")
    app = create_app(store, parse_config({}), health=broken)
    with ApiServer(app) as server, httpx.Client(base_url=server.url) as client:
        response = client.get("/healthz")
        assert response.status_code == 503
        # What failed, not the exception's text (issue 16: /healthz needs no key).
        assert response.json()["reason"] == "health check failed"
    store.close()

    # Nothing listens on port 1: the database is unreachable.
    gone = Store.open("postgresql+psycopg://postgres@127.0.0.1:1/test", migrate=False)
    app = create_app(gone, parse_config({}))
    with ApiServer(app) as server, httpx.Client(base_url=server.url) as client:
        response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["reason"].startswith("database unavailable")
        # Other endpoints say the database is down instead of failing obscurely.
        failed = client.get("/changes", headers={"X-API-Key": "ppm_000000000000_" + "a" * 43})
        assert failed.status_code == 503
    gone.close()


def test_metrics_are_read_from_the_database_by_every_instance(api: Harness) -> None:
    other = create_app(api.store, parse_config({}))  # a second instance on the same database
    with ApiServer(other) as second, api.client() as client:
        first = _metrics(client.get("/metrics"))
        with httpx.Client(base_url=second.url, headers=client.headers) as second_client:
            mirrored = _metrics(second_client.get("/metrics"))
        for name, labels in first:
            if name.startswith("policy_monitor_"):
                assert first[name, labels] == mirrored[name, labels]

        assert first["policy_monitor_runs_total", (("outcome", "success"), ("source", SOURCE))] == 3
        assert first["policy_monitor_documents", (("source", SOURCE),)] == 1
        changes = api.store.changes()
        for severity in ("low", "medium", "high"):
            # Metrics count what publish stored; the feed shows a restating checklist change
            # with its fact's severity (issue 15), read time only.
            expected = sum(1 for c in changes if c.stored_severity == severity)
            key = ("policy_monitor_changes_total", (("severity", severity), ("source", SOURCE)))
            assert first.get(key, 0) == expected
        assert first["policy_monitor_last_success_timestamp_seconds", (("source", SOURCE),)] > 0
        assert first["policy_monitor_last_run_duration_seconds", (("source", SOURCE),)] >= 0
        from monitor.store.outbox import NotifyStore

        deliveries = NotifyStore(api.store).counts()
        for status in ("pending", "sent", "failed"):
            key = ("policy_monitor_outbox_deliveries", (("status", status),))
            assert first[key] == deliveries.get(status, 0)
        if not deliveries.get("pending"):
            assert first["policy_monitor_outbox_oldest_pending_age_seconds", ()] == 0
        unreviewed_high = first["policy_monitor_unreviewed_changes", (("severity", "high"),)]
        assert unreviewed_high == sum(
            1 for c in changes if c.stored_severity == "high" and not c.baseline
        )

        high = client.get("/changes", params={"min_severity": "high"}).json()["items"][0]
        with api.client("review") as reviewer:
            reviewer.post(high["links"]["review"], json={"reviewer": "Dana", "note": ""})
        after = _metrics(client.get("/metrics"))
        assert after["policy_monitor_unreviewed_changes", (("severity", "high"),)] == (
            unreviewed_high - 1
        )


def test_openapi_document_describes_every_route_and_both_key_headers(api: Harness) -> None:
    with api.client(scope=None) as client:
        spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/healthz",
        "/metrics",
        "/documents",
        "/documents/{source}/{key}",
        "/documents/{source}/{key}/versions/{number}",
        "/documents/{source}/{key}/versions/{number}/raw",
        "/changes",
        "/changes/{change_id}",
        "/changes/{change_id}/review",
        "/changes/{change_id}/page",
    ):
        assert path in paths, path
    schemes = spec["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
    feed = paths["/changes"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert feed == {"$ref": "#/components/schemas/ChangeFeed"}
    change = spec["components"]["schemas"]["ChangeOut"]
    assert change["properties"]["severity"]["enum"] == [
        "noise",
        "unverified",
        "low",
        "medium",
        "high",
    ]
    assert set(change["required"]) >= {"id", "kind", "severity", "detected_at", "links"}
    assert "401" in paths["/changes"]["get"]["responses"]


def test_change_json_is_the_cli_record_plus_review_and_links(api: Harness) -> None:
    record = api.store.changes(min_severity="high")[0]
    with api.client() as client:
        served = client.get(f"/changes/{record.id}").json()
    expected = json.loads(change_to_json(record))
    assert {k: served[k] for k in expected if k in served} == {
        k: v for k, v in expected.items() if k not in WORDING
    }  # the CLI adds its wording for people; the API repeats the stored record
    assert set(served) - set(expected) == {"review", "reviews", "links"}


@pytest.mark.slow
def test_serve_command_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'monitor.store.db'}"
    store = Store.open(database)
    publish_versions(store, THREE_VERSIONS[:2])
    key = create_api_key(store, "ops", "read")
    store.close()
    config = tmp_path / "monitor.toml"
    config.write_text(f'[database]\nurl = "{database}"\n[api]\nport = 0\n')
    with subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "--config", str(config), "serve"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("serving the API on http://127.0.0.1:"), line
            url = line.split()[-1]
            with httpx.Client(base_url=url, headers={"X-API-Key": key}) as client:
                assert client.get("/healthz").json()["status"] == "ok"
                feed = client.get("/changes").json()
                assert {c["kind"] for c in feed["items"]} >= {"step_therapy_changed"}
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()
