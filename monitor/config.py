"""The TOML configuration: typed and validated when it loads.

Read from ``--config PATH`` or ``$POLICY_MONITOR_CONFIG``; with neither, the defaults below apply
(a SQLite file in the working directory and the real CMS Coverage API). Every error is a
`ConfigError` naming the file, the key and the allowed keys or values.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.errors import ConfigError
from monitor.logs import register_secret_env_vars, register_url_secrets
from monitor.settings import build
from monitor.wording import DEFAULT_NOTICE_DAYS
from sources import SOURCE_KINDS, SourceKind
from sources.base import check

ENV_VAR = "POLICY_MONITOR_CONFIG"
_INTERVAL = re.compile(r"^every\s+(\d+)\s*(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# The digest's and the source kinds' default schedules, valid by construction
# (tests/test_config.py parses each with APScheduler): reading a config that uses them loads no
# scheduler (and no asyncio).
DEFAULT_DIGEST_SCHEDULE = "0 7 * * *"
_KNOWN_GOOD = frozenset(
    [DEFAULT_DIGEST_SCHEDULE, *(kind.default_schedule for kind in SOURCE_KINDS.values())]
)


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
        if schedule.expression in _KNOWN_GOOD:
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
    # `policy-monitor run` serves the API too; false leaves that to `policy-monitor serve`.
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    # Where readers reach the API: the base of the change-page links in emails.
    public_url: str = "http://127.0.0.1:8080"
    # Environment variable holding the secret that signs those links (at least 32 bytes).
    link_secret_env: str = "POLICY_MONITOR_LINK_SECRET"
    # Without that variable: a secret generated into this file (0600) on first use. Empty:
    # beside a SQLite database file, else "policy-monitor.link-secret" (`parse_config`).
    link_secret_file: str = ""
    # A signed link is valid this long, and no link claiming to be valid longer is accepted.
    link_lifetime_days: int = 90
    # Requests larger than these are refused (413, 431) before any key is checked.
    max_body_bytes: int = 1_048_576
    max_header_bytes: int = 65_536

    def validate(self) -> None:
        check(0 <= self.port <= 65535, f"port {self.port} is not a TCP port")
        check(1 <= self.link_lifetime_days <= 3650, "link_lifetime_days must be 1-3650")
        check(self.max_body_bytes >= 1024, "max_body_bytes must be at least 1024")
        check(self.max_header_bytes >= 4096, "max_header_bytes must be at least 4096")
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
    # A PEM file of CAs to trust for starttls/tls (a private relay's own CA); empty: the system's.
    ca_file: str = ""
    # AUTH sends the password; over a connection without TLS anyone on the path reads it.
    allow_plaintext_auth: bool = False

    def validate(self) -> None:
        check(
            self.security in {"none", "starttls", "tls"},
            f"security {self.security!r} must be one of none, starttls, tls",
        )
        check(
            not self.username or self.security != "none" or self.allow_plaintext_auth,
            'username is set but security is "none": the SMTP password would cross the '
            'network in clear text; set security = "starttls" or "tls" (or, on a trusted '
            "link only, allow_plaintext_auth = true)",
        )
        check(0 < self.port <= 65535, f"port {self.port} is not a TCP port")
        check(self.timeout_seconds > 0, "timeout_seconds must be positive")
        check("@" in self.from_address, f"from_address {self.from_address!r} is not an address")
        for address in self.recipients:
            check("@" in address, f"recipient {address!r} is not an email address")


SEVERITY_NAMES = ("low", "medium", "high")  # what may be announced; `noise` never is


@dataclass(frozen=True, kw_only=True)
class ChangeFilters:
    """Which changes a recipient profile or webhook wants. Empty lists match everything;
    `payers` and `contractors` are alternatives (a document has one or the other)."""

    sources: tuple[str, ...] = ()
    payers: tuple[str, ...] = ()
    contractors: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()  # "L40.0" exact, "L40*" a prefix
    drugs: tuple[str, ...] = ()
    min_severity: str = "low"

    def validate(self) -> None:
        check(
            self.min_severity in SEVERITY_NAMES,
            f"min_severity {self.min_severity!r} must be one of {', '.join(SEVERITY_NAMES)}",
        )
        for code in self.codes:
            check(
                bool(code.rstrip("*")) and "*" not in code.rstrip("*"),
                f"code {code!r} must be a code or a prefix ending in '*'",
            )


@dataclass(frozen=True, kw_only=True)
class RecipientProfile(ChangeFilters):
    """A group of addresses with the same filters (``[[recipients]]``)."""

    name: str
    addresses: tuple[str, ...]
    digest: bool = True
    alerts: bool = True

    def validate(self) -> None:
        super().validate()
        check(bool(re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", self.name)), f"bad name {self.name!r}")
        check(bool(self.addresses), "addresses must list at least one address")
        for address in self.addresses:
            check(
                "@" in address and not any(c in address for c in "\r\n,<> "),
                f"address {address!r} is not an email address",
            )


@dataclass(frozen=True, kw_only=True)
class WebhookConfig(ChangeFilters):
    """A system that receives change batches as signed JSON POSTs (``[[webhooks]]``)."""

    name: str
    url: str
    secret_env: str = "POLICY_MONITOR_WEBHOOK_SECRET"
    timeout_seconds: float = 10.0

    def validate(self) -> None:
        super().validate()
        check(bool(re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", self.name)), f"bad name {self.name!r}")
        check(
            self.url.startswith(("http://", "https://")),
            f"url {self.url!r} must be an http:// or https:// URL",
        )
        check(self.timeout_seconds > 0, "timeout_seconds must be positive")


_APPRISE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,30}://\S+")


@dataclass(frozen=True, kw_only=True)
class NotifierConfig(ChangeFilters):
    """A chat or push service reached through Apprise (``[[notifiers]]``): any Apprise URL,
    ``slack://…``, ``msteams://…``, ``json://host/path`` … The URL usually holds a token, so it
    is never logged or stored: messages name the notifier."""

    name: str
    url: str

    def validate(self) -> None:
        super().validate()
        check(bool(re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", self.name)), f"bad name {self.name!r}")
        # The URL itself is not quoted: it holds the service's token.
        check(
            bool(_APPRISE_URL.fullmatch(self.url)),
            "url must be an Apprise URL, scheme://… (e.g. slack://, msteams://, json://)",
        )


@dataclass(frozen=True, kw_only=True)
class NotificationsConfig:
    """Digests, alerts, webhooks and source-health alerts (the outbox sender)."""

    enabled: bool = True
    digest_schedule: str = DEFAULT_DIGEST_SCHEDULE
    send_empty_digest: bool = False
    alert_min_severity: str = "high"
    alert_window_seconds: int = 60
    operators_profile: str = "operators"
    failing_runs_threshold: int = 3
    poll_seconds: float = 10.0
    max_attempts: int = 10
    backoff_seconds: float = 30.0
    max_backoff_seconds: float = 3600.0
    lease_seconds: float = 300.0
    digest_max_changes: int = 200

    def validate(self) -> None:
        try:
            Schedule.parse(self.digest_schedule)
        except ValueError as exc:
            raise ValueError(f"digest_schedule: {exc}") from exc
        check(
            self.alert_min_severity in SEVERITY_NAMES,
            f"alert_min_severity {self.alert_min_severity!r} must be one of "
            f"{', '.join(SEVERITY_NAMES)}",
        )
        check(self.alert_window_seconds >= 0, "alert_window_seconds must not be negative")
        check(self.failing_runs_threshold >= 1, "failing_runs_threshold must be at least 1")
        check(self.poll_seconds > 0, "poll_seconds must be positive")
        check(self.max_attempts >= 1, "max_attempts must be at least 1")
        check(0 < self.backoff_seconds <= self.max_backoff_seconds, "need 0 < backoff <= max")
        check(self.lease_seconds > 0, "lease_seconds must be positive")
        check(self.digest_max_changes >= 1, "digest_max_changes must be at least 1")


@dataclass(frozen=True, kw_only=True)
class SchedulerConfig:
    """How `policy-monitor run` schedules source runs (the same for every source)."""

    # Spreads the runs of many instances and sources, so a fleet restarted together does not
    # hit one payer site at the same second.
    jitter_seconds: int = 60
    # A run missed by less than this (daemon busy, host suspended) still happens, once.
    misfire_grace_seconds: int = 3600
    max_concurrent_runs: int = 4
    # On SIGTERM/SIGINT: how long running sources may take to finish before the process exits.
    shutdown_grace_seconds: float = 60.0

    def validate(self) -> None:
        check(self.jitter_seconds >= 0, "jitter_seconds must not be negative")
        check(self.misfire_grace_seconds >= 1, "misfire_grace_seconds must be at least 1")
        check(self.max_concurrent_runs >= 1, "max_concurrent_runs must be at least 1")
        check(self.shutdown_grace_seconds >= 0, "shutdown_grace_seconds must not be negative")


@dataclass(frozen=True, kw_only=True)
class QuarantineConfig:
    """When a new version looks broken (it drops most of what its predecessor said) it is held
    for a reviewer instead of being published (`monitor.pipeline.quarantine`)."""

    enabled: bool = True
    # More than this share of the previous version's codes, or of its other criteria, gone.
    max_dropped_share: float = 0.5
    # A document with fewer codes (or criteria items) than this is not judged on that count:
    # dropping 1 of 2 codes is an ordinary edit, not a broken page.
    min_items: int = 5

    def validate(self) -> None:
        check(0 < self.max_dropped_share <= 1, "max_dropped_share must be in (0, 1]")
        check(self.min_items >= 1, "min_items must be at least 1")


@dataclass(frozen=True, kw_only=True)
class SourceConfig:
    name: str
    kind: str
    schedule: Schedule
    enabled: bool
    options: Any  # the kind's own options dataclass
    # A change taking effect sooner than this after it was first seen is flagged short_notice.
    notice_days: int = DEFAULT_NOTICE_DAYS

    @property
    def source_kind(self) -> SourceKind:
        return SOURCE_KINDS[self.kind]


@dataclass(frozen=True, kw_only=True)
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    email: EmailConfig = field(default_factory=EmailConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    sources: tuple[SourceConfig, ...] = ()
    notifications: NotificationsConfig = field(default_factory=NotificationsConfig)
    recipients: tuple[RecipientProfile, ...] = ()
    webhooks: tuple[WebhookConfig, ...] = ()
    notifiers: tuple[NotifierConfig, ...] = ()
    quarantine: QuarantineConfig = field(default_factory=QuarantineConfig)
    path: Path | None = None

    def notice_days(self) -> dict[str, int]:
        """Each configured source's `notice_days` by name (others get DEFAULT_NOTICE_DAYS)."""
        return {s.name: s.notice_days for s in self.sources}

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


_SOURCE_COMMON = frozenset({"name", "kind", "schedule", "enabled", "notice_days"})
MAX_NOTICE_DAYS = 3650
_TOP_LEVEL = {
    "database",
    "api",
    "email",
    "scheduler",
    "sources",
    "notifications",
    "recipients",
    "webhooks",
    "notifiers",
    "quarantine",
}


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
    notice_days = table.get("notice_days", DEFAULT_NOTICE_DAYS)
    if (
        not isinstance(notice_days, int)
        or isinstance(notice_days, bool)
        or not 0 <= notice_days <= MAX_NOTICE_DAYS
    ):
        raise ConfigError(
            f"expected a whole number of days from 0 to {MAX_NOTICE_DAYS}, got {notice_days!r}",
            path=path,
            key=f"{prefix}.notice_days",
        )
    try:
        schedule = Schedule.parse(schedule_text)
    except ValueError as exc:
        raise ConfigError(str(exc), path=path, key=f"{prefix}.schedule") from exc
    return SourceConfig(
        name=name,
        kind=kind,
        schedule=schedule,
        enabled=enabled,
        options=options,
        notice_days=notice_days,
    )


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
    database = build(DatabaseConfig, data.get("database", {}), path=path, prefix="database")
    config = Config(
        database=database,
        api=_with_link_secret_file(
            build(ApiConfig, data.get("api", {}), path=path, prefix="api"), database
        ),
        email=build(EmailConfig, data.get("email", {}), path=path, prefix="email"),
        scheduler=build(SchedulerConfig, data.get("scheduler", {}), path=path, prefix="scheduler"),
        sources=sources,
        **_notification_sections(data, path),
        quarantine=build(
            QuarantineConfig, data.get("quarantine", {}), path=path, prefix="quarantine"
        ),
        path=path,
    )
    # Whatever the variables are called, their values never reach a log line.
    register_secret_env_vars(
        [config.email.password_env, config.api.link_secret_env]
        + [hook.secret_env for hook in config.webhooks]
    )
    for notifier in config.notifiers:
        register_url_secrets(notifier.url)
    return config


DEFAULT_LINK_SECRET_FILE = "policy-monitor.link-secret"


def _with_link_secret_file(api: ApiConfig, database: DatabaseConfig) -> ApiConfig:
    """An unset ``link_secret_file`` lives beside the SQLite database file (whose directory
    the service may write), else in the working directory."""
    if api.link_secret_file:
        return api
    chosen = DEFAULT_LINK_SECRET_FILE
    if database.url.startswith("sqlite:///"):
        db_path = database.url.split(":///", 1)[1].split("?", 1)[0]
        if db_path and db_path != ":memory:" and not db_path.startswith("file:"):
            chosen = f"{db_path}.link-secret"
    return dataclasses.replace(api, link_secret_file=chosen)


def _named_tables(data: dict[str, Any], section: str, cls: type[Any], path: Path | None) -> Any:
    """``[[section]]`` tables built as `cls`, each with a unique ``name``."""
    raw = data.get(section, [])
    if not isinstance(raw, list):
        raise ConfigError(f"{section} must be [[{section}]] tables", path=path, key=section)
    built = []
    for index, table in enumerate(raw):
        name = table.get("name") if isinstance(table, dict) else None
        built.append(build(cls, table, path=path, prefix=f"{section}.{name or index}"))
    names = [item.name for item in built]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"name {duplicates[0]!r} is used twice", path=path, key=section)
    return tuple(built)


def _notification_sections(data: dict[str, Any], path: Path | None) -> dict[str, Any]:
    """[notifications], [[recipients]], [[webhooks]] and [[notifiers]], checked together."""
    notifications = build(
        NotificationsConfig, data.get("notifications", {}), path=path, prefix="notifications"
    )
    recipients = _named_tables(data, "recipients", RecipientProfile, path)
    webhooks = _named_tables(data, "webhooks", WebhookConfig, path)
    notifiers = _named_tables(data, "notifiers", NotifierConfig, path)
    # The default operators profile may be absent (no source-health email); a named one not.
    explicit = isinstance(data.get("notifications"), dict) and (
        "operators_profile" in data["notifications"]
    )
    if explicit and notifications.operators_profile not in {r.name for r in recipients}:
        raise ConfigError(
            f"operators_profile {notifications.operators_profile!r} is not a [[recipients]] name",
            path=path,
            key="notifications.operators_profile",
            allowed=[r.name for r in recipients],
        )
    return {
        "notifications": notifications,
        "recipients": recipients,
        "webhooks": webhooks,
        "notifiers": notifiers,
    }


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
