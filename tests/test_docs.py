"""Documentation checked against the code (Datasette-style), so it cannot drift."""

from __future__ import annotations

import dataclasses
import importlib
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from monitor import docs
from monitor.config import (
    ApiConfig,
    DatabaseConfig,
    EmailConfig,
    NotificationsConfig,
    NotifierConfig,
    QuarantineConfig,
    RecipientProfile,
    SchedulerConfig,
    WebhookConfig,
    load_config,
)
from sources import SOURCE_KINDS

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "configuration.md"
EXAMPLE = ROOT / "deploy" / "monitor.example.toml"

CONFIG_CLASSES: list[tuple[str, Any]] = [
    ("database", DatabaseConfig),
    ("api", ApiConfig),
    ("email", EmailConfig),
    ("scheduler", SchedulerConfig),
    ("notifications", NotificationsConfig),
    ("recipients", RecipientProfile),
    ("webhooks", WebhookConfig),
    ("notifiers", NotifierConfig),
    ("quarantine", QuarantineConfig),
    *((f"sources.{kind}", sk.options) for kind, sk in SOURCE_KINDS.items()),
]
ARRAY_TABLES = {"recipients", "webhooks", "notifiers"}  # [[name]]: several of them


def _rows(markdown: str) -> dict[tuple[str, str], tuple[str, str, str]]:
    """(section heading, key) -> (type, default, description) from the generated tables."""
    rows: dict[tuple[str, str], tuple[str, str, str]] = {}
    heading = ""
    for line in markdown.splitlines():
        if line.startswith("## "):
            heading = line[3:]
        match = re.fullmatch(r"\| `(\w+)` \| (.+?) \| (.+?) \| (.+) \|", line)
        if match:
            rows[(heading, match.group(1))] = match.group(2, 3, 4)
    return rows


def _heading(section: str) -> str:
    if section.startswith("sources."):
        return f'`[[sources]]` with `kind = "{section.split(".", 1)[1]}"`'
    if section in ARRAY_TABLES:
        return f"`[[{section}]]`"
    return f"`[{section}]`"


def test_committed_reference_is_current() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == docs.configuration_reference(), (
        "docs/configuration.md is out of date: run "
        "`policy-monitor config-reference > docs/configuration.md`"
    )


@pytest.mark.parametrize(("section", "cls"), CONFIG_CLASSES, ids=[s for s, _ in CONFIG_CLASSES])
def test_every_field_is_documented(section: str, cls: Any) -> None:
    rows = _rows(docs.configuration_reference())
    for field in dataclasses.fields(cls):
        assert (section, field.name) in docs.DESCRIPTIONS, (
            f"{section}.{field.name} has no description in monitor/docs.py DESCRIPTIONS"
        )
        assert (_heading(section), field.name) in rows, f"{section}.{field.name} not in the docs"


def test_common_source_keys_are_documented() -> None:
    rows = _rows(docs.configuration_reference())
    for key in ("name", "kind", "schedule", "enabled"):
        assert ("`[[sources]]`", key) in rows


def test_no_stale_descriptions() -> None:
    """A description for a key that no longer exists is drift too."""
    known = {(s, f.name) for s, cls in CONFIG_CLASSES for f in dataclasses.fields(cls)}
    known |= {("sources", k) for k in ("name", "kind", "schedule", "enabled", "notice_days")}
    assert set(docs.DESCRIPTIONS) - known == set()


def test_missing_description_fails_generation() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Undocumented:
        mystery: int = 1

    with pytest.raises(LookupError, match=r"undocumented\.mystery"):
        docs.dataclass_keys("undocumented", Undocumented)


@pytest.mark.parametrize(("section", "cls"), CONFIG_CLASSES, ids=[s for s, _ in CONFIG_CLASSES])
def test_defaults_shown_parse_back(section: str, cls: Any) -> None:
    rows = _rows(docs.configuration_reference())
    for field in dataclasses.fields(cls):
        shown = rows[(_heading(section), field.name)][1]
        if field.default is dataclasses.MISSING:
            assert shown == "*required*"
            continue
        assert shown.startswith("`") and shown.endswith("`"), shown
        literal = shown[1:-1].replace("\\|", "|")
        parsed = tomllib.loads(f"value = {literal}")["value"]
        expected = list(field.default) if isinstance(field.default, tuple) else field.default
        assert parsed == expected, f"{section}.{field.name}: shown {shown}"
        assert type(parsed) is type(expected), f"{section}.{field.name}: shown {shown}"


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    assert {s.kind for s in config.sources} == set(SOURCE_KINDS)


ARCHITECTURE = ROOT / "docs" / "architecture.md"
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_PROJECT_DIRS = "monitor|sources|diffing|notifications|fixtures|tests|bench|docs|deploy"
_CODE_PATH = re.compile(rf"`((?:{_PROJECT_DIRS})/[\w./-]*)`")
_CODE_NAME = re.compile(r"`((?:monitor|sources|diffing|notifications|fixtures)(?:\.\w+)+)`")


def test_architecture_links_point_at_real_files() -> None:
    """Every file or folder docs/architecture.md links to exists (a move must update the page)."""
    targets = [t.split("#", 1)[0] for t in _LINK.findall(ARCHITECTURE.read_text(encoding="utf-8"))]
    local = [t for t in targets if "://" not in t]
    assert len(local) > 30, "docs/architecture.md lost its links"
    missing = [t for t in local if not (ARCHITECTURE.parent / t).exists()]
    assert missing == [], f"docs/architecture.md links to files that are gone: {missing}"


def test_architecture_paths_and_names_exist() -> None:
    """Paths (`monitor/store/`) and dotted names (`sources.base.check`) in code spans exist too."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    paths = _CODE_PATH.findall(text)
    assert paths, "no paths found: has the pattern drifted from the page?"
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert missing == [], f"docs/architecture.md names paths that are gone: {missing}"
    for dotted in _CODE_NAME.findall(text):
        parts = dotted.split(".")
        for split in range(len(parts), 0, -1):
            try:
                obj: Any = importlib.import_module(".".join(parts[:split]))
            except ModuleNotFoundError:
                continue
            for attribute in parts[split:]:
                assert hasattr(obj, attribute), f"docs/architecture.md names {dotted}: not found"
                obj = getattr(obj, attribute)
            break
        else:
            pytest.fail(f"docs/architecture.md names {dotted}: no such module")
