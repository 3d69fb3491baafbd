"""Every list the API serves is a page read as a page (issue 16, finding 8): the routes hand
their `limit` (plus one, to learn whether more follow) and cursor to the store, and no store
list query the API or the CLI calls returns more than `MAX_LIST_ROWS` rows whatever it is
asked for. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from api_support import PAYER_KEY, SOURCE, THREE_VERSIONS, Harness, publish_versions, serving

import monitor.api.documents
import monitor.api.keys
import monitor.api.quarantine
import monitor.api.rules
from monitor.store.api_keys import Scope, add_api_key, list_api_keys
from monitor.store.checklists import checklist_versions, find_checklists
from monitor.store.core import Store
from monitor.store.limits import MAX_LIST_ROWS, bounded
from monitor.store.quarantine import list_quarantined
from monitor.store.reads import document_versions, list_documents, reviews_of

DOCUMENT = f"/documents/{SOURCE}/{quote(PAYER_KEY, safe='')}"
EXTRA_KEYS = MAX_LIST_ROWS + 5  # one more than a store list may return, and then some


@pytest.fixture
def api(database_url: str) -> Iterator[Harness]:
    store = Store.open(database_url)
    publish_versions(store, THREE_VERSIONS)
    try:
        with serving(store) as harness:
            yield harness
    finally:
        store.close()


def _many_keys(store: Store) -> None:
    for number in range(EXTRA_KEYS):
        add_api_key(
            store,
            name=f"bulk-{number}",
            prefix=f"bulk{number:06d}",
            key_sha256=f"{number:064x}",
            scope=Scope.READ,
        )


def test_no_store_list_returns_more_than_the_maximum(api: Harness) -> None:
    _many_keys(api.store)
    assert len(list_api_keys(api.store, limit=10**9)) == MAX_LIST_ROWS
    assert len(list_api_keys(api.store)) == MAX_LIST_ROWS  # the default is the maximum too
    # The rest is a cursor away, nothing skipped.
    first = list_api_keys(api.store)
    rest = list_api_keys(api.store, after=first[-1].id, limit=10**9)
    assert len(first) + len(rest) == EXTRA_KEYS + 3  # and the harness's three keys
    assert {k.id for k in first}.isdisjoint(k.id for k in rest)
    with pytest.raises(ValueError, match="limit must be at least 1"):
        bounded(0)
    # Each list query keeps to the limit it is given.
    store = api.store
    assert len(list_documents(store, source=None, after=None, limit=1)) == 1
    found = document_versions(store, SOURCE, PAYER_KEY, limit=2)
    assert found is not None and len(found[1]) == 2
    (checklist, *_) = find_checklists(store, limit=1)
    assert len(checklist_versions(store, checklist.id, limit=1)) == 1
    assert list_quarantined(store, limit=1) == []
    assert reviews_of(store, 1, limit=1) == []


def test_the_keys_list_is_paged_and_walks_every_key_once(api: Harness) -> None:
    _many_keys(api.store)
    seen: list[int] = []
    with api.client("admin") as admin:
        assert admin.get("/keys", params={"limit": 501}).status_code == 422
        after = 0
        while True:
            page = admin.get("/keys", params={"limit": 500, "after": after}).json()
            assert len(page) <= 500
            if not page:
                break
            seen.extend(k["id"] for k in page)
            after = page[-1]["id"]
    assert len(seen) == len(set(seen)) == EXTRA_KEYS + 3
    assert seen == sorted(seen)


def _walk(client: Any, path: str, items: str | None, cursor: Callable[[Any], int | None]) -> list:
    """Every item of a paged list, one item per page."""
    out: list[Any] = []
    after = 0
    while True:
        body = client.get(path, params={"limit": 1, "after": after}).json()
        page = body if items is None else body[items]
        assert len(page) <= 1
        out.extend(page)
        following = cursor(body)
        if following is None:
            return out
        after = following


def test_one_item_pages_walk_every_list(api: Harness) -> None:
    with api.client("review") as client:
        versions = _walk(client, DOCUMENT, "versions", lambda body: body["next"])
        assert [v["version_number"] for v in versions] == [1, 2, 3]
        checklists = _walk(client, "/checklists", "items", lambda body: body["next"])
        assert checklists and len({c["id"] for c in checklists}) == len(checklists)
        numbers = _walk(
            client,
            f"/checklists/{checklists[0]['id']}/versions",
            "versions",
            lambda body: body["next"],
        )
        assert [v["number"] for v in numbers] == list(range(1, len(numbers) + 1))
        held = client.get("/quarantine", params={"status": "all", "limit": 1})
        assert held.status_code == 200 and held.json() == []
        assert client.get("/checklists/999999/versions").status_code == 404


@pytest.mark.parametrize(
    ("module", "name", "path"),
    [
        (monitor.api.documents, "document_versions", DOCUMENT),
        (monitor.api.rules, "find_checklists", "/checklists"),
        (monitor.api.rules, "checklist_versions", "/checklists/{id}/versions"),
        (monitor.api.quarantine, "list_quarantined", "/quarantine?status=all"),
        (monitor.api.keys, "list_api_keys", "/keys"),
    ],
)
def test_routes_ask_the_store_for_their_page_only(
    api: Harness, monkeypatch: pytest.MonkeyPatch, module: Any, name: str, path: str
) -> None:
    asked: list[tuple[int, int]] = []
    real = getattr(module, name)

    def recording(*args: Any, **kwargs: Any) -> Any:
        asked.append((kwargs["after"], kwargs["limit"]))
        return real(*args, **kwargs)

    checklist = find_checklists(api.store)[0].id
    monkeypatch.setattr(module, name, recording)
    url = path.format(id=checklist)
    separator = "&" if "?" in url else "?"
    with api.client("admin") as client:
        answer = client.get(f"{url}{separator}limit=7&after=0")
    assert answer.status_code == 200, answer.text
    (after, limit), *_ = asked
    assert after == 0 and limit in (7, 8)  # the page, or the page and one to see if more follow
