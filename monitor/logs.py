"""Logging set-up: plain text for people, one JSON object per line for log collectors.

Both formats pass through `RedactSecrets`, so no secret reaches a log line even when a library
error message quotes it: the values of the variables the config names (SMTP password, webhook
secrets, link secret, whatever they are called), of every variable whose name says it holds a
secret, and of secrets registered at run time (a generated link secret). The text format
escapes control characters in the message and fields, so a value with a line break (a
reviewer's name) cannot forge a second log line; JSON escapes them by itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable
from typing import Any

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"
_HANDLER_NAME = "policy_monitor"

# Attributes every LogRecord has; anything else on a record came from `extra=`. uvicorn adds
# `color_message` (the message with terminal colour codes) to its records: not a field.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
) | {"message", "asctime", "taskName", "color_message"}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (ISO 8601, UTC), level, logger, message, then extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:  # already rendered (and masked) by RedactSecrets
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        # default=str: an extra that is not JSON-serialisable still logs, as its text.
        return json.dumps(entry, default=str, ensure_ascii=False)


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


def escape_control(text: str) -> str:
    """Control characters as escapes (``\\n``, ``\\x1b``): one record, one line."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class TextFormatter(logging.Formatter):
    """The classic text line, with any extras appended as key=value. Control characters in the
    message and the fields are escaped; a traceback keeps its lines (it is ours, not input)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_control(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = extra_fields(record)
        if extras:
            line += " " + " ".join(f"{k}={escape_control(str(v))}" for k, v in extras.items())
        return line


def _redact(value: Any, secrets: Iterable[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {k: _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact(v, secrets) for v in value)
    return value


DEFAULT_SECRET_ENV_VARS = (
    "POLICY_MONITOR_SMTP_PASSWORD",
    "POLICY_MONITOR_WEBHOOK_SECRET",
    "POLICY_MONITOR_LINK_SECRET",
)
# A variable whose name says it holds a secret is masked even when no config names it.
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY|API_KEY", re.I)
_MIN_GUESSED = 6  # a guessed secret this short ("1", "true") would mask ordinary words
_registered_vars: set[str] = set()
_registered_values: set[str] = set()
_registry_lock = threading.Lock()


def register_secret_env_vars(names: Iterable[str]) -> None:
    """Mask the values of these variables from now on (`monitor.config` registers the ones a
    loaded config names: the SMTP password, each webhook's secret, the link secret)."""
    with _registry_lock:
        _registered_vars.update(n for n in names if n)


def register_secret(value: str) -> None:
    """Mask this value from now on (a secret that lives in no variable: a generated one)."""
    if value:
        with _registry_lock:
            _registered_values.add(value)


# A part of a notifier URL that looks generated (digits or mixed case, at least 8 characters):
# a token. Plain words ("services", "hooks.example.org") stay readable.
_TOKEN_LIKE = re.compile(r"(?=.*[0-9A-Z])[^/?&=#@:]{8,}")
_URL_PARTS = re.compile(r"[/?&=#@:]+")


def register_url_secrets(url: str) -> None:
    """Mask a URL that carries credentials (an Apprise notifier's): the whole URL, its
    password, and every part of it that looks like a token."""
    register_secret(url)
    rest = url.partition("://")[2]
    userinfo = rest.split("/", 1)[0].rpartition("@")[0]
    if ":" in userinfo:
        password = userinfo.split(":", 1)[1]
        if len(password) >= 4:
            register_secret(password)
    for part in _URL_PARTS.split(rest):
        if _TOKEN_LIKE.fullmatch(part) and not re.fullmatch(r"[\d.]+", part):
            register_secret(part)


class RedactSecrets(logging.Filter):
    """Replace secrets with *** in message, extras and exception text: the values of
    `env_vars`, of registered variables and values, and of variables named like secrets.

    The values are read at filter time, not install time, so a password set after start-up
    (or changed by a test) is still masked.
    """

    def __init__(self, env_vars: Iterable[str] = DEFAULT_SECRET_ENV_VARS) -> None:
        super().__init__()
        self.env_vars = tuple(env_vars)

    def _secrets(self) -> list[str]:
        with _registry_lock:
            named = {*self.env_vars, *_registered_vars}
            values = set(_registered_values)
        values |= {os.environ.get(name, "") for name in named}
        values |= {
            value
            for name, value in os.environ.items()
            if _SECRET_NAME.search(name) and len(value) >= _MIN_GUESSED
        }
        # Longest first, so a secret containing another is masked whole.
        return sorted({v for v in values if v}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets()
        if not secrets:
            return True
        message = record.getMessage()
        redacted = _redact(message, secrets)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        for key, value in extra_fields(record).items():
            setattr(record, key, _redact(value, secrets))
        if record.exc_info and record.exc_info[1] is not None:
            # Exception text is formatted later; render it now so it can be masked too. Only
            # a traceback that quotes a secret loses its exc_info (other handlers, pytest's
            # capture among them, still see the exception otherwise).
            rendered = logging.Formatter().formatException(record.exc_info)
            redacted_exc = _redact(rendered, secrets)
            if redacted_exc != rendered:
                record.exc_text = redacted_exc
                record.exc_info = None
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at emit time (as logging.lastResort does), so a
    handler installed under a test's captured stderr never writes to a closed stream later."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(
    level: int | str = logging.WARNING,
    fmt: str = "text",
    *,
    secret_env_vars: Iterable[str] = DEFAULT_SECRET_ENV_VARS,
    stream: Any = None,
) -> logging.Handler:
    """Install one handler (stderr, or `stream`) in format `fmt` on the root logger.

    Calling it again replaces the handler it installed before; handlers installed by others
    (pytest's capture, for one) are left alone.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    handler: logging.Handler = _StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    # On the handler, not the root logger: handler filters also see records from child loggers.
    handler.addFilter(RedactSecrets(secret_env_vars))
    root = logging.getLogger()
    for old in root.handlers[:]:
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else getattr(logging, level.upper()))
    return handler
