"""Text for the tests that hold extraction's shortcuts to the long way: a sample of the fixture
payer site's pages, parsed as the pipeline parses them."""

from __future__ import annotations

from diffing.model import PolicyDocument


def fixture_documents(documents: int = 40, every: int = 8) -> list[PolicyDocument]:
    """Every `every`-th of the first `documents` week-1 pages of the fixture payer site."""
    from diffing.parse import parse_document
    from fixtures.payer_site.site import PayerSite, body

    site = PayerSite(documents=documents, html_only=True)
    out: list[PolicyDocument] = []
    for path in sorted(site.document_paths("week1"))[::every]:
        resource = site.lookup("week1", path)
        assert resource is not None
        out.append(parse_document(body(resource).data, "text/html", document_id=path))
    return out
