"""Loaded once by the extraction workers' fork server, before it forks any worker.

Each worker used to start from a bare interpreter (the `spawn` start method) and pay, before
its first document, for its imports (trafilatura, BeautifulSoup, pdfplumber: ~0.5 s) and for
compiling the extractor's vocabularies (~0.2 s): about 0.7 s of CPU per worker, twice per run,
on the path of a re-check that finds a few changed pages. The fork server
(`multiprocessing`'s `forkserver` start method) imports this module once and forks every worker
from itself, so a worker starts with all of that done (the pages are shared copy-on-write).

Warming is best effort: a failure here must not stop the fork server (no worker could start),
so it is swallowed; a worker then pays for whatever was not warmed, as before.
"""

from __future__ import annotations

import datetime as dt

from diffing.model import RawDocument

# A small policy page in the style the payers publish: it walks the HTML parse, the criteria
# extractor (drug, diagnosis, step therapy, severity, prescriber, approval period, codes) and
# the criteria tree, so their lazy imports run and their patterns are compiled here.
WARM_PAGE = b"""<!DOCTYPE html>
<html><head><title>Warm-up Policy</title></head>
<body><main>
<h1>Dupilumab (Dupixent) - Warm-up Policy</h1>
<h2>Policy</h2>
<p>Dupixent is considered medically necessary for moderate-to-severe atopic dermatitis (L20.9)
when all of the following criteria are met:</p>
<ol>
<li>Member is 6 months of age or older; and</li>
<li>Affected body surface area of at least 10 % or an EASI score of 16 or greater; and</li>
<li>Inadequate response to a 4-week trial of a medium potency topical corticosteroid or
a topical calcineurin inhibitor; and</li>
<li>Prescribed by or in consultation with a dermatologist or allergist.</li>
</ol>
<p>Initial authorization is for 6 months. Continuation requires a positive clinical response.</p>
<h2>Codes</h2>
<table><tr><th>HCPCS</th><th>Description</th></tr>
<tr><td>J3590</td><td>Unclassified biologics</td></tr></table>
</main></body></html>
"""


def warm_document() -> RawDocument:
    """`WARM_PAGE` as a payer source would hand it to a worker."""
    return RawDocument(
        source="warm",
        key="/warm-up",
        url="http://127.0.0.1/warm-up",
        content=WARM_PAGE,
        content_type="text/html",
        fetched_at=dt.datetime.now(dt.UTC),
        source_meta=(("payer", "Warm-up"),),
    )


def warm() -> None:
    """Parse and extract `WARM_PAGE` as a worker would, and load the PDF parser."""
    try:
        from diffing.parse import pdf  # noqa: F401  (pdfplumber, pdfminer)
        from monitor.pipeline.worker import extract_printed_alike
        from sources import SOURCE_KINDS

        extract_printed_alike(SOURCE_KINDS["payer_policies"].extract, warm_document())
    except Exception:  # best effort: see the module docstring
        return


warm()
