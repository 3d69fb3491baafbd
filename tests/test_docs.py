"""Documentation checked against the code (Datasette-style), so it cannot drift."""

from __future__ import annotations

import dataclasses
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
    ("quarantine", QuarantineConfig),
    *((f"sources.{kind}", sk.options) for kind, sk in SOURCE_KINDS.items()),
]
ARRAY_TABLES = {"recipients", "webhooks"}  # [[name]]: several of them


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
    known |= {("sources", k) for k in ("name", "kind", "schedule", "enabled")}
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
