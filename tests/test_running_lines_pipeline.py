"""Running headers and footers recognised from the previous version, through the pipeline
(issue 13 point 3): a payer policy printed on two pages with a header and footer that carry no
stamp words is re-printed on one page, header and footer moved; the extraction worker gets the
previous version's page edges (kept in the store, never the document), so the re-print reports
nothing but `noise_only`, and so does a second one-page re-print (the reference is handed on).
A real crawl of a local HTTP server, the real extraction workers, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from fpdf import FPDF
from http_support import QuietHandler, loopback_http

from diffing.parse import parse_document, reference_edges
from monitor.config import parse_config
from monitor.pipeline.runner import RunSummary, run_source
from monitor.store.core import ChangeRecord, Store
from monitor.store.models.edges import PageEdgesRow

pytestmark = pytest.mark.slow

HEADER = "Acme Health Pharmacy Clinical Policy Bulletin"
FOOTER = "Acme Health Plans of Example, Member Services"
PAGE_ONE = [
    "Tralzena (examplumab)",
    "",
    "Coverage Criteria",
    "Examplumab is covered for moderate-to-severe atopic dermatitis.",
    "The member has tried a medium potency topical corticosteroid for 28 days.",
]
PAGE_TWO = [
    "Prior authorization is required for examplumab.",
    "Initial authorization is for 6 months.",
]
PDF_PATH = "/policies/drug/tralzena.pdf"
INDEX = f'<html><body><h1>Drug policies</h1><a href="{PDF_PATH}">Tralzena</a></body></html>'


def _pdf(pages: list[list[str]], *, header_y: float, footer_y: float, stamp: str = "") -> bytes:
    pdf = FPDF(format="letter")
    pdf.set_auto_page_break(False)
    for number, lines in enumerate(pages, start=1):
        pdf.add_page()
        pdf.set_font("Helvetica", size=9)
        pdf.set_xy(15, header_y)
        pdf.cell(0, 5, HEADER)
        pdf.set_font("Helvetica", size=11)
        y = 30.0
        for line in lines:
            if line:
                pdf.set_xy(15, y)
                pdf.cell(0, 6, line)
            y += 9
        pdf.set_font("Helvetica", size=9)
        pdf.set_xy(15, footer_y)
        pdf.cell(0, 5, FOOTER)
        if stamp:
            pdf.set_xy(15, footer_y + 6)
            pdf.cell(0, 5, stamp.format(page=number))
    return bytes(pdf.output())


TWO_PAGES = _pdf([PAGE_ONE, PAGE_TWO], header_y=8, footer_y=265, stamp="Page {page} of 2")
# Re-printed on one page: header lower, footer higher, a print stamp under it.
REPRINT = _pdf(
    [PAGE_ONE + PAGE_TWO], header_y=14, footer_y=250, stamp="Page {page} Printed 12/15/2025"
)
SECOND_REPRINT = _pdf([PAGE_ONE + PAGE_TWO], header_y=10, footer_y=258, stamp="Printed 01/09/2026")


@dataclass
class Site:
    pdf: bytes
    requests: list[str] = field(default_factory=list)
    others: dict[str, bytes] = field(default_factory=dict)  # more policies, by path

    def index(self) -> bytes:
        links = "".join(f'<a href="{path}">{path}</a>' for path in self.others)
        return INDEX.replace("</body>", links + "</body>").encode()


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    served = Site(pdf=TWO_PAGES)

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            served.requests.append(self.path)
            pages = {
                "/index.html": ("text/html", served.index()),
                PDF_PATH: ("application/pdf", served.pdf),
                **{path: ("application/pdf", pdf) for path, pdf in served.others.items()},
            }
            if self.path not in pages:
                self.send_body(404)
                return
            content_type, body = pages[self.path]
            self.send_body(200, body, content_type=content_type)

    with loopback_http(Handler) as base_url:
        yield served, base_url


def _run(store: Store, base_url: str) -> RunSummary:
    config = parse_config(
        {
            "sources": [
                {
                    "name": "acme",
                    "kind": "payer_policies",
                    "payer": "Acme Health",
                    "start_urls": [f"{base_url}/index.html"],
                    "allow": ["/policies/drug/"],
                    "download_delay_seconds": 0.0,
                    "max_retries": 1,
                }
            ]
        }
    )
    summary = asyncio.run(run_source(config.sources[0], store))
    assert summary.outcome == "success", summary.line()
    return summary


def _changes(store: Store, run_id: int, document: str = "tralzena.pdf") -> list[ChangeRecord]:
    return [c for c in store.changes(run_id=run_id) if c.document_id.endswith(document)]


def test_the_reprint_alone_would_keep_the_header_the_previous_version_tells_apart() -> None:
    """What the pipeline test relies on: parsed alone, the one-page re-print keeps the header
    and footer as text (a change against the two-page print, which dropped them)."""
    alone = " ".join(s.text for s in parse_document(REPRINT, "application/pdf").sections)
    assert HEADER in alone and FOOTER in alone
    previous = parse_document(TWO_PAGES, "application/pdf")
    assert HEADER not in " ".join(s.text for s in previous.sections)
    with_reference = parse_document(REPRINT, "application/pdf", related=[previous])
    text = " ".join(s.text for s in with_reference.sections)
    assert HEADER not in text and FOOTER not in text
    assert "Tralzena (examplumab)" in text and "Initial authorization is for 6 months." in text
    assert reference_edges(with_reference, previous.page_edges) == previous.page_edges


def test_a_one_page_reprint_reports_nothing_but_noise(
    migrated_database_url: str, site: tuple[Site, str]
) -> None:
    served, base_url = site
    store = Store.open(migrated_database_url)
    try:
        first = _run(store, base_url)
        assert first.baseline and first.counts.new_versions == 1
        assert store.count(PageEdgesRow) == 1  # the two-page print's edges, for its successor

        served.pdf = REPRINT
        second = _run(store, base_url)
        assert second.counts.new_versions == 1
        changes = _changes(store, second.run_id)
        assert [(c.kind, c.severity) for c in changes] == [("noise_only", "noise")]

        served.pdf = SECOND_REPRINT
        third = _run(store, base_url)
        assert third.counts.new_versions == 1
        changes = _changes(store, third.run_id)
        assert [(c.kind, c.severity) for c in changes] == [("noise_only", "noise")]
        assert store.count(PageEdgesRow) == 3  # each one-page print hands the reference on
    finally:
        store.close()


NEW_PATH = "/policies/drug/velmora.pdf"
NEW_BODY = [
    "Velmora (novalimab)",
    "",
    "Coverage Criteria",
    "Novalimab is covered for moderate-to-severe plaque psoriasis.",
    "The member has tried phototherapy for 12 weeks.",
    "Initial authorization is for 12 months.",
]


def test_a_new_one_page_policy_is_parsed_with_a_sibling_reference(
    migrated_database_url: str, site: tuple[Site, str]
) -> None:
    """A policy that appears later, printed on one page, has no previous version: it is parsed
    with the page edges of another document of the same source (printed on two pages), so its
    running header and footer are furniture from its first version on, and its re-print on two
    pages (where they repeat) reports nothing but noise."""
    served, base_url = site
    store = Store.open(migrated_database_url)
    try:
        _run(store, base_url)  # baseline: the two-page Tralzena print, edges kept
        served.others[NEW_PATH] = _pdf(
            [NEW_BODY], header_y=12, footer_y=252, stamp="Page {page} Printed 11/02/2026"
        )
        second = _run(store, base_url)
        assert second.counts.new_versions == 1
        # Re-printed on two pages: now its own header and footer repeat and are furniture.
        served.others[NEW_PATH] = _pdf(
            [NEW_BODY[:4], NEW_BODY[4:]], header_y=8, footer_y=265, stamp="Page {page} of 2"
        )
        third = _run(store, base_url)
        assert third.counts.new_versions == 1
        changes = _changes(store, third.run_id, "velmora.pdf")
        assert [(c.kind, c.severity) for c in changes] == [("noise_only", "noise")]
    finally:
        store.close()
