"""HTML parsing: a clinical policy bulletin page written here in the style of an Aetna CPB."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diffing.model import PolicyDocument
from diffing.parse import detect_format, parse_document
from monitor.errors import ParseError

CPB = """

   <!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Dupilumab (Dupixent) - Medical Clinical Policy Bulletins | Aetna</title>
  <meta name="description" content="Aetna considers dupilumab medically necessary for atopic
      dermatitis when criteria are met.">
  <meta name="aet.cpbType" content="Medical"/>
  <meta name="aet.cpbNumber" content="0975"/>
  <meta name="aet.lastReviewDate" content="2026-02-10"/>
  <meta name="aet.anticipatedReviewDate" content="2027-02-10"/>
  <script>window.dataLayer = [{"page": "cpb"}];</script>
  <style>.strikeThrough { text-decoration: line-through; color: red; }</style>
</head>
<body class="cpb">
  <a class="skip-link" href="#main">Skip to main content</a>
  <header><div class="logo">Aetna</div>
    <nav><a href="/">Home</a> <a href="/cpb">CPBs</a></nav></header>
  <div id="breadcrumb"><a href="/">Home</a> &gt;
    <a href="/cpb">Clinical Policy Bulletins</a></div>
  <div class="cookie-banner">We use cookies to improve your experience.
    <button>Accept</button></div>
  <main id="main">
    <h1>Dupilumab (Dupixent)</h1>
    <p class="numberData"><strong>Number:&nbsp;0975</strong></p>
    <!-- generated 2026-03-14T09:41:07Z by cms build 8812 -->
    <div class="toc"><p>Table Of Contents</p>
      <ul><li><a href="#policy">Policy</a></li>
      <li><a href="#codes">Applicable CPT / HCPCS / ICD-10 Codes</a></li>
      <li><a href="#background">Background</a></li></ul></div>
    <h2 class="policyHead" id="policy">Policy</h2>
    <h3>Scope of Policy</h3>
    <p>This Clinical Policy Bulletin addresses dupilumab
       (Dupixent) for the treatment of
       atopic dermatitis.</p>
    <h3>Medical Necessity</h3>
    <p>Aetna considers dupilumab medically necessary for members with moderate-to-severe
      atopic dermatitis when <em>all</em> of the following criteria are met:</p>
    <ol>
      <li>Member is 6 months of age or older; <strong>and</strong></li>
      <li>Member has had an inadequate response to a medium&#8209;potency or higher topical
        corticosteroid used for at least <span class="strikeThrough">4 weeks</span><span
        class="newText">8 weeks</span>; and</li>
      <li>Dupilumab is prescribed by or in consultation with a dermatologist.</li>
    </ol>
    <p><strong>Continuation of Therapy</strong></p>
    <p>Aetna considers continuation of dupilumab medically necessary for members who achieve
      or maintain a positive clinical response, as shown by reduced itch or affected body
      surface area.<br>Approval is for 12&nbsp;months.</p>
    <p class="strikeThrough">Approval of the initial course is for 4 months.</p>
    <p>The &ldquo;initial&rdquo; approval is for 6 months &mdash; see Appendix.</p>
    <h3>Experimental, Investigational, or Unproven</h3>
    <p>Aetna considers dupilumab experimental, investigational, or unproven for all other
      indications because its effectiveness for them has not been established.</p>
    <div style="display: none">Hidden print-only disclaimer text.</div>
    <h2 id="codes">Applicable CPT / HCPCS / ICD-10 Codes</h2>
    <table id="complexTable">
      <caption>CPT Codes / HCPCS Codes / ICD-10 Codes</caption>
      <tr><th colspan="2"><h3 class="cptHeading">
        <strong>Other CPT codes related to the CPB</strong>:</h3></th></tr>
      <tr><td class="cptCode">96372</td>
        <td>Therapeutic, prophylactic, or diagnostic injection; subcutaneous</td></tr>
      <tr><th colspan="2">
        <strong>HCPCS codes covered if selection criteria are met</strong>:</th></tr>
      <tr><td class="cptCode">J3590</td>
        <td>Unclassified biologics <span class="strikeThrough">[dupilumab]</span></td></tr>
      <tr><td></td><td></td></tr>
      <tr><th colspan="2">
        <strong>ICD-10 codes covered if selection criteria are met</strong>:</th></tr>
      <tr><td class="cptCode">L20.81 - L20.89</td><td>Other atopic dermatitis</td></tr>
    </table>
    <h2 id="background">Background</h2>
    <p>Atopic dermatitis is a chronic inflammatory skin disease. Dupilumab blocks the
      interleukin-4 receptor alpha subunit.</p>
    <table class="layout"><tr><td>
      <table><tr><td>Note</td></tr><tr><td>A one-column box read as text.</td></tr></table>
    </td></tr></table>
    <noscript>Please enable JavaScript.</noscript>
    <form><input name="q"><button>Search</button></form>
  </main>
  <aside class="related">Related CPBs: 0140</aside>
  <footer>&copy; 2026 Aetna Inc. <a href="/privacy">Privacy</a></footer>
  <div class="menu"><ul><li>Menu item</li></ul></div>
</body>
</html>
"""


@pytest.fixture(scope="module")
def cpb() -> PolicyDocument:
    return parse_document(CPB.encode(), "text/html; charset=utf-8", document_id="aetna-0975")


def _all(document: PolicyDocument) -> str:
    return "\n".join(s.text for s in document.sections)


def test_title_drops_site_suffix(cpb: PolicyDocument) -> None:
    assert cpb.content_type == "html"
    assert cpb.title == "Dupilumab (Dupixent)"
    assert cpb.pages == 0


def test_meta_tags(cpb: PolicyDocument) -> None:
    assert cpb.meta_value("policy_number") == "0975"
    assert cpb.meta_value("last_review") == "2026-02-10"
    assert cpb.meta_value("next_review") == "2027-02-10"
    assert cpb.meta_value("policy_type") == "Medical"
    assert cpb.meta_value("description") == (
        "Aetna considers dupilumab medically necessary for atopic dermatitis when criteria are met."
    )
    keys = [key for key, _ in cpb.meta]
    assert keys[:3] == ["policy_number", "last_review", "next_review"]


def test_sections_from_headings(cpb: PolicyDocument) -> None:
    assert [s.name for s in cpb.sections] == [
        "preamble",
        "scope of policy",
        "medical necessity",
        "continuation of therapy",
        "experimental, investigational, or unproven",
        "applicable codes",  # no text of its own, kept because its table points to it
        "background",
    ]
    assert cpb.sections[0].text == "Number: 0975"
    assert next(s for s in cpb.sections if s.name == "applicable codes").text == ""
    assert all(s.page_offsets == () for s in cpb.sections)


def test_text_is_clean_and_revisions_applied(cpb: PolicyDocument) -> None:
    necessity = next(s for s in cpb.sections if s.name == "medical necessity").text
    assert necessity.split("\n") == [
        "Aetna considers dupilumab medically necessary for members with moderate-to-severe "
        "atopic dermatitis when all of the following criteria are met:",
        "Member is 6 months of age or older; and",
        "Member has had an inadequate response to a medium-potency or higher topical "
        "corticosteroid used for at least 8 weeks; and",
        "Dupilumab is prescribed by or in consultation with a dermatologist.",
    ]
    continuation = next(s for s in cpb.sections if s.name == "continuation of therapy").text
    assert continuation.split("\n") == [
        "Aetna considers continuation of dupilumab medically necessary for members who achieve "
        "or maintain a positive clinical response, as shown by reduced itch or affected body "
        "surface area.",
        "Approval is for 12 months.",
        'The "initial" approval is for 6 months - see Appendix.',
    ]
    scope = next(s for s in cpb.sections if s.name == "scope of policy").text
    assert scope == (
        "This Clinical Policy Bulletin addresses dupilumab (Dupixent) for the treatment of "
        "atopic dermatitis."
    )


def test_chrome_and_hidden_text_removed(cpb: PolicyDocument) -> None:
    text = _all(cpb) + "\n".join(" ".join(row) for t in cpb.tables for row in t.rows)
    for noise in (
        "Skip to main content",
        "Home",
        "cookies",
        "dataLayer",
        "line-through",
        "generated",
        "Table Of Contents",
        "Hidden print-only",
        "enable JavaScript",
        "Search",
        "Related CPBs",
        "Privacy",
        "Menu item",
        "4 weeks",
        "4 months",
        "[dupilumab]",
    ):
        assert noise not in text, noise


def test_tables(cpb: PolicyDocument) -> None:
    (codes,) = cpb.tables
    assert codes.section == "applicable codes"  # "Applicable CPT / HCPCS / ICD-10 Codes"
    assert codes.page is None
    assert codes.rows == (
        ("Other CPT codes related to the CPB:",),
        ("96372", "Therapeutic, prophylactic, or diagnostic injection; subcutaneous"),
        ("HCPCS codes covered if selection criteria are met:",),
        ("J3590", "Unclassified biologics"),
        ("ICD-10 codes covered if selection criteria are met:",),
        ("L20.81 - L20.89", "Other atopic dermatitis"),
    )
    background = next(s for s in cpb.sections if s.name == "background").text
    assert background.endswith("Note\nA one-column box read as text.")
    assert "96372" not in _all(cpb)


def test_deterministic(cpb: PolicyDocument) -> None:
    assert parse_document(CPB.encode(), "text/html", document_id="aetna-0975") == cpb
    # Re-indented markup, other attributes and a different comment are the same document.
    reformatted = (
        CPB.replace("\n    <p>", "\n<p>")
        .replace('class="numberData"', 'class="numberData v2" data-x="1"')
        .replace("cms build 8812", "cms build 9001")
    )
    assert parse_document(reformatted.encode(), "text/html") == cpb


def test_p_strong_headings_need_to_be_alone() -> None:
    html = (
        "<html><head><title>Policy</title></head><body><h1>Policy</h1>"
        "<p><strong>Criteria</strong></p><p>Members must meet <strong>all</strong> of these.</p>"
        "<p><strong>Note:</strong> this is a sentence with a label, not a heading.</p>"
        "<p>" + "Filler text about the policy. " * 10 + "</p></body></html>"
    )
    document = parse_document(html.encode(), "text/html")
    assert [s.name for s in document.sections] == ["criteria"]
    assert document.sections[0].text.split("\n")[:2] == [
        "Members must meet all of these.",
        "Note: this is a sentence with a label, not a heading.",
    ]


@pytest.mark.parametrize(
    "page",
    [
        "<html><head><title>Access Denied</title></head><body><h1>Access Denied</h1>"
        "<p>You don't have permission to access this server.</p></body></html>",
        "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
        "<p>Checking your browser before accessing aetna.com.</p></body></html>",
        "<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>",
        "<html><head><title>Aetna</title></head><body><h1>Page not found</h1>"
        "<p>The page you requested could not be found. " + "Try the search. " * 30 + "</p>"
        "</body></html>",
        "<html><head><title>Clinical Policy Bulletin</title></head><body>"
        "<p>Loading, please wait</p></body></html>",
    ],
    ids=["access-denied", "bot-challenge", "404", "not-found", "almost-no-text"],
)
def test_error_pages_are_refused(page: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_document(page.encode(), "text/html", document_id="cpb")
    assert caught.value.reason.startswith("looks like an error page: ")


def test_error_words_inside_a_real_document_are_fine(cpb: PolicyDocument) -> None:
    html = CPB.replace(
        "atopic dermatitis.</p>", "atopic dermatitis. Access denied claims may be appealed.</p>"
    )
    assert parse_document(html.encode(), "text/html").title == cpb.title


def test_empty_html() -> None:
    with pytest.raises(ParseError, match="empty document"):
        parse_document(b"", "text/html")


@pytest.mark.parametrize(
    ("content", "declared", "expected"),
    [
        (b"%PDF-1.7\n...", "text/html", "pdf"),
        (b"\xef\xbb\xbf  <!DOCTYPE html><html><body>x</body></html>", "application/pdf", "html"),
        (b"<p>Fragment</p>", "text/plain", "html"),
        (b"Plain text saved as .html\nPolicy\n", "text/html", "text"),
        (b"Coverage Rationale\n" + b"x" * 3000 + b"<p>quoted markup</p>", "text/html", "text"),
        (b"Text extracted from a PDF\n", "application/pdf", "text"),
        (bytes(range(256)), "application/octet-stream", None),
        (bytes(range(256)), "application/pdf", "pdf"),
    ],
)
def test_format_detection(content: bytes, declared: str, expected: str | None) -> None:
    assert detect_format(content, declared) == expected


def test_binary_of_unknown_type_is_refused() -> None:
    with pytest.raises(ParseError, match="not a PDF, HTML or text"):
        parse_document(bytes(range(256)) * 4, "application/octet-stream")


_TAGS = st.sampled_from(["p", "div", "h2", "h3", "li", "table", "tr", "td", "span", "strong"])
_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)


@given(st.lists(st.tuples(_TAGS, _TEXT), max_size=30))
def test_any_markup_parses_or_raises_parse_error(parts: list[tuple[str, str]]) -> None:
    body = "".join(f"<{tag}>{text}</{tag}>" for tag, text in parts)
    page = f"<html><head><title>T</title></head><body>{body}</body></html>".encode()
    try:
        document = parse_document(page, "text/html")
    except ParseError:
        return
    assert document == parse_document(page, "text/html")
    names = [s.name for s in document.sections]
    assert len(names) == len(set(names))


# The page layout of a real CPB: table-of-contents links under an h2, headings inside ordered
# list items, the codes table's heading in its caption, a policy-history sidebar, a pop-up.
CPB_LAYOUT = """<!DOCTYPE html><html><head>
<title>Example Therapy - Medical Clinical Policy Bulletins | Aetna</title>
<meta name="aet.cpbNumber" content="0999"/><meta name="aet.lastReviewDate" content="2026-06-02"/>
</head><body>
<button id="backTop" title="Go to top">Top</button>
<div class="content-wrapper" role="main">
 <div class="article-header"><h1>Example Therapy</h1></div>
 <div class="row-fluid breadcrumb"><ul><li><a href="/cpb">Clinical Policy Bulletins</a></li></ul>
  <ul class="printShare"><li><a href="" aria-label="Print opens a dialog">Print</a></li></ul></div>
 <div class="span7 bodyContent"><div class="body">
  <p class="numberData"><strong>Number:&nbsp;0999</strong></p>
  <h2>Table Of Contents</h2>
  <a href="#policy"><span class="arrowPurpleSmall">Policy</span></a><br/>
  <a href="#codes"><span class="arrowPurpleSmall">Applicable CPT / HCPCS / ICD-10 Codes</span></a>
  <br/><br/>
  <a id="policy"></a><hr class="separator"/><h2 class="policyHead">Policy</h2>
  <h3>Scope of Policy</h3><p>This bulletin addresses an example therapy.</p>
  <ol>
   <li><h3>Medical Necessity</h3>
    <ol><li><p>Aetna considers the therapy medically necessary when all of the following are
     met:</p>
     <ol><li>The member&rsquo;s condition can improve within one month; <em>and</em></li>
      <li>A written plan of care is in place (see <a href="#appendix">Appendix A</a>).</li></ol>
    </li></ol>
   </li>
   <li><h3>Experimental, Investigational, or Unproven</h3>
    <ol><li>Example taping</li><li>Example vibration therapy</li></ol></li>
  </ol>
  <table id="complexTable">
   <caption class="tableCaptionClass"><span class="tableCaptionText"><span class="sr-only">Table:
    </span><h2>CPT Codes / HCPCS Codes / ICD-10 Codes</h2></span></caption>
   <thead><tr><th>Code</th><th>Code Description</th></tr></thead>
   <tbody><tr><td colspan="2"><h3 class="cptHeading"><strong>CPT codes covered if selection
    criteria are met</strong>:</h3></td></tr>
   <tr><td class="cptCode">97010</td><td>Application of a modality; hot or cold packs</td></tr>
   <tr><td class="cptCode">97012</td><td>&nbsp;&nbsp;&nbsp;&nbsp;traction, mechanical</td></tr>
   </tbody></table>
 </div></div>
 <div id="sidebar-right"><div class="sidebar-title"><h2>Policy History</h2></div>
  <ul><li><p><a href="javascript:;"><span>Last Review</span></a>&nbsp;06/02/2026</p>
   <p>Next Review:&nbsp;03/25/2027</p></li>
   <li><p><a href="javascript:;"><span>Definitions</span></a></p></li></ul></div>
</div>
<footer><div class="copyright">Copyright Aetna Inc. All rights reserved.</div></footer>
<div class="interout"><div class="interstitial" role="dialog">
 <h2>You are now leaving the Aetna website</h2><p>Links to other sites are provided.</p></div></div>
</body></html>"""


def test_real_cpb_layout() -> None:
    document = parse_document(CPB_LAYOUT.encode(), "text/html", document_id="aetna-0999")
    assert document.title == "Example Therapy"
    assert [s.name for s in document.sections] == [
        "preamble",
        "scope of policy",
        "medical necessity",
        "experimental, investigational, or unproven",
        "applicable codes",
        "policy history/revision information",
    ]
    assert document.sections[0].text == "Number: 0999"  # the TOC links went
    assert document.sections[2].text.split("\n") == [
        "Aetna considers the therapy medically necessary when all of the following are met:",
        "The member's condition can improve within one month; and",
        "A written plan of care is in place (see Appendix A).",
    ]
    (codes,) = document.tables
    assert codes.section == "applicable codes"
    assert codes.rows[0] == ("Code", "Code Description")
    assert codes.rows[1] == ("CPT codes covered if selection criteria are met:",)
    assert codes.rows[3] == ("97012", "traction, mechanical")
    history = document.sections[-1].text
    # The sidebar's bare "Definitions" link, after the last main-content block, is site chrome
    # (issue 13: trafilatura's main content as a filter); the review dates stay as facts.
    assert history.split("\n") == [
        "Last Review 06/02/2026",
        "Next Review: 03/25/2027",
    ]
    everything = "\n".join(s.text for s in document.sections)
    for noise in ("Top", "Print", "Table Of Contents", "leaving", "Copyright", "Table:"):
        assert noise not in everything, noise
