"""A payer policy document (PDF, HTML or text bytes) to `Criteria`: parse, then extract.

Parsed documents are cached in-process by (sha256, parser version), so the same bytes seen at
two URLs, or re-extracted, are parsed once.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict

from diffing.extract import EXTRACTOR_VERSION, extract_criteria
from diffing.model import Criteria, PolicyDocument, RawDocument
from diffing.parse import DEFAULT_MAX_PAGES, PARSER_VERSION, parse_document
from diffing.tree import build_tree

EXTRACTOR_NAME = f"payer/parse-{PARSER_VERSION}/extract-{EXTRACTOR_VERSION}"
_CACHE_SIZE = 64
_parsed: OrderedDict[tuple[str, str], PolicyDocument] = OrderedDict()


def parse_cached(
    content: bytes, content_type: str, *, document_id: str, max_pages: int = DEFAULT_MAX_PAGES
) -> PolicyDocument:
    key = (hashlib.sha256(content).hexdigest(), PARSER_VERSION)
    document = _parsed.get(key)
    if document is None:
        document = parse_document(
            content, content_type, document_id=document_id, max_pages=max_pages
        )
        _parsed[key] = document
        if len(_parsed) > _CACHE_SIZE:
            _parsed.popitem(last=False)
    else:
        _parsed.move_to_end(key)
    return document


def payer_criteria(raw: RawDocument) -> Criteria:
    pages = raw.meta("max_pages")  # the source's `max_pages` option
    document = parse_cached(
        raw.content,
        raw.content_type,
        document_id=raw.key,
        max_pages=int(pages) if pages and pages.isdigit() else DEFAULT_MAX_PAGES,
    )
    criteria = extract_criteria(document, document_id=raw.key, payer=raw.meta("payer"))
    # The tree is built here, not by the extractor: the tree builder reads the extractor's
    # heading vocabulary, so the extractor may not import it back.
    criteria = dataclasses.replace(criteria, criteria_tree=build_tree(document))
    if not criteria.title and raw.title:
        criteria = dataclasses.replace(criteria, title=raw.title)
    return criteria
