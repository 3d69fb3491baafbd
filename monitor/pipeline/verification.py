"""Check a payer version's changes against both versions' text before they are published.

An extraction error is not a policy change: a `code_removed` whose code the new text still
lists, a `code_added` the old text already listed, a duration whose old phrase is still there
are demoted to `unverified` (stored and shown apart, never alerted; `diffing.verify`). And a new
version whose text still lists most of the old codes while extraction found few is an
extraction failure recorded against the run, not a rewrite to quarantine or mass removals.

Only payer documents are checked: CMS code tables arrive as structured data, not as text.

The extraction workers also parse a payer document with a light reference to its previous
version (that version's page edges, kept in the store; `diffing.parse.printed_alike`), so a
one-page re-print loses the running header and footer its previous print showed on every page;
they send back the reference the next version is to be parsed with.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from diffing.model import Change, ChangeKind, Criteria, PolicyDiff, RawDocument
from diffing.parse import PageEdges
from diffing.payer import parse_cached
from diffing.verify import (
    COLLAPSE_FOUND_SHARE,
    COLLAPSE_MIN_CODES,
    document_text,
    extraction_collapsed,
    verify_diff,
)
from monitor.errors import MonitorError
from monitor.pipeline.worker import WorkerText
from monitor.store.core import Store
from monitor.store.page_edges import latest_page_edges, save_page_edges, sibling_page_edges

log = logging.getLogger("policy_monitor.verify")

# Changes that claim something about the texts; the others (dates, titles, text) are the text.
CHECKED_KINDS = frozenset(
    {
        ChangeKind.CODE_ADDED,
        ChangeKind.CODE_REMOVED,
        ChangeKind.CODE_COVERAGE_CHANGED,
        ChangeKind.DRUG_ADDED,
        ChangeKind.DRUG_REMOVED,
        ChangeKind.STEP_THERAPY_CHANGED,
        ChangeKind.THRESHOLD_CHANGED,
        ChangeKind.AGE_LIMIT_CHANGED,
        ChangeKind.APPROVAL_PERIOD_CHANGED,
        ChangeKind.CRITERION_CHANGED,
    }
)

OldPayload = Callable[[], tuple[bytes, str]]  # the previous version's bytes and content type
OldText = Callable[[], str | None]  # the previous version's text as stored, if it was kept


@dataclass(frozen=True, kw_only=True, slots=True)
class Texts:
    old: str
    new: str


# Texts the extraction workers sent back, by the sha256 of the document's bytes: the new
# version's text is then not parsed a second time here, and in a long-running daemon the next
# version finds its predecessor's text too. Bounded (texts of long PDFs run to megabytes).
_TEXT_CACHE_SIZE = 32
_texts: OrderedDict[str, str] = OrderedDict()


def remember_text(content: bytes, text: str) -> None:
    key = hashlib.sha256(content).hexdigest()
    _texts[key] = str(text)
    _texts.move_to_end(key)
    while len(_texts) > _TEXT_CACHE_SIZE:
        _texts.popitem(last=False)


def previous_reference(
    store: Store, source_id: int, key: str, *, baseline: bool = False, printed: bool = True
) -> PageEdges:
    """In the parent: the page edges to parse a new version of `key` with: its previous
    version's reference or, for a document that has none (new, or its versions printed before
    references were kept), the latest one of another document of the same source printed on
    two pages or more (the payer prints its running header and footer alike). () when none was
    kept. A baseline run does not look: its documents are new and nothing is kept yet (a
    thousand lookups that find nothing, saved); nor does a document that is not `printed`
    (HTML, spreadsheets: no pages, so no running lines to match)."""
    if baseline or not printed:
        return ()
    try:
        own = latest_page_edges(store, source_id, key)
        return own if own else sibling_page_edges(store, source_id, key)
    except MonitorError as exc:  # a reference is an aid: parse without it
        log.warning("%s: no page edges of the previous version: %s", key, exc)
        return ()


def keep_reference(store: Store, content: bytes, worker: WorkerText) -> None:
    """In the parent: keep the reference a worker sent back for the next version."""
    try:
        save_page_edges(store, hashlib.sha256(content).hexdigest(), worker.reference)
    except MonitorError as exc:  # the next version is parsed without it, as before
        log.warning("could not keep the page edges of a version: %s", exc)


def _parsed_text(content: bytes, content_type: str, key: str) -> str:
    return document_text(parse_cached(content, content_type, document_id=key))


def known_text(sha256: str) -> str | None:
    """The text an extraction worker sent back for the bytes with this sha256, if still held
    (publishing keeps it with the payload: the next version is verified against it)."""
    return _texts.get(sha256)


def _text(content: bytes, content_type: str, key: str) -> str:
    known = _texts.get(hashlib.sha256(content).hexdigest())
    return known if known is not None else _parsed_text(content, content_type, key)


def texts(
    raw: RawDocument, old_payload: OldPayload, old_text: OldText | None = None
) -> Texts | None:
    """Both versions' text, or None when either cannot be parsed here (then nothing is
    demoted: the worker parsed the new one, so this is a rare, logged failure). `old_text`:
    the previous version's text as stored with its payload (parsed again when it has none)."""
    try:
        stored = old_text() if old_text is not None else None
        if stored is None:
            old_content, old_type = old_payload()
            stored = _text(old_content, old_type, raw.key)
        return Texts(old=stored, new=_text(raw.content, raw.content_type, raw.key))
    except MonitorError as exc:
        log.warning("%s: could not re-read the texts to verify its changes: %s", raw.key, exc)
        return None


def verified(
    diff: PolicyDiff, raw: RawDocument, old_payload: OldPayload, old_text: OldText | None = None
) -> PolicyDiff:
    """`diff` with every claim the two texts contradict demoted to `unverified`."""
    if not any(change.kind in CHECKED_KINDS for change in diff.changes):
        return diff
    pair = texts(raw, old_payload, old_text)
    return diff if pair is None else verify_diff(diff, pair.old, pair.new)


def collapse_reason(
    old: Criteria,
    new: Criteria,
    raw: RawDocument,
    old_payload: OldPayload,
    old_text: OldText | None = None,
) -> str | None:
    """Why the new version's extraction, not the policy, lost the codes (None when it did
    not). Cheap unless the code count fell by half or more."""
    old_count = len({code.code for code in old.codes})
    new_count = len({code.code for code in new.codes})
    if old_count < COLLAPSE_MIN_CODES or new_count >= COLLAPSE_FOUND_SHARE * old_count:
        return None
    pair = texts(raw, old_payload, old_text)
    if pair is None:
        return None
    return extraction_collapsed(pair.old, pair.new, old, new)


def unverified_count(changes: tuple[Change, ...]) -> int:
    return sum(1 for change in changes if change.severity.value == "unverified")
