"""Sources: talking to the outside world. The registry maps a config `kind` to its source."""

from __future__ import annotations

from diffing.cms import cms_criteria
from sources.base import FetchFailure, FetchResult, ListedDocument, Source, SourceKind
from sources.cms_coverage import CmsCoverageOptions, CmsCoverageSource

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
}

__all__ = [
    "SOURCE_KINDS",
    "FetchFailure",
    "FetchResult",
    "ListedDocument",
    "Source",
    "SourceKind",
]
