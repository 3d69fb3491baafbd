"""The extractor of `test_extraction_isolation`, in a module of its own: a worker imports the
module of the function it runs, and this one loads nothing the fork server has not (the test
module would load the runner, the store and SQLAlchemy: seconds on a loaded machine, inside
the test's 3 s parse timeout)."""

from __future__ import annotations

import os
import time

from diffing.model import Criteria, RawDocument


def slow_or_broken_extract(raw: RawDocument) -> Criteria:
    """Runs in a worker process: hangs on /hang, kills its process on /crash."""
    if raw.key == "/hang":
        time.sleep(120)
    if raw.key == "/crash":
        os._exit(3)
    return Criteria(
        document_id=raw.key, doc_type="test", title=raw.key, version=None, status="active"
    )


def content_titled_extract(raw: RawDocument) -> Criteria:
    """Runs in a worker process: as `slow_or_broken_extract`, titled by the bytes it was given
    (so a test sees which bytes were extracted)."""
    criteria = slow_or_broken_extract(raw)
    return Criteria(
        document_id=criteria.document_id,
        doc_type=criteria.doc_type,
        title=raw.content.decode(),
        version=None,
        status="active",
    )
