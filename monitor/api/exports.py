"""What the API's list and export answers share: paging a loaded list, Markdown-safe text, and
the headers of the HTML export.

Text in a checklist comes from fetched payer documents. In Markdown it must stay text: a
sentence holding ``[click](javascript:…)``, ``<script>``, a line break followed by ``# `` or
``1. `` would otherwise become a link, raw HTML or a forged heading or item in the export.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from monitor.store.checklists import ChecklistRecord

T = TypeVar("T")

# The HTML export is a standalone page: nothing on it runs or loads from elsewhere.
EXPORT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

# Characters with a meaning in inline Markdown (CommonMark and GitHub's extensions).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def paged(items: Sequence[T], limit: int) -> tuple[list[T], bool]:
    """The first `limit` items, and whether more follow."""
    return list(items[:limit]), len(items) > limit


def markdown_text(value: str) -> str:
    """`value` as inline Markdown that renders as the same text: one line, specials escaped,
    ``<`` and ``&`` as entities (raw HTML passes through Markdown renderers; ``&amp;`` keeps
    a document's own ``&lt;`` from turning into ``<``)."""
    one_line = " ".join(value.split()).replace("&", "&amp;").replace("<", "&lt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", one_line)


def _escaped(obj: Any) -> Any:
    if isinstance(obj, str):
        return markdown_text(obj)
    if isinstance(obj, tuple):
        return tuple(_escaped(v) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {
            f.name: _escaped(value)
            for f in dataclasses.fields(obj)
            if f.init and _has_text(value := getattr(obj, f.name))
        }
        return dataclasses.replace(obj, **changes)
    return obj


def _has_text(value: Any) -> bool:
    return isinstance(value, str | tuple) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    )


def markdown_safe(record: ChecklistRecord) -> ChecklistRecord:
    """The record with every text of the checklist (and its source URL) Markdown-escaped, for
    the Markdown export. Dates, numbers and the version record stay as they are."""
    checklist = _escaped(record.checklist) if record.checklist is not None else None
    return dataclasses.replace(record, url=markdown_text(record.url), checklist=checklist)
