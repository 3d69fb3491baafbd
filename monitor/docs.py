"""The configuration reference, generated from the config dataclasses so it cannot drift.

`policy-monitor config-reference > docs/configuration.md` regenerates the committed file;
`tests/test_docs.py` fails when the two differ or when a key has no description here.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from typing import Any

from monitor.config import ApiConfig, DatabaseConfig, EmailConfig
from sources import SOURCE_KINDS

# Descriptions live here rather than in the dataclasses: one line per key, written for the
# person editing the TOML file. Keyed by (section, key); sources use "sources.<kind>".
DESCRIPTIONS: dict[tuple[str, str], str] = {
    (
        "database",
        "url",
    ): "SQLAlchemy URL of the store: `sqlite:///FILE` or `postgresql+psycopg://USER@HOST/DB`.",
    ("api", "host"): "Address the HTTP API listens on.",
    ("api", "port"): "TCP port the HTTP API listens on (0-65535).",
    ("api", "public_url"): "Base URL readers use to reach the API; change-page links in emails "
    "start with it.",
    ("api", "link_secret_env"): "Environment variable holding the secret that signs "
    "change-page links in emails.",
    ("email", "host"): "SMTP server that sends change reports.",
    ("email", "port"): "SMTP server port (1-65535).",
    ("email", "from_address"): "Sender address of the report emails.",
    ("email", "recipients"): "Addresses that receive change reports; empty sends no email.",
    ("email", "security"): "Transport security: `none`, `starttls` or `tls`.",
    ("email", "username"): "SMTP login name; empty logs in without authentication.",
    ("email", "password_env"): "Name of the environment variable holding the SMTP password "
    "(the password itself is never in the file, and is masked in logs).",
    ("email", "timeout_seconds"): "Seconds to wait for the SMTP server before giving up.",
    ("sources", "name"): "Unique name of the source: 1-100 letters, digits, `_`, `.` or `-`.",
    ("sources", "kind"): "Which source kind this is: one of the kinds listed below.",
    ("sources", "schedule"): "When it runs: a 5-field cron expression (UTC) or `every N{s,m,h,d}`; "
    "the default depends on the kind.",
    ("sources", "enabled"): "`false` keeps the source configured but skips it in runs.",
    ("sources.cms_coverage", "base_url"): "Base URL of the CMS Coverage API.",
    ("sources.cms_coverage", "document_types"): "Which reports to watch: `lcd`, `article`, `ncd`.",
    ("sources.cms_coverage", "concurrency"): "Parallel document requests (1-64).",
    ("sources.cms_coverage", "timeout_seconds"): "Timeout of one HTTP request, in seconds.",
    ("sources.cms_coverage", "max_retries"): "Retries of a failed request (0-20).",
    ("sources.cms_coverage", "backoff_seconds"): "First retry delay; it doubles on each retry.",
    ("sources.cms_coverage", "max_retry_after_seconds"): "Longest `Retry-After` the source "
    "will honour before giving up on the request.",
    ("sources.cms_coverage", "max_response_bytes"): "Largest response body accepted, in bytes.",
    ("sources.cms_coverage", "token_lifetime_seconds"): "How long an API license token is "
    "reused before a new one is requested.",
    ("sources.cms_coverage", "user_agent"): "`User-Agent` header sent to the API.",
    ("sources.payer_policies", "payer"): "Name of the payer whose policies these are (required).",
    ("sources.payer_policies", "start_urls"): "Index pages to crawl for policy documents.",
    ("sources.payer_policies", "allow"): "Regexes; only links matching one of them are followed.",
    ("sources.payer_policies", "deny"): "Regexes; links matching any of them are skipped.",
    ("sources.payer_policies", "documents"): "Explicit document URLs, fetched without crawling.",
    ("sources.payer_policies", "max_depth"): "How many links deep to crawl from the start URLs "
    "(0-5).",
    ("sources.payer_policies", "obey_robots"): "Respect the site's `robots.txt`.",
    ("sources.payer_policies", "download_delay_seconds"): "Pause between requests to one host.",
    ("sources.payer_policies", "concurrency_per_host"): "Parallel requests per host (1-16).",
    ("sources.payer_policies", "timeout_seconds"): "Timeout of one HTTP request, in seconds.",
    ("sources.payer_policies", "max_retries"): "Retries of a failed request.",
    ("sources.payer_policies", "max_document_bytes"): "Largest document accepted, in bytes.",
    ("sources.payer_policies", "crawl_timeout_seconds"): "Longest a whole crawl may take.",
    ("sources.payer_policies", "parse_timeout_seconds"): "Longest one document's parse and "
    "extraction may take.",
    ("sources.payer_policies", "user_agent"): "`User-Agent` header sent to payer sites.",
}

_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean"}


@dataclass(frozen=True, kw_only=True)
class KeyDoc:
    """One documented config key."""

    section: str
    key: str
    type_name: str
    default: str  # a TOML value, or "required" / a note for keys without a plain default
    description: str


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is tuple:
        return "list of strings"
    return _TYPE_NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def toml_value(value: Any) -> str:
    """Render a simple default as the TOML literal a user would write."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML rendering for {value!r}")


def _description(section: str, key: str) -> str:
    try:
        return DESCRIPTIONS[(section, key)]
    except KeyError:
        raise LookupError(
            f"no description for config key {section}.{key} in monitor/docs.py"
        ) from None


def dataclass_keys(section: str, cls: Any) -> list[KeyDoc]:
    hints = typing.get_type_hints(cls)
    keys = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        default = "required" if f.default is dataclasses.MISSING else toml_value(f.default)
        keys.append(
            KeyDoc(
                section=section,
                key=f.name,
                type_name=_type_name(hints[f.name]),
                default=default,
                description=_description(section, f.name),
            )
        )
    return keys


def common_source_keys() -> list[KeyDoc]:
    """`name`, `kind`, `schedule` and `enabled`: read by config._source, not a dataclass."""
    return [
        KeyDoc(section="sources", key="name", type_name="string", default="required",
               description=_description("sources", "name")),
        KeyDoc(section="sources", key="kind", type_name="string", default="required",
               description=_description("sources", "kind")),
        KeyDoc(section="sources", key="schedule", type_name="string", default="per kind",
               description=_description("sources", "schedule")),
        KeyDoc(section="sources", key="enabled", type_name="boolean", default="true",
               description=_description("sources", "enabled")),
    ]  # fmt: skip


def sections() -> list[tuple[str, str, list[KeyDoc]]]:
    """(heading, introduction, keys) for every table of the config file, in file order."""
    result = [
        ("`[database]`", "The store.", dataclass_keys("database", DatabaseConfig)),
        ("`[api]`", "The HTTP API (validated, not served yet).", dataclass_keys("api", ApiConfig)),
        (
            "`[email]`",
            "Change reports by email (validated, not sent yet).",
            dataclass_keys("email", EmailConfig),
        ),
        ("`[[sources]]`", "Keys every source has, whatever its kind.", common_source_keys()),
    ]
    for kind, source_kind in SOURCE_KINDS.items():
        result.append(
            (
                f'`[[sources]]` with `kind = "{kind}"`',
                f"Default schedule: `{source_kind.default_schedule}`.",
                dataclass_keys(f"sources.{kind}", source_kind.options),
            )
        )
    return result


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def configuration_reference() -> str:
    """The Markdown of docs/configuration.md."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `policy-monitor config-reference > docs/configuration.md`;",
        "     do not edit by hand: tests/test_docs.py checks it against the code. -->",
        "",
        "The config file is TOML, read from `--config PATH` or `$POLICY_MONITOR_CONFIG`;",
        "with neither, every default below applies and one `cms_coverage` source named `cms`",
        "watches the CMS Coverage API. Unknown keys are errors. Defaults are shown as TOML.",
        "See `deploy/monitor.example.toml` for a complete example.",
    ]
    for heading, intro, keys in sections():
        lines += [
            "",
            f"## {heading}",
            "",
            intro,
            "",
            "| Key | Type | Default | Description |",
            "| --- | --- | --- | --- |",
        ]
        for k in keys:
            default = (
                f"`{_cell(k.default)}`"
                if k.default not in ("required", "per kind")
                else (f"*{k.default}*")
            )
            lines.append(f"| `{k.key}` | {k.type_name} | {default} | {_cell(k.description)} |")
    return "\n".join(lines) + "\n"
