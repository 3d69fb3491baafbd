"""API keys and scopes: 401 without a valid key, 403 with too small a scope, revocation, the
apikey commands, hashed storage, and keys never written to logs."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import THREE_VERSIONS, Harness, publish_versions, serving
from sqlalchemy import select
from sqlite_support import migrated_sqlite

from monitor.api.auth import ApiKeyError, create_api_key, require_scope, revoke_api_key
from monitor.cli.main import main
from monitor.config import parse_config
from monitor.links import change_page_url
from monitor.store.api_keys import Scope, list_api_keys
from monitor.store.core import Store
from monitor.store.models.api import ApiKey

REVIEW = {"reviewer": "Dana", "note": "seen"}


@pytest.fixture
def store(tmp_path: Path, migrated_sqlite_template: Path) -> Iterator[Store]:
    opened = Store.open(migrated_sqlite(migrated_sqlite_template, tmp_path / "monitor.store.db"))
    yield opened
    opened.close()


@pytest.fixture
def api(store: Store) -> Iterator[Harness]:
    publish_versions(store, THREE_VERSIONS[:2])
    with serving(store) as harness:
        yield harness


def test_no_key_or_a_bad_key_is_401_with_www_authenticate(api: Harness) -> None:
    real = api.keys["admin"]
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    with api.client(scope=None) as client:
        for headers in (
            {},
            {"Authorization": "Bearer nonsense"},
            {"Authorization": f"Basic {real}"},  # not a bearer credential
            {"X-API-Key": forged},  # right prefix, wrong secret
            {"X-API-Key": "ppm_000000000000_" + "a" * 43},  # unknown prefix
        ):
            response = client.get("/changes", headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert real not in response.text
        assert client.get("/healthz").status_code == 200  # the one open endpoint
        assert client.get("/openapi.json").status_code == 200


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_scopes_are_ordered_read_review_admin(api: Harness, header: str) -> None:
    def call(scope: str, method: str, path: str) -> int:
        value = api.keys[scope] if header == "X-API-Key" else f"Bearer {api.keys[scope]}"
        with api.client(scope=None, **{header: value}) as client:
            if method == "POST":
                return client.post(path, json=REVIEW).status_code
            return client.get(path).status_code

    change = api.store.changes()[0].id
    for scope in ("read", "review", "admin"):
        assert call(scope, "GET", "/changes") == 200
        assert call(scope, "GET", "/metrics") == 200
        assert call(scope, "GET", f"/changes/{change}/page") == 200
    assert call("read", "POST", f"/changes/{change}/review") == 403
    assert call("review", "POST", f"/changes/{change}/review") == 201
    assert call("admin", "POST", f"/changes/{change}/review") == 201


def test_a_forbidden_answer_names_the_scopes(api: Harness) -> None:
    change = api.store.changes()[0].id
    with api.client("read") as client:
        response = client.post(f"/changes/{change}/review", json=REVIEW)
    assert response.status_code == 403
    assert "'read'" in response.json()["detail"] and "'review'" in response.json()["detail"]


def test_a_revoked_key_is_refused_at_once(api: Harness) -> None:
    key = create_api_key(api.store, "scrubber", "read")
    with api.client(scope=None, **{"X-API-Key": key}) as client:
        assert client.get("/changes").status_code == 200
        revoked = revoke_api_key(api.store, "scrubber")
        assert revoked.revoked_at is not None
        response = client.get("/changes")
        assert response.status_code == 401 and "revoked" in response.json()["detail"]
    with pytest.raises(ApiKeyError, match="no live API key"):
        revoke_api_key(api.store, "scrubber")
    # The name is free again (key rotation), and the new key works while the old one stays dead.
    rotated = create_api_key(api.store, "scrubber", "read")
    with api.client(scope=None, **{"X-API-Key": rotated}) as client:
        assert client.get("/changes").status_code == 200
    with api.client(scope=None, **{"X-API-Key": key}) as client:
        assert client.get("/changes").status_code == 401


def test_keys_are_stored_as_sha256_and_found_by_prefix(store: Store) -> None:
    key = create_api_key(store, "claims-scrubber", "review")
    assert key.startswith("ppm_") and len(key) == 4 + 12 + 1 + 43
    with store.session() as session:
        row = session.scalars(select(ApiKey).where(ApiKey.name == "claims-scrubber")).one()
        stored = [str(getattr(row, c.key)) for c in ApiKey.__table__.columns]
    assert row.key_sha256 == hashlib.sha256(key.encode()).hexdigest()
    assert key.split("_")[1] == row.prefix
    assert not any(key in value or key.split("_", 2)[2] in value for value in stored)
    assert create_api_key(store, "other", "read") != key


def test_key_creation_refuses_bad_names_scopes_and_duplicate_live_names(store: Store) -> None:
    create_api_key(store, "billing", "read")
    with pytest.raises(ApiKeyError, match="exists already"):
        create_api_key(store, "billing", "admin")
    with pytest.raises(ApiKeyError, match="scope 'owner'"):
        create_api_key(store, "x", "owner")
    with pytest.raises(ApiKeyError, match="must be 1-100"):
        create_api_key(store, "two words", "read")
    with pytest.raises(ValueError):
        require_scope("superuser")
    assert [k.name for k in list_api_keys(store)] == ["billing"]
    assert Scope.ADMIN.includes(Scope.REVIEW) and not Scope.READ.includes(Scope.REVIEW)


def test_apikey_commands_print_the_key_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "cli.db"}"\n')
    base = ["--config", str(config), "apikey"]
    assert main([*base, "create", "--name", "pa-tool", "--scope", "review"]) == 0
    out = capsys.readouterr()
    key = out.out.strip()
    assert key.startswith("ppm_") and "shown only now" in out.err

    assert main([*base, "list"]) == 0
    listing = capsys.readouterr().out
    assert "pa-tool" in listing and "review" in listing and "live" in listing
    assert key not in listing and key.split("_")[1] in listing  # the prefix, not the key

    assert main([*base, "create", "--name", "pa-tool", "--scope", "read"]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main([*base, "revoke", "1"]) == 0  # by id
    assert "revoked API key 'pa-tool'" in capsys.readouterr().out
    assert main([*base, "list"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main([*base, "revoke", "pa-tool"]) == 2
    with pytest.raises(SystemExit):
        main([*base, "create", "--name", "x", "--scope", "root"])


def test_keys_and_link_signatures_never_reach_the_logs(
    api: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = create_api_key(api.store, "logged", "review")
    change = api.store.changes()[0].id
    signed = change_page_url(parse_config({}).api, change)  # the app runs the default config
    path = signed.split("://", 1)[1].split("/", 1)[1]
    signature = signed.rsplit("sig=", 1)[1]
    with api.client(scope=None, **{"X-API-Key": key}) as client:
        assert client.post(f"/changes/{change}/review", json=REVIEW).status_code == 201
        assert client.get("/changes").status_code == 200
    with api.client(scope=None) as anonymous:
        assert anonymous.get(f"/{path}").status_code == 200
        assert anonymous.get("/changes", headers={"X-API-Key": key + "x"}).status_code == 401
    # Everything the service logged (httpx and httpcore are this test's own client).
    records = [r for r in caplog.records if r.name.split(".")[0] not in {"httpx", "httpcore"}]
    logged = " ".join(f"{r.getMessage()} {r.args}" for r in records)
    assert "GET /changes" in logged  # the access log was captured …
    assert key not in logged and key.split("_", 2)[2] not in logged  # … without the key
    assert signature not in logged and "sig=[redacted]" in logged
