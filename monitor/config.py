"""The TOML configuration: typed and validated when it loads.

Read from ``--config PATH`` or ``$POLICY_MONITOR_CONFIG``; with neither, the defaults below apply
(a SQLite file in the working directory and the real CMS Coverage API). Every error is a
`ConfigError` naming the file, the key and the allowed keys or values.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.errors import ConfigError
from monitor.settings import build, check
from sources import SOURCE_KINDS, SourceKind

ENV_VAR = "POLICY_MONITOR_CONFIG"
_INTERVAL = re.compile(r"^every\s+(\d+)\s*(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """When a source runs: a five-field cron expression (UTC) or ``every N{s,m,h,d}``."""

    expression: str

    @property
    def interval_seconds(self) -> int | None:
        match = _INTERVAL.match(self.expression.strip())
        return int(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else None

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        schedule = cls(expression=expression.strip())
        if schedule.interval_seconds is not None:
            check(schedule.interval_seconds > 0, "schedule interval must be positive")
            return schedule
        from apscheduler.triggers.cron import CronTrigger  # imported late: only to validate

        try:
            CronTrigger.from_crontab(schedule.expression, timezone="UTC")
        except ValueError as exc:
            raise ValueError(
                f"schedule {expression!r} is neither a 5-field cron expression nor "
                f"'every N{{s,m,h,d}}': {exc}"
            ) from exc
        return schedule


@dataclass(frozen=True, kw_only=True)
class DatabaseConfig:
    url: str = "sqlite:///policy-monitor.db"

    def validate(self) -> None:
        check(
            self.url.startswith(("sqlite", "postgresql")),
            f"url {self.url!r} must be a sqlite:/// or postgresql:// URL",
        )


@dataclass(frozen=True, kw_only=True)
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    # Where readers reach the API: the base of the change-page links in emails.
    public_url: str = "http://127.0.0.1:8080"
    # Environment variable holding the secret that signs those links.
    link_secret_env: str = "POLICY_MONITOR_LINK_SECRET"

    def validate(self) -> None:
        check(0 <= self.port <= 65535, f"port {self.port} is not a TCP port")
        check(
            self.public_url.startswith(("http://", "https://")),
            f"public_url {self.public_url!r} must be an http:// or https:// URL",
        )


@dataclass(frozen=True, kw_only=True)
class EmailConfig:
    host: str = "localhost"
    port: int = 25
    from_address: str = "policy-monitor@localhost"
    recipients: tuple[str, ...] = ()
    security: str = "none"  # none, starttls, tls
    username: str = ""
    password_env: str = "POLICY_MONITOR_SMTP_PASSWORD"
    timeout_seconds: float = 30.0

    def validate(self) -> None:
        check(
            self.security in {"none", "starttls", "tls"},
            f"security {self.security!r} must be one of none, starttls, tls",
        )
        check(0 < self.port <= 65535, f"port {self.port} is not a TCP port")
        for address in self.recipients:
            check("@" in address, f"recipient {address!r} is not an email address")


@dataclass(frozen=True, kw_only=True)
class SourceConfig:
    name: str
    kind: str
    schedule: Schedule
    enabled: bool
    options: Any  # the kind's own options dataclass

    @property
    def source_kind(self) -> SourceKind:
        return SOURCE_KINDS[self.kind]


@dataclass(frozen=True, kw_only=True)
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    email: EmailConfig = field(default_factory=EmailConfig)
    sources: tuple[SourceConfig, ...] = ()
    path: Path | None = None

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise ConfigError(
            f"no source named {name!r}",
            path=self.path,
            key="sources",
            allowed=[s.name for s in self.sources],
        )


_SOURCE_COMMON = frozenset({"name", "kind", "schedule", "enabled"})
_TOP_LEVEL = {"database", "api", "email", "sources"}


def _source(table: Any, index: int, path: Path | None) -> SourceConfig:
    prefix = f"sources[{index}]"
    if not isinstance(table, dict):
        raise ConfigError("expected a [[sources]] table", path=path, key=prefix)
    name = table.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", name):
        raise ConfigError(
            f"name {name!r} must be 1-100 letters, digits, '_', '.' or '-'",
            path=path,
            key=f"{prefix}.name",
        )
    prefix = f"sources.{name}"
    kind = table.get("kind")
    if kind not in SOURCE_KINDS:
        raise ConfigError(
            f"unknown source kind {kind!r}", path=path, key=f"{prefix}.kind", allowed=SOURCE_KINDS
        )
    source_kind = SOURCE_KINDS[kind]
    options_table = {k: v for k, v in table.items() if k not in _SOURCE_COMMON}
    options: Any = build(
        source_kind.options, options_table, path=path, prefix=prefix, extra_allowed=_SOURCE_COMMON
    )
    schedule_text = table.get("schedule", source_kind.default_schedule)
    enabled = table.get("enabled", True)
    if not isinstance(schedule_text, str):
        raise ConfigError(
            f"expected a string, got {schedule_text!r}", path=path, key=f"{prefix}.schedule"
        )
    if not isinstance(enabled, bool):
        raise ConfigError(
            f"expected true or false, got {enabled!r}", path=path, key=f"{prefix}.enabled"
        )
    try:
        schedule = Schedule.parse(schedule_text)
    except ValueError as exc:
        raise ConfigError(str(exc), path=path, key=f"{prefix}.schedule") from exc
    return SourceConfig(name=name, kind=kind, schedule=schedule, enabled=enabled, options=options)


def default_sources() -> tuple[SourceConfig, ...]:
    """With no [[sources]] configured: watch the real CMS Coverage API."""
    return (_source({"name": "cms", "kind": "cms_coverage"}, 0, None),)


def parse_config(data: dict[str, Any], *, path: Path | None = None) -> Config:
    unknown = sorted(set(data) - _TOP_LEVEL)
    if unknown:
        raise ConfigError(
            f"unknown section {unknown[0]!r}", path=path, key=unknown[0], allowed=_TOP_LEVEL
        )
    raw_sources = data.get("sources")
    if raw_sources is None:
        sources = default_sources()
    elif not isinstance(raw_sources, list):
        raise ConfigError("sources must be [[sources]] tables", path=path, key="sources")
    else:
        sources = tuple(_source(t, i, path) for i, t in enumerate(raw_sources))
    names = [s.name for s in sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"source name {duplicates[0]!r} is used twice", path=path, key="sources")
    return Config(
        database=build(DatabaseConfig, data.get("database", {}), path=path, prefix="database"),
        api=build(ApiConfig, data.get("api", {}), path=path, prefix="api"),
        email=build(EmailConfig, data.get("email", {}), path=path, prefix="email"),
        sources=sources,
        path=path,
    )


def load_config(path: str | Path | None = None) -> Config:
    """Load from `path`, else $POLICY_MONITOR_CONFIG, else the built-in defaults."""
    if path is None:
        path = os.environ.get(ENV_VAR) or None
    if path is None:
        return parse_config({})
    config_path = Path(path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file: {exc.strerror or exc}", path=config_path
        ) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=config_path) from exc
    return parse_config(data, path=config_path)
