"""The exception tree of Payer Policy Monitor.

    MonitorError                 base of everything this service raises on purpose
    ├── ConfigError              the TOML config is missing, malformed, or has a bad key/value
    ├── StoreError               the database is unreachable, not migrated, or refused a write
    │   └── PublishError         a document version could not be published (rolled back)
    ├── SourceError              a source run failed as a whole
    │   └── FetchError           one HTTP exchange failed after its retries
    │       └── ResponseTooLarge the body exceeded the configured maximum
    └── ParseError               a payload could not be turned into criteria

Library exceptions (httpx, SQLAlchemy, tomllib, json) are translated into these at the
boundary, so callers catch one family. Messages are built from fields, not passed in whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class MonitorError(Exception):
    """Base class of every error this service raises on purpose."""


class ConfigError(MonitorError):
    """The configuration is invalid: names the file, the key and what is allowed."""

    def __init__(
        self,
        problem: str,
        *,
        path: Path | str | None = None,
        key: str | None = None,
        allowed: Iterable[str] | None = None,
    ) -> None:
        self.problem = problem
        self.path = str(path) if path is not None else None
        self.key = key
        self.allowed = sorted(allowed) if allowed is not None else None
        parts = []
        if self.path:
            parts.append(self.path)
        if key:
            parts.append(f"[{key}]")
        where = " ".join(parts)
        message = f"{where}: {problem}" if where else problem
        if self.allowed:
            message += f" (allowed: {', '.join(self.allowed)})"
        super().__init__(message)


class StoreError(MonitorError):
    """The database could not be used."""


class PublishError(StoreError):
    """A document version could not be published; nothing of it was written."""

    def __init__(self, document_id: str, version: str, reason: str) -> None:
        self.document_id = document_id
        self.version = version
        self.reason = reason
        super().__init__(f"could not publish {document_id} version {version}: {reason}")


class SourceError(MonitorError):
    """A source run failed as a whole (for example its listing could not be read)."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"source {source!r}: {reason}")


class FetchError(SourceError):
    """One HTTP exchange failed after its retries."""

    def __init__(self, source: str, url: str, reason: str, *, status: int | None = None) -> None:
        self.url = url
        self.status = status
        detail = f"{reason} (HTTP {status})" if status is not None else reason
        super().__init__(source, f"GET {url}: {detail}")


class ResponseTooLarge(FetchError):
    """The response body exceeded the configured maximum size."""

    def __init__(self, source: str, url: str, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        super().__init__(source, url, f"response larger than {limit_bytes} bytes")


class ParseError(MonitorError):
    """A payload could not be turned into criteria."""

    def __init__(self, document_id: str, reason: str) -> None:
        self.document_id = document_id
        self.reason = reason
        super().__init__(f"cannot parse {document_id}: {reason}")
