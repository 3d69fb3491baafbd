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
)
from sources import SOURCE_KINDS

INTERNAL_HOSTS = (
    "Hosts (as written) or networks (CIDR) that may resolve to internal addresses; IP literals "
    "in this source's URLs are allowed already."
)

# Descriptions live here rather than in the dataclasses: one line per key, written for the
# person editing the TOML file. Keyed by (section, key); sources use "sources.<kind>".
DESCRIPTIONS: dict[tuple[str, str], str] = {
    (
        "database",
        "url",
    ): "SQLAlchemy URL of the store: `sqlite:///FILE` or `postgresql+psycopg://USER@HOST/DB`.",
    ("api", "enabled"): "`policy-monitor run` serves the HTTP API as well; `false` leaves it to "
    "`policy-monitor serve`.",
    ("api", "host"): "Address the HTTP API listens on.",
    ("api", "port"): "TCP port the HTTP API listens on (0-65535).",
    ("api", "public_url"): "Base URL readers use to reach the API; change-page links in emails "
    "start with it.",
    ("api", "link_secret_env"): "Environment variable holding the secret that signs "
    "change-page links in emails: at least 32 bytes, or the service refuses to start.",
    ("api", "link_secret_file"): "Used when that variable is unset: a file holding the link "
    "secret, generated (mode 0600) on first start; empty: beside a SQLite database file, else "
    "`policy-monitor.link-secret` in the working directory.",
    ("api", "link_lifetime_days"): "How long a change-page link stays valid (1-3650); a link "
    "claiming a later expiry is refused.",
    ("api", "max_body_bytes"): "Largest request body accepted; larger ones get 413 before any "
    "key is checked.",
    ("api", "max_header_bytes"): "Largest request line plus headers accepted; larger ones get "
    "431 before any key is checked.",
    ("email", "host"): "SMTP server that sends change reports.",
    ("email", "port"): "SMTP server port (1-65535).",
    ("email", "from_address"): "Sender address of the report emails.",
    ("email", "recipients"): "Addresses that receive change reports; empty sends no email.",
    ("email", "security"): "Transport security: `none`, `starttls` or `tls`.",
    ("email", "username"): "SMTP login name; empty logs in without authentication.",
    ("email", "password_env"): "Name of the environment variable holding the SMTP password "
    "(the password itself is never in the file, and is masked in logs).",
    ("email", "timeout_seconds"): "Seconds to wait for the SMTP server before giving up.",
    ("email", "allow_plaintext_auth"): 'Allow SMTP AUTH with `security = "none"` (the '
    "password then crosses the network in clear text); only for a relay on a trusted link.",
    ("email", "ca_file"): "PEM file of CAs to trust for `starttls`/`tls` (a private relay's "
    "CA); empty trusts the system's.",
    ("notifications", "enabled"): "`false` writes and sends no notifications (the outbox "
    "still records changes to announce).",
    ("notifications", "digest_schedule"): "When digests go out: a 5-field cron expression "
    "(UTC) or `every N{s,m,h,d}`; missed times coalesce into one digest.",
    ("notifications", "send_empty_digest"): "Send a digest even when no change matched.",
    ("notifications", "alert_min_severity"): "Changes at or above this severity (`low`, "
    "`medium`, `high`) are also alerted at once.",
    ("notifications", "alert_window_seconds"): "Alerts and webhook batches wait until no "
    "matching change arrived for this long, so one update gives one message (at most ten "
    "windows).",
    ("notifications", "operators_profile"): "The `[[recipients]]` profile that hears when a "
    "source breaks and recovers; none such: no source-health email.",
    ("notifications", "failing_runs_threshold"): "A source is reported broken after this many "
    "failed runs in a row.",
    ("notifications", "poll_seconds"): "How often the sender looks for due messages.",
    ("notifications", "max_attempts"): "Attempts per delivery before it is marked failed "
    "(`policy-monitor outbox retry ID` queues it again).",
    ("notifications", "backoff_seconds"): "Delay before the first retry; doubled per attempt, "
    "with 50-100 % jitter.",
    ("notifications", "max_backoff_seconds"): "Longest delay between two attempts.",
    ("notifications", "lease_seconds"): "How long a sender instance holds a delivery it is "
    "sending; after that another instance may send it (longer than an SMTP exchange).",
    ("notifications", "digest_max_changes"): "Most changes listed in one email; the rest are "
    "counted with a link to the change feed.",
    ("recipients", "name"): "Unique profile name: 1-100 letters, digits, `_`, `.` or `-`.",
    ("recipients", "addresses"): "Email addresses of the profile (required, at least one).",
    ("recipients", "digest"): "Send this profile the scheduled digest.",
    ("recipients", "alerts"): "Send this profile immediate alerts.",
    ("recipients", "sources"): "Only changes from these sources (names); empty: all.",
    ("recipients", "payers"): "Only these payers (case-insensitive, part of the name); with "
    "`contractors`, either may match.",
    ("recipients", "contractors"): "Only these MACs (case-insensitive, part of the name, e.g. "
    "`Novitas`).",
    ("recipients", "codes"): "Only documents with one of these codes (`L40.0`) or prefixes "
    "(`L40*`), before or after the change.",
    ("recipients", "drugs"): "Only documents about one of these drugs (generic name, class or "
    "a word of the title).",
    ("recipients", "min_severity"): "Leave out changes below this severity (`low`, `medium`, "
    "`high`).",
    ("webhooks", "name"): "Unique webhook name: 1-100 letters, digits, `_`, `.` or `-`.",
    ("webhooks", "url"): "Where change batches are POSTed as JSON (http:// or https:// only).",
    ("webhooks", "secret_env"): "Environment variable holding the HMAC-SHA256 secret of the "
    "`X-Policy-Monitor-Signature` header.",
    ("webhooks", "timeout_seconds"): "Timeout of one POST, in seconds.",
    ("webhooks", "sources"): "Only changes from these sources (names); empty: all.",
    ("webhooks", "payers"): "Only these payers (as for `[[recipients]]`).",
    ("webhooks", "contractors"): "Only these MACs (as for `[[recipients]]`).",
    ("webhooks", "codes"): "Only these codes or `PREFIX*` (as for `[[recipients]]`).",
    ("webhooks", "drugs"): "Only these drugs (as for `[[recipients]]`).",
    ("webhooks", "min_severity"): "Leave out changes below this severity.",
    ("notifiers", "name"): "Unique notifier name: 1-100 letters, digits, `_`, `.` or `-`; "
    "deliveries and logs show it instead of the URL.",
    ("notifiers", "url"): "Any Apprise URL (`slack://…`, `msteams://…`, `discord://…`, "
    "`ntfy://…`, `json://host/path` …). It holds the service's token: never stored or logged "
    "(its token-like parts are masked in every log line).",
    ("notifiers", "sources"): "Only changes from these sources (names); empty: all.",
    ("notifiers", "payers"): "Only these payers (as for `[[recipients]]`).",
    ("notifiers", "contractors"): "Only these MACs (as for `[[recipients]]`).",
    ("notifiers", "codes"): "Only these codes or `PREFIX*` (as for `[[recipients]]`).",
    ("notifiers", "drugs"): "Only these drugs (as for `[[recipients]]`).",
    ("notifiers", "min_severity"): "Leave out changes below this severity.",
    ("scheduler", "jitter_seconds"): "Delay each scheduled run by a random 0..N seconds, so "
    "instances restarted together do not hit a site at the same second.",
    ("scheduler", "misfire_grace_seconds"): "A run missed by less than this (daemon busy, host "
    "suspended) still happens, once; missed runs are coalesced.",
    ("scheduler", "max_concurrent_runs"): "Sources one `run` process runs at the same time.",
    ("scheduler", "shutdown_grace_seconds"): "On SIGTERM/SIGINT, how long running sources may "
    "take to finish before the process exits.",
    ("quarantine", "enabled"): "Hold a new version that drops most of its predecessor's codes "
    "or criteria for a reviewer (`policy-monitor quarantine`, `GET /quarantine`) instead of "
    "publishing it; the operators profile is emailed once per held version.",
    ("quarantine", "max_dropped_share"): "Held when more than this share of the previous "
    "version's codes (all tables; a code moved to another table is not dropped), or of its "
    "other criteria (drugs, step therapy, PA, thresholds, approval periods, age limits), is "
    "gone.",
    ("quarantine", "min_items"): "A count (codes, or other criteria) below this in the previous "
    "version is not judged: dropping 1 of 2 codes is an edit, not a broken page.",
    ("sources", "name"): "Unique name of the source: 1-100 letters, digits, `_`, `.` or `-`.",
    ("sources", "kind"): "Which source kind this is: one of the kinds listed below.",
    ("sources", "schedule"): "When it runs: a 5-field cron expression (UTC) or `every N{s,m,h,d}`; "
    "the default depends on the kind.",
    ("sources", "enabled"): "`false` keeps the source configured but skips it in runs.",
    ("sources", "notice_days"): "Days of notice a change should give: one taking effect fewer "
    "days than this after it was first seen is flagged `short_notice`, one effective before it "
    "was first seen `retroactive` (`policy-monitor changes --flag`, the API's `?flag=`).",
    ("sources.cms_coverage", "base_url"): "Base URL of the CMS Coverage API.",
    ("sources.cms_coverage", "internal_hosts"): INTERNAL_HOSTS,
    ("sources.mcd_downloads", "internal_hosts"): INTERNAL_HOSTS,
    ("sources.payer_policies", "internal_hosts"): INTERNAL_HOSTS,
    ("sources.mac_bulletins", "internal_hosts"): INTERNAL_HOSTS,
    ("sources.cms_coverage", "document_types"): "Which reports to watch: `lcd`, `article`, `ncd`.",
    ("sources.cms_coverage", "concurrency"): "Parallel document requests (1-64).",
    ("sources.cms_coverage", "timeout_seconds"): "Timeout of each connect and read of one HTTP "
    "request, in seconds; the whole response must arrive within 4 times this.",
    ("sources.cms_coverage", "max_retries"): "Retries of a failed request (0-20).",
    ("sources.cms_coverage", "backoff_seconds"): "First retry delay; it doubles on each retry.",
    ("sources.cms_coverage", "max_retry_after_seconds"): "Longest `Retry-After` the source "
    "will honour before giving up on the request.",
    ("sources.cms_coverage", "max_response_bytes"): "Largest response body accepted, in bytes.",
    ("sources.cms_coverage", "token_lifetime_seconds"): "How long an API license token is "
    "reused before a new one is requested.",
    ("sources.cms_coverage", "user_agent"): "`User-Agent` header sent to the API.",
    ("sources.mcd_downloads", "base_url"): "Folder URL of the MCD export zips "
    "(`current_lcd.zip`, `current_article.zip`, `ncd.zip`).",
    ("sources.mcd_downloads", "document_types"): "Which exports to read: `lcd`, `article`, `ncd`.",
    ("sources.mcd_downloads", "timeout_seconds"): "Timeout of one download's network "
    "operations, in seconds.",
    ("sources.mcd_downloads", "max_retries"): "Retries of a failed or cut download (0-20).",
    ("sources.mcd_downloads", "backoff_seconds"): "First retry delay; it doubles on each retry.",
    ("sources.mcd_downloads", "max_retry_after_seconds"): "Longest `Retry-After` the source waits.",
    ("sources.mcd_downloads", "max_download_bytes"): "Largest export zip accepted, in bytes.",
    ("sources.mcd_downloads", "max_uncompressed_bytes"): "Zip-bomb guard: most bytes one "
    "export may expand to, zips inside zips included.",
    ("sources.mcd_downloads", "max_member_bytes"): "Zip-bomb guard: most bytes one file "
    "of an export may expand to (the smaller of this and `max_uncompressed_bytes` applies).",
    ("sources.mcd_downloads", "max_compression_ratio"): "Zip-bomb guard: largest "
    "uncompressed/compressed ratio of a member over 1 MiB.",
    ("sources.mcd_downloads", "max_field_bytes"): "Largest CSV field (HTML text) accepted, "
    "in bytes.",
    ("sources.mcd_downloads", "download_dir"): "Folder for the temporary download and "
    "inner zip (empty: the system temporary folder).",
    ("sources.mcd_downloads", "user_agent"): "`User-Agent` header sent to downloads.cms.gov.",
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
    ("sources.payer_policies", "timeout_seconds"): "Longest one HTTP request (the whole "
    "response) may take, in seconds.",
    ("sources.payer_policies", "max_retries"): "Retries of a failed request.",
    ("sources.payer_policies", "max_document_bytes"): "Largest document accepted, in bytes.",
    ("sources.payer_policies", "crawl_timeout_seconds"): "Longest a whole crawl may take.",
    ("sources.payer_policies", "parse_timeout_seconds"): "Longest one document's parse and "
    "extraction may take.",
    ("sources.payer_policies", "user_agent"): "`User-Agent` header sent to payer sites.",
    ("sources.mac_bulletins", "mac"): "Name of the MAC whose bulletins these are, as digests "
    "show it (`Novitas`; required).",
    ("sources.mac_bulletins", "listing_urls"): "News listing pages to read (each followed through "
    "`next_page_selector`); give these, `feed_url`, or both.",
    ("sources.mac_bulletins", "feed_url"): "RSS 2.0 or Atom feed of the MAC's news; each entry's "
    "link is fetched as the bulletin.",
    ("sources.mac_bulletins", "item_selector"): "Selector of one news item on a listing page "
    "(required with `listing_urls`). Selectors are CSS, or XPath when written `xpath:EXPR`; "
    "title, date and link selectors are relative to the item.",
    ("sources.mac_bulletins", "title_selector"): "Selector of the item's title.",
    ("sources.mac_bulletins", "date_selector"): "Selector of the item's date; empty takes the "
    "first date in the item's text (`02/03/2026`, `Feb 3, 2026`, `2026-02-03` …).",
    ("sources.mac_bulletins", "link_selector"): "Selector of the item's link (its `href` is "
    "followed).",
    ("sources.mac_bulletins", "next_page_selector"): "Selector of the listing's next-page link; "
    "empty reads the first page only.",
    ("sources.mac_bulletins", "max_pages"): "Most listing pages read per listing URL (1-100).",
    ("sources.mac_bulletins", "body_selector"): "Selector of the article body on a bulletin page; "
    "empty keeps the whole page (site chrome is dropped by the parser). PDFs are kept whole.",
    ("sources.mac_bulletins", "allowed_hosts"): "Hosts whose bulletin links are followed; empty "
    "means the hosts of `listing_urls` and `feed_url`.",
    ("sources.mac_bulletins", "obey_robots"): "Respect the site's `robots.txt`.",
    ("sources.mac_bulletins", "download_delay_seconds"): "Pause between requests to one host.",
    ("sources.mac_bulletins", "concurrency_per_host"): "Parallel requests per host (1-16).",
    ("sources.mac_bulletins", "timeout_seconds"): "Timeout of one HTTP request, in seconds.",
    ("sources.mac_bulletins", "max_retries"): "Retries of a failed request.",
    ("sources.mac_bulletins", "max_document_bytes"): "Largest page or PDF accepted, in bytes.",
    ("sources.mac_bulletins", "crawl_timeout_seconds"): "Longest a whole crawl may take.",
    ("sources.mac_bulletins", "parse_timeout_seconds"): "Longest one bulletin's parse may take.",
    ("sources.mac_bulletins", "user_agent"): "`User-Agent` header sent to MAC sites.",
    ("sources.payer_policies", "max_pages"): "Longest PDF parsed, in pages; a longer one is "
    "recorded as a failed document instead of being parsed.",
    ("sources.payer_policies", "allowed_hosts"): "Hosts redirects may lead to besides those of "
    "`start_urls` and `documents` (a CDN); a redirect anywhere else is a failed document.",
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
    """`name`, `kind`, `schedule`, `enabled` and `notice_days`: read by config._source, not a
    dataclass."""
    return [
        KeyDoc(section="sources", key="name", type_name="string", default="required",
               description=_description("sources", "name")),
        KeyDoc(section="sources", key="kind", type_name="string", default="required",
               description=_description("sources", "kind")),
        KeyDoc(section="sources", key="schedule", type_name="string", default="per kind",
               description=_description("sources", "schedule")),
        KeyDoc(section="sources", key="enabled", type_name="boolean", default="true",
               description=_description("sources", "enabled")),
        KeyDoc(section="sources", key="notice_days", type_name="integer", default="30",
               description=_description("sources", "notice_days")),
    ]  # fmt: skip


def sections() -> list[tuple[str, str, list[KeyDoc]]]:
    """(heading, introduction, keys) for every table of the config file, in file order."""
    result = [
        ("`[database]`", "The store.", dataclass_keys("database", DatabaseConfig)),
        (
            "`[api]`",
            "The HTTP API (`policy-monitor serve`, and inside `run`).",
            dataclass_keys("api", ApiConfig),
        ),
        (
            "`[email]`",
            "SMTP for digests and alerts.",
            dataclass_keys("email", EmailConfig),
        ),
        (
            "`[scheduler]`",
            "How `policy-monitor run` schedules the sources (the same for all).",
            dataclass_keys("scheduler", SchedulerConfig),
        ),
        (
            "`[notifications]`",
            "Digests, immediate alerts, webhook batches and source-health email.",
            dataclass_keys("notifications", NotificationsConfig),
        ),
        (
            "`[[recipients]]`",
            "Profiles: addresses with filters. Without any, `[email] recipients` is one "
            "unfiltered profile.",
            dataclass_keys("recipients", RecipientProfile),
        ),
        (
            "`[[webhooks]]`",
            "Systems that receive signed JSON change batches.",
            dataclass_keys("webhooks", WebhookConfig),
        ),
        (
            "`[[notifiers]]`",
            "Chat and push services reached through Apprise: one short message per change "
            "batch, through the same outbox (and once-only delivery) as email.",
            dataclass_keys("notifiers", NotifierConfig),
        ),
        (
            "`[quarantine]`",
            "The publish guard against versions that look broken (an error page, an emptied "
            "code table): held for a reviewer, not published.",
            dataclass_keys("quarantine", QuarantineConfig),
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
