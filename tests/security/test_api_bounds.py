"""Bounded and well-formed API answers (issue 16, findings 4 and 8): dates far off are 422 not
500, every list has a maximum page, the rule query leaves the event loop, the change page's
word alignment has a work cap, the Markdown export is escaped, the HTML export has CSP and
nosniff, and the admin scope guards key management."""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from api_support import PAYER_KEY, SOURCE, THREE_VERSIONS, Harness, publish_versions, serving

import monitor.api.rules
from monitor.api import change_page
from monitor.report import render_checklist
from monitor.store.checklists import find_checklists
from monitor.store.core import Store

MAX_ALIGNED_PAIRS = 2_000_000  # what the change page may hand difflib for one alignment
DOCUMENT = f"/documents/{SOURCE}/{quote(PAYER_KEY, safe='')}"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    path: Path = tmp_path_factory.mktemp("bounds") / "monitor.store.db"
    store = Store.open(f"sqlite:///{path}")
    publish_versions(store, THREE_VERSIONS)
    try:
        with serving(store) as harness:
            yield harness
    finally:
        store.close()


def _checklist_id(api: Harness) -> int:
    with api.client() as client:
        return int(client.get("/checklists").json()["items"][0]["id"])


@pytest.mark.parametrize(
    "params",
    [
        {"known_at": "0001-01-01T00:00:00"},
        {"known_at": "0001-01-01T00:00:00+14:00"},
        {"known_at": "9999-12-31T23:59:59"},
        {"known_at": "9999-12-31T23:59:59-12:00"},
        {"as_of": "0001-01-01"},
        {"as_of": "9999-12-31"},
    ],
)
def test_dates_near_the_ends_of_the_calendar_are_422_not_500(
    api: Harness, params: dict[str, str]
) -> None:
    checklist = _checklist_id(api)
    with api.client() as client:
        for path in ("/rules", "/checklists", f"/checklists/{checklist}"):
            answer = client.get(path, params=params)
            assert answer.status_code == 422, (path, params, answer.status_code)


@pytest.mark.parametrize(
    "path", ["/checklists", "/quarantine?status=all", "/checklists/{id}/versions", "{doc}"]
)
def test_every_list_has_a_maximum_page(api: Harness, path: str) -> None:
    url = path.format(id=_checklist_id(api), doc=DOCUMENT)
    separator = "&" if "?" in url else "?"
    with api.client("review") as client:
        assert client.get(f"{url}{separator}limit=501").status_code == 422
        assert client.get(f"{url}{separator}limit=500").status_code == 200


def test_list_pages_carry_a_cursor(api: Harness) -> None:
    checklist = _checklist_id(api)
    with api.client() as client:
        first = client.get(f"/checklists/{checklist}/versions", params={"limit": 1}).json()
        assert len(first["versions"]) == 1 and first["next"] == first["versions"][0]["number"]
        rest = client.get(
            f"/checklists/{checklist}/versions", params={"after": first["next"]}
        ).json()
        assert rest["versions"] and rest["versions"][0]["number"] > first["next"]
        document = client.get(DOCUMENT, params={"limit": 2}).json()
        assert len(document["versions"]) == 2 and document["next"] is not None


def test_the_rule_query_runs_off_the_event_loop(
    api: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_loop: list[bool] = []
    real = monitor.api.rules.query_rule_rows

    def recording(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return real(*args, **kwargs)

    monkeypatch.setattr(monitor.api.rules, "query_rule_rows", recording)
    with api.client() as client:
        assert client.get("/rules").status_code == 200
    assert on_loop == [False]


def test_the_word_diff_work_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    real = difflib.SequenceMatcher

    def counting(isjunk: Any, a: Any, b: Any, autojunk: bool = True) -> Any:
        sizes.append(len(a) * len(b))
        return real(isjunk, a, b, autojunk=autojunk)

    monkeypatch.setattr(change_page.difflib, "SequenceMatcher", counting)
    # An adversarial pair: 5,000 words each, no two alike in order (1.1 s of CPU before).
    old = " ".join(f"w{i}" for i in range(5000))
    new = " ".join(f"w{(i * 7919) % 5000}" for i in range(5000))
    left, right = change_page.word_diff(old, new)
    assert "".join(s.text for s in left) == old and "".join(s.text for s in right) == new
    assert all(size <= MAX_ALIGNED_PAIRS for size in sizes), max(sizes)
    # Ordinary sentences are still aligned word by word.
    left, _ = change_page.word_diff("a minimum of 8 weeks", "a minimum of 12 weeks")
    assert [s.op for s in left if s.op != "equal"] == ["delete"]


HOSTILE = (
    "Tried [a steroid](javascript:alert(1)) <img src=x onerror=alert(1)> for *8* weeks\n"
    "# Forged heading\n1. Forged item `code`"
)


def test_the_markdown_export_is_escaped(api: Harness) -> None:
    from monitor.api.exports import markdown_safe

    (record, *_rest) = find_checklists(api.store)
    assert record.checklist is not None
    items = tuple(dataclasses.replace(item, text=HOSTILE) for item in record.checklist.items)
    hostile = dataclasses.replace(
        record, checklist=dataclasses.replace(record.checklist, items=items, label=HOSTILE)
    )
    markdown = render_checklist(markdown_safe(hostile), "markdown")
    # Only escaped: \[ \] \` render as the characters, and &lt; as "<", never as markup.
    assert not re.search(r"(?<!\\)\]\(javascript:", markdown) and "<img" not in markdown
    assert not re.search(r"(?<!\\)`code", markdown) and "\\[a steroid\\]" in markdown
    lines = markdown.splitlines()
    assert not any(line.startswith(("# Forged", "1. Forged")) for line in lines)
    assert sum(line.startswith("# ") for line in lines) == 1  # the export's own title


def test_the_checklist_exports_have_csp_and_nosniff(api: Harness) -> None:
    checklist = _checklist_id(api)
    with api.client() as client:
        html = client.get(f"/checklists/{checklist}", params={"format": "html"})
        markdown = client.get(f"/checklists/{checklist}", params={"format": "markdown"})
    assert "default-src 'none'" in html.headers["content-security-policy"]
    assert html.headers["x-content-type-options"] == "nosniff"
    assert markdown.headers["x-content-type-options"] == "nosniff"


def test_key_management_needs_the_admin_scope(api: Harness) -> None:
    from monitor.api.auth import create_api_key

    victim = create_api_key(api.store, "to-revoke", "read")
    with api.client("review") as reviewer:
        assert reviewer.get("/keys").status_code == 403
        assert reviewer.post("/keys/to-revoke/revoke").status_code == 403
    with api.client(scope=None) as anonymous:
        assert anonymous.get("/keys").status_code == 401
    with api.client("admin") as admin:
        listed = admin.get("/keys").json()
        assert "to-revoke" in {k["name"] for k in listed}
        assert all(
            set(k) == {"id", "name", "prefix", "scope", "created_at", "revoked_at"} for k in listed
        )
        assert admin.post("/keys/to-revoke/revoke").status_code == 200
        assert admin.post("/keys/to-revoke/revoke").status_code == 404
    with api.client(scope=None, **{"X-API-Key": victim}) as revoked:
        assert revoked.get("/changes").status_code == 401
