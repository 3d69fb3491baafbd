"""The options of each source kind: the `[sources.options]` tables of the config.

They live apart from the sources themselves so that reading a config (every CLI command does)
does not import the HTTP clients, Scrapy and the parsers behind the sources: those load when a
source is created (`sources.SOURCE_KINDS`). Each source module re-exports its options class.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sources.base import check
from sources.outbound import OutboundPolicy

if TYPE_CHECKING:
    from sources.mcd_archive import ArchiveLimits

CMS_API_BASE_URL = "https://api.coverage.cms.gov"
# The option names of `sources.cms_coverage.REPORTS` (a test keeps the two equal).
CMS_DOCUMENT_TYPES = ("lcd", "article", "ncd")
MCD_EXPORTS_BASE_URL = "https://downloads.cms.gov/medicare-coverage-database/downloads/exports"
XPATH_PREFIX = "xpath:"
CSS_PREFIX = "css:"


@dataclass(frozen=True, kw_only=True)
class CmsCoverageOptions:
    """Options of a ``kind = "cms_coverage"`` source."""

    base_url: str = CMS_API_BASE_URL
    document_types: tuple[str, ...] = ("lcd", "article", "ncd")
    concurrency: int = 4  # measured: 8 is slower (httpcore pool bookkeeping per connection)
    timeout_seconds: float = 30.0
    max_retries: int = 4
    backoff_seconds: float = 1.0
    max_retry_after_seconds: float = 120.0
    max_response_bytes: int = 200_000_000
    token_lifetime_seconds: float = 55 * 60
    user_agent: str = "payer-policy-monitor/0.1 (coverage change monitor)"
    internal_hosts: tuple[str, ...] = ()  # hosts or CIDR networks allowed to be internal

    def validate(self) -> None:
        check(
            self.base_url.startswith(("http://", "https://")),
            f"base_url {self.base_url!r} must be an http(s) URL",
        )
        allowed = set(CMS_DOCUMENT_TYPES)
        for kind in self.document_types:
            check(
                kind in allowed,
                f"document_types entry {kind!r} is not one of {', '.join(sorted(allowed))}",
            )
        check(1 <= self.concurrency <= 64, "concurrency must be between 1 and 64")
        check(self.timeout_seconds > 0, "timeout_seconds must be positive")
        check(0 <= self.max_retries <= 20, "max_retries must be between 0 and 20")
        check(self.max_response_bytes > 0, "max_response_bytes must be positive")


@dataclass(frozen=True, kw_only=True)
class McdDownloadsOptions:
    """Options of a ``kind = "mcd_downloads"`` source."""

    base_url: str = MCD_EXPORTS_BASE_URL
    document_types: tuple[str, ...] = ("lcd", "article", "ncd")
    timeout_seconds: float = 120.0
    max_retries: int = 3
    backoff_seconds: float = 2.0
    max_retry_after_seconds: float = 300.0
    max_download_bytes: int = 1_000_000_000
    # The real exports are ~40 MB zipped and a few hundred MB of CSV. The CSV is streamed row
    # by row, but the rows the join needs are kept: the budget bounds that memory too.
    max_uncompressed_bytes: int = 1_000_000_000
    max_member_bytes: int = 500_000_000
    max_compression_ratio: float = 100.0
    max_field_bytes: int = 200_000_000
    download_dir: str = ""
    user_agent: str = "payer-policy-monitor/0.1 (coverage change monitor)"
    internal_hosts: tuple[str, ...] = ()  # hosts or CIDR networks allowed to be internal

    def validate(self) -> None:
        check(
            self.base_url.startswith(("http://", "https://")),
            f"base_url {self.base_url!r} must be an http(s) URL",
        )
        from diffing.mcd import EXPORTS

        allowed = {spec.option for spec in EXPORTS}
        for kind in self.document_types:
            check(
                kind in allowed,
                f"document_types entry {kind!r} is not one of {', '.join(sorted(allowed))}",
            )
        check(self.timeout_seconds > 0, "timeout_seconds must be positive")
        check(0 <= self.max_retries <= 20, "max_retries must be between 0 and 20")
        check(self.max_download_bytes > 0, "max_download_bytes must be positive")
        check(self.max_uncompressed_bytes > 0, "max_uncompressed_bytes must be positive")
        check(self.max_member_bytes > 0, "max_member_bytes must be positive")
        check(self.max_compression_ratio >= 2, "max_compression_ratio must be at least 2")
        check(self.max_field_bytes >= 131_072, "max_field_bytes must be at least 131072")
        check(
            not self.download_dir or os.path.isdir(self.download_dir),
            f"download_dir {self.download_dir!r} is not a directory",
        )

    @property
    def limits(self) -> ArchiveLimits:
        from sources.mcd_archive import ArchiveLimits

        return ArchiveLimits(
            max_uncompressed_bytes=self.max_uncompressed_bytes,
            max_compression_ratio=self.max_compression_ratio,
            max_field_bytes=self.max_field_bytes,
            max_member_bytes=self.max_member_bytes,
        )


@dataclass(frozen=True, kw_only=True)
class PayerPoliciesOptions:
    """Options of a ``kind = "payer_policies"`` source."""

    payer: str
    start_urls: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    documents: tuple[str, ...] = ()
    max_depth: int = 1
    obey_robots: bool = True
    download_delay_seconds: float = 1.0
    concurrency_per_host: int = 2
    timeout_seconds: float = 60.0
    max_retries: int = 3
    max_document_bytes: int = 50_000_000
    crawl_timeout_seconds: float = 3600.0
    parse_timeout_seconds: float = 300.0  # one document's parse + extraction
    max_pages: int = 300  # a longer PDF is refused, not parsed for minutes
    allowed_hosts: tuple[str, ...] = ()  # redirects may go here too (besides the URLs' hosts)
    internal_hosts: tuple[str, ...] = ()  # hosts or CIDR networks allowed to be internal
    user_agent: str = "payer-policy-monitor/0.1 (policy change monitor)"

    def validate(self) -> None:
        check(bool(self.payer.strip()), "payer must not be empty")
        check(
            bool(self.start_urls or self.documents),
            "give start_urls (index pages) or documents (explicit URLs)",
        )
        for url in self.start_urls + self.documents:
            check(url.startswith(("http://", "https://")), f"{url!r} is not an http(s) URL")
        for pattern in self.allow + self.deny:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"regex {pattern!r} does not compile: {exc}") from exc
        check(0 <= self.max_depth <= 5, "max_depth must be between 0 and 5")
        check(self.download_delay_seconds >= 0, "download_delay_seconds must not be negative")
        check(1 <= self.concurrency_per_host <= 16, "concurrency_per_host must be 1-16")
        check(self.timeout_seconds > 0, "timeout_seconds must be positive")
        check(self.max_document_bytes > 0, "max_document_bytes must be positive")
        check(self.parse_timeout_seconds > 0, "parse_timeout_seconds must be positive")
        check(1 <= self.max_pages <= 100_000, "max_pages must be between 1 and 100000")
        for host in self.allowed_hosts:
            check(
                bool(re.fullmatch(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]", host)),
                f"allowed_hosts: {host!r} is not a host name (no scheme, port or path)",
            )

    @property
    def outbound(self) -> OutboundPolicy:
        """Index pages, documents and `allowed_hosts`, with their subdomains (payer sites move
        PDFs to a "static." or "www." host); any other host, port or internal address is refused."""
        return OutboundPolicy.for_source(
            self.start_urls + self.documents,
            extra_hosts=self.allowed_hosts,
            internal_hosts=self.internal_hosts,
            subdomains=True,
        )


def selector_parts(selector: str) -> tuple[str, str]:
    """("xpath", expr) for a selector written ``xpath:EXPR``, else ("css", expr); a ``css:``
    prefix is allowed for symmetry."""
    if selector.startswith(XPATH_PREFIX):
        return "xpath", selector[len(XPATH_PREFIX) :].strip()
    return "css", selector.removeprefix(CSS_PREFIX).strip()


def _check_selector(name: str, selector: str) -> None:
    if not selector:
        return
    kind, expression = selector_parts(selector)
    check(bool(expression), f"{name} {selector!r} is empty after its prefix")
    try:
        if kind == "xpath":
            from lxml import etree

            etree.XPath(expression)
        else:
            from parsel.csstranslator import HTMLTranslator

            HTMLTranslator().css_to_xpath(expression)
    except Exception as exc:  # lxml and cssselect raise their own error families
        raise ValueError(f"{name} {selector!r} is not a valid {kind} selector: {exc}") from exc


@dataclass(frozen=True, kw_only=True)
class MacBulletinsOptions:
    """Options of a ``kind = "mac_bulletins"`` source."""

    mac: str
    listing_urls: tuple[str, ...] = ()
    feed_url: str = ""
    item_selector: str = ""
    title_selector: str = "a"
    date_selector: str = ""  # empty: the first date anywhere in the item's text
    link_selector: str = "a"
    next_page_selector: str = ""
    max_pages: int = 5
    body_selector: str = ""  # empty: the whole article page (the parser drops site chrome)
    allowed_hosts: tuple[str, ...] = ()  # empty: the hosts of listing_urls and feed_url
    internal_hosts: tuple[str, ...] = ()  # hosts or CIDR networks allowed to be internal
    obey_robots: bool = True
    download_delay_seconds: float = 1.0
    concurrency_per_host: int = 2
    timeout_seconds: float = 60.0
    max_retries: int = 3
    max_document_bytes: int = 50_000_000
    crawl_timeout_seconds: float = 1800.0
    parse_timeout_seconds: float = 300.0
    user_agent: str = "payer-policy-monitor/0.1 (policy change monitor)"

    def validate(self) -> None:
        check(bool(self.mac.strip()), "mac must not be empty")
        check(
            bool(self.listing_urls or self.feed_url),
            "give listing_urls (with item_selector) or feed_url (RSS or Atom)",
        )
        for url in (*self.listing_urls, *([self.feed_url] if self.feed_url else [])):
            check(url.startswith(("http://", "https://")), f"{url!r} is not an http(s) URL")
        check(
            not self.listing_urls or bool(self.item_selector.strip()),
            "listing_urls need an item_selector (CSS, or XPath written 'xpath:…')",
        )
        for name in ("item", "title", "date", "link", "next_page", "body"):
            _check_selector(f"{name}_selector", getattr(self, f"{name}_selector"))
        check(1 <= self.max_pages <= 100, "max_pages must be between 1 and 100")
        check(self.download_delay_seconds >= 0, "download_delay_seconds must not be negative")
        check(1 <= self.concurrency_per_host <= 16, "concurrency_per_host must be 1-16")
        check(self.timeout_seconds > 0, "timeout_seconds must be positive")
        check(self.max_document_bytes > 0, "max_document_bytes must be positive")
        check(self.crawl_timeout_seconds > 0, "crawl_timeout_seconds must be positive")
        check(self.parse_timeout_seconds > 0, "parse_timeout_seconds must be positive")

    @property
    def hosts(self) -> tuple[str, ...]:
        if self.allowed_hosts:
            return self.allowed_hosts
        urls = (*self.listing_urls, *([self.feed_url] if self.feed_url else []))
        return tuple(sorted({h for u in urls if (h := urlsplit(u).hostname)}))

    @property
    def outbound(self) -> OutboundPolicy:
        """The listing pages' and feed's hosts and `allowed_hosts`, exactly (no subdomains)."""
        urls = (*self.listing_urls, *([self.feed_url] if self.feed_url else []))
        return OutboundPolicy.for_source(
            urls, extra_hosts=self.hosts, internal_hosts=self.internal_hosts
        )
