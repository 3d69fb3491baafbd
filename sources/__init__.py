"""Sources: talking to the outside world. The registry maps a config `kind` to its source."""

from __future__ import annotations

from diffing.cms import cms_criteria
from diffing.model import Criteria, RawDocument
from sources.base import FetchFailure, FetchResult, ListedDocument, Source, SourceKind
from sources.cms_coverage import CmsCoverageOptions, CmsCoverageSource
from sources.payer_policies import PayerPoliciesOptions, PayerPoliciesSource


def _payer_criteria(raw: RawDocument) -> Criteria:
    from diffing.payer import payer_criteria  # pdfplumber and friends load on first use

    return payer_criteria(raw)


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
    "payer_policies": SourceKind(
        kind="payer_policies",
        options=PayerPoliciesOptions,
        default_schedule="0 5 * * *",
        create=PayerPoliciesSource,
        extract=_payer_criteria,
        extractor_name="payer/1",
        isolated_extract=True,
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
