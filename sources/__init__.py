"""Sources: talking to the outside world. The registry maps a config `kind` to its source."""

from __future__ import annotations

from diffing.cms import cms_criteria
from diffing.mentions import diff_bulletin
from diffing.model import Criteria, RawDocument
from sources.base import FetchFailure, FetchResult, ListedDocument, Source, SourceKind
from sources.cms_coverage import CmsCoverageOptions, CmsCoverageSource
from sources.mac_bulletins import MacBulletinsOptions, MacBulletinsSource
from sources.mcd_downloads import McdDownloadsOptions, McdDownloadsSource
from sources.payer_policies import PayerPoliciesOptions, PayerPoliciesSource


def _payer_criteria(raw: RawDocument) -> Criteria:
    from diffing.payer import payer_criteria  # pdfplumber and friends load on first use

    return payer_criteria(raw)


def _bulletin_criteria(raw: RawDocument) -> Criteria:
    from diffing.mentions import bulletin_criteria  # PDF bulletins load pdfplumber

    return bulletin_criteria(raw)


SOURCE_KINDS: dict[str, SourceKind] = {
    "cms_coverage": SourceKind(
        kind="cms_coverage",
        options=CmsCoverageOptions,
        # Local coverage data is refreshed weekly and published on Thursdays. A daily run
        # catches it the morning after, whatever the weekday, and an unchanged run costs only
        # the three report requests.
        default_schedule="30 7 * * *",
        create=CmsCoverageSource,
        extract=lambda raw: cms_criteria(raw.content),
        extractor_name="cms/1",
    ),
    "mcd_downloads": SourceKind(
        kind="mcd_downloads",
        options=McdDownloadsOptions,
        # The exports are rebuilt nightly, but the local data under them changes weekly (the
        # Thursday refresh): Friday morning sees it. An unchanged export costs three 304s.
        default_schedule="0 6 * * 5",
        create=McdDownloadsSource,
        # The same bundles as the API source, so the same extraction (diffing.mcd).
        extract=lambda raw: cms_criteria(raw.content),
        extractor_name="cms/1",
    ),
    "payer_policies": SourceKind(
        kind="payer_policies",
        options=PayerPoliciesOptions,
        default_schedule="0 5 * * *",
        create=PayerPoliciesSource,
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
        create=MacBulletinsSource,
        extract=_bulletin_criteria,
        extractor_name="bulletin/1",
        isolated_extract=True,
        diff=diff_bulletin,
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
