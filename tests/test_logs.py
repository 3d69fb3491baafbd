"""Structured logs: one JSON object per line, extras as fields, secrets masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from monitor.config import EmailConfig
from monitor.logs import configure_logging

SECRET = "s3cr3t-Pa55"


@pytest.fixture
def configured() -> Iterator[tuple[io.StringIO, logging.Logger]]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    yield stream, logging.getLogger("policy_monitor.test")
    for handler in root.handlers[:]:
        if handler.get_name() == "policy_monitor":
            root.removeHandler(handler)
    root.setLevel(level)


def _configure(stream: io.StringIO, fmt: str) -> None:
    configure_logging("INFO", fmt, stream=stream)


def test_json_line_has_fields_and_extras(
    configured: tuple[io.StringIO, logging.Logger],
) -> None:
    stream, log = configured
    _configure(stream, "json")
    log.info("run finished", extra={"run": "cms: 3 new versions", "documents": 12})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "INFO"
    assert entry["logger"] == "policy_monitor.test"
    assert entry["message"] == "run finished"
    assert entry["run"] == "cms: 3 new versions"
    assert entry["documents"] == 12
    assert entry["ts"].endswith("+00:00")


def test_json_exception_stays_on_one_line(
    configured: tuple[io.StringIO, logging.Logger],
) -> None:
    stream, log = configured
    _configure(stream, "json")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("crashed")
    (line,) = stream.getvalue().splitlines()
    assert "RuntimeError: boom" in json.loads(line)["exc_info"]


def test_text_format_shows_extras(configured: tuple[io.StringIO, logging.Logger]) -> None:
    stream, log = configured
    _configure(stream, "text")
    log.info("run finished", extra={"run": "cms: ok"})
    assert stream.getvalue().rstrip().endswith("policy_monitor.test: run finished run=cms: ok")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_password_is_masked(
    fmt: str, configured: tuple[io.StringIO, logging.Logger], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(EmailConfig.password_env, SECRET)
    stream, log = configured
    _configure(stream, fmt)
    log.warning("login failed with %s", SECRET, extra={"run": f"smtp {SECRET} rejected"})
    log.warning(f"plain {SECRET}")
    try:
        raise ConnectionError(f"auth {SECRET}")
    except ConnectionError:
        log.exception("send failed")
    output = stream.getvalue()
    assert SECRET not in output
    assert "login failed with ***" in output
    assert "smtp *** rejected" in output
    assert "auth ***" in output
    if fmt == "json":
        entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        assert entries[0]["run"] == "smtp *** rejected"


def test_no_password_set_leaves_records_alone(
    configured: tuple[io.StringIO, logging.Logger], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(EmailConfig.password_env, raising=False)
    stream, log = configured
    _configure(stream, "json")
    log.info("value %d", 5)
    assert json.loads(stream.getvalue())["message"] == "value 5"


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="xml"):
        configure_logging("INFO", "xml")
