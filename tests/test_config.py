"""Config loading: defaults, validation, and errors that name the file, key and allowed keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(text)
    return path


def test_no_config_gives_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POLICY_MONITOR_CONFIG", raising=False)
    config = load_config(None)
    assert config.database.url == "sqlite:///policy-monitor.db"
    assert [s.kind for s in config.sources] == ["cms_coverage"]
    assert config.sources[0].options.base_url == "https://api.coverage.cms.gov"
    assert config.sources[0].schedule.expression == "30 7 * * *"


def test_full_config(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[database]
url = "sqlite:///x.db"
[api]
port = 9000
[email]
host = "smtp.example.org"
recipients = ["compliance@example.org"]
[[sources]]
name = "cms"
kind = "cms_coverage"
base_url = "http://127.0.0.1:8001"
schedule = "every 6h"
concurrency = 4
document_types = ["lcd", "article"]
""",
    )
    config = load_config(path)
    source = config.source("cms")
    assert source.schedule.interval_seconds == 6 * 3600
    assert source.options.concurrency == 4
    assert source.options.document_types == ("lcd", "article")
    assert config.api.port == 9000
    assert config.email.recipients == ("compliance@example.org",)


def test_environment_variable_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, '[database]\nurl = "sqlite:///env.db"\n')
    monkeypatch.setenv("POLICY_MONITOR_CONFIG", str(path))
    assert load_config(None).database.url == "sqlite:///env.db"


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ('[database]\nurl = "sqlite:///x.db"\npool = 3\n', "database.pool", "allowed: url"),
        ("[databse]\n", "databse", "allowed: api, database, email, "),
        (
            '[[sources]]\nname = "cms"\nkind = "cms_coverage"\nbase_ur = "http://x"\n',
            "sources.cms.base_ur",
            "base_url",
        ),
        ('[[sources]]\nname = "cms"\nkind = "ftp"\n', "sources.cms.kind", "cms_coverage"),
        (
            '[[sources]]\nname = "cms"\nkind = "cms_coverage"\nconcurrency = "8"\n',
            "sources.cms.concurrency",
            "expected an integer",
        ),
        (
            '[[sources]]\nname = "cms"\nkind = "cms_coverage"\nschedule = "sometimes"\n',
            "sources.cms.schedule",
            "cron",
        ),
        (
            '[[sources]]\nname = "cms"\nkind = "cms_coverage"\ndocument_types = ["sad"]\n',
            "sources.cms",
            "document_types entry 'sad'",
        ),
        ('[[sources]]\nkind = "cms_coverage"\n', "sources[0].name", "must be"),
        (
            '[[sources]]\nname="a"\nkind="cms_coverage"\n[[sources]]\nname="a"\n'
            'kind="cms_coverage"\n',
            "sources",
            "used twice",
        ),
        ("[api]\nport = 70000\n", "api", "not a TCP port"),
        ("[database\n", None, "not valid TOML"),
    ],
)
def test_bad_config_names_key_and_file(
    tmp_path: Path, text: str, key: str | None, fragment: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    if key:
        assert f"[{key}]" in message
    assert fragment in message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.toml")


def test_default_schedules_are_valid_cron_expressions() -> None:
    # Schedule.parse trusts the source kinds' defaults without loading APScheduler; this is the
    # check it relies on.
    from apscheduler.triggers.cron import CronTrigger

    from monitor.config import DEFAULT_DIGEST_SCHEDULE
    from sources import SOURCE_KINDS

    for schedule in [DEFAULT_DIGEST_SCHEDULE, *(k.default_schedule for k in SOURCE_KINDS.values())]:
        CronTrigger.from_crontab(schedule, timezone="UTC")
