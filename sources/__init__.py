"""Sources: talking to the outside world. The registry maps a config `kind` to its source."""

from __future__ import annotations

from typing import Any

from diffing.model import Criteria, PolicyDiff, RawDocument
from sources.base import FetchFailure, FetchResult, ListedDocument, Source, SourceKind
from sources.options import (
    CmsCoverageOptions,
    MacBulletinsOptions,
    McdDownloadsOptions,
    PayerPoliciesOptions,
)

# The registry names the options eagerly (reading a config validates them) and loads each
# source's module, with its HTTP client, Scrapy and parsers, only when a source is created or a
# document extracted: every CLI command reads the config, few of them fetch anything.


def _create_cms(**kwargs: Any) -> Source:
    from sources.cms_coverage import CmsCoverageSource

    return CmsCoverageSource(**kwargs)


def _create_mcd(**kwargs: Any) -> Source:
    from sources.mcd_downloads import McdDownloadsSource

    return McdDownloadsSource(**kwargs)


def _create_payer(**kwargs: Any) -> Source:
    from sources.payer_policies import PayerPoliciesSource

    return PayerPoliciesSource(**kwargs)


def _create_mac(**kwargs: Any) -> Source:
    from sources.mac_bulletins import MacBulletinsSource

    return MacBulletinsSource(**kwargs)


def _cms_criteria(raw: RawDocument) -> Criteria:
    from diffing.cms import cms_criteria

    return cms_criteria(raw.content)


def _payer_criteria(raw: RawDocument) -> Criteria:
    from diffing.payer import payer_criteria  # pdfplumber and friends load on first use

    return payer_criteria(raw)


def _bulletin_criteria(raw: RawDocument) -> Criteria:
    from diffing.mentions import bulletin_criteria  # PDF bulletins load pdfplumber

    return bulletin_criteria(raw)


def _diff_bulletin(*args: Any, **kwargs: Any) -> PolicyDiff:
    from diffing.mentions import diff_bulletin

    return diff_bulletin(*args, **kwargs)


SOURCE_KINDS: dict[str, SourceKind] = {
    "cms_coverage": SourceKind(
        kind="cms_coverage",
        options=CmsCoverageOptions,
        # Local coverage data is refreshed weekly and published on Thursdays. A daily run
        # catches it the morning after, whatever the weekday, and an unchanged run costs only
        # the three report requests.
        default_schedule="30 7 * * *",
        create=_create_cms,
        extract=_cms_criteria,
        extractor_name="cms/1",
    ),
    "mcd_downloads": SourceKind(
        kind="mcd_downloads",
        options=McdDownloadsOptions,
        # The exports are rebuilt nightly, but the local data under them changes weekly (the
        # Thursday refresh): Friday morning sees it. An unchanged export costs three 304s.
        default_schedule="0 6 * * 5",
        create=_create_mcd,
        # The same bundles as the API source, so the same extraction (diffing.mcd).
        extract=_cms_criteria,
        extractor_name="cms/1",
    ),
    "payer_policies": SourceKind(
        kind="payer_policies",
        options=PayerPoliciesOptions,
        default_schedule="0 5 * * *",
        create=_create_payer,
        extract=_payer_criteria,
        extractor_name="payer/1",
        isolated_extract=True,
    ),
    "mac_bulletins": SourceKind(
        kind="mac_bulletins",
        options=MacBulletinsOptions,
        # MACs post news during US business hours; every four hours finds a bulletin the same
        # day, and an unchanged run is the listing pages plus 304s.
        default_schedule="0 */4 * * *",
        create=_create_mac,
        extract=_bulletin_criteria,
        extractor_name="bulletin/1",
        isolated_extract=True,
        diff=_diff_bulletin,
    ),
}

__all__ = [
    "SOURCE_KINDS",
    "FetchFailure",
    "FetchResult",
    "ListedDocument",
    "Source",
    "SourceKind",
]
