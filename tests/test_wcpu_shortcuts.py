"""The worker's shortcuts answer as the long way did: trafilatura handed the page's tree reads
what it read from the page's markup, and the extractor's early exits and single readings give
what the full searches gave."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import trafilatura
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from parse_chrome_pages import chrome_page
from trafilatura.utils import load_html

from diffing.extract import ages, codes, sentences, steps
from diffing.extract.durations import find_durations
from diffing.parse.html import _extractor, _parse_tree, _strip, _trafilatura_input

GOLDEN_HTML = Path(__file__).parent / "golden" / "parse_aetna_cpb_html" / "input.html"


def _fixture_pages() -> list[bytes]:
    from fixtures.payer_site.site import PayerSite, body

    site = PayerSite(documents=40, html_only=True)
    pages = []
    for scenario in ("week1", "week2"):
        for path in sorted(site.document_paths(scenario))[::4]:
            resource = site.lookup(scenario, path)
            assert resource is not None
            pages.append(body(resource).data)
    return pages


def _pages() -> list[bytes]:
    return [
        chrome_page(0).encode(),
        chrome_page(1).encode(),
        GOLDEN_HTML.read_bytes(),
        *_fixture_pages(),
    ]


def _main(page: etree._Element | str) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trafilatura.extract(page, options=_extractor())


def _stripped(content: bytes) -> etree._Element:
    root = _parse_tree(content)
    assert root is not None
    _strip(root)
    return root


def test_trafilatura_reads_the_tree_as_it_read_the_markup() -> None:
    for content in _pages():
        root = _stripped(content)
        markup = etree.tostring(root, method="html", encoding="unicode")
        assert _trafilatura_input(root) is root
        # The tree trafilatura built from the markup is this one: it writes the same markup.
        again = load_html(markup)
        assert again is not None
        assert etree.tostring(again, method="html", encoding="unicode") == markup
        assert _main(root) == _main(markup)
        assert etree.tostring(root, method="html", encoding="unicode") == markup  # copied


@pytest.mark.parametrize(
    "body",
    [
        "<p>Form\x0cfeed and a bell\x07 that libxml2 keeps and trafilatura's load drops.</p>",
        "<p>A noncharacter \ufffe in the text.</p>",
        "<p title='a\x0bb'>A forbidden character in an attribute.</p>",
    ],
)
def test_markup_that_load_html_repairs_goes_as_markup(body: str) -> None:
    page = f"<html><head><title>T</title></head><body>{body}</body></html>"
    root = _stripped(page.encode())
    handed = _trafilatura_input(root)
    assert handed == etree.tostring(root, method="html", encoding="unicode")


def test_a_tree_of_other_classes_goes_as_markup() -> None:
    root = etree.fromstring("<html><body><p>Text of a page.</p></body></html>", etree.HTMLParser())
    assert isinstance(_trafilatura_input(root), str)


PROSE = [
    "Report CPT code 81445 for the panel; ICD-10 C34.90 applies.",
    "Codes G30. 0 - G30.9 are covered; bill with HCPCS J0517.",
    "The member has tried two of the following for 8 weeks:",
    "No codes are named here, nor numbers; and",
    "Members aged eighteen years or older; under the age of six are excluded.",
    "Patients 6 months of age and older, between 12 and 17 years old.",
    "diagnosis code E11.9 (type 2 diabetes) and B12",
    "Approved for up to twelve months, renewed every 6 Mos.",
    "Inadequate response to ONE of the following:",
    "Failure of methotrexate and a 3-month trial of cyclosporine",
    "Dupixent will be approved when the member has moderate disease.",
    "History of intolerance to all of the following therapies:",
    "٣٤٥٦٧ is a code written in other digits; codes",
    "",
]


@given(st.sampled_from(PROSE) | st.text())
def test_codes_in_prose_without_digits_is_the_long_way(text: str) -> None:
    for in_list in (False, True):
        short = codes.codes_in_prose(text, in_code_list=in_list)
        saved, codes._DIGIT = codes._DIGIT, re.compile("")
        try:
            assert short == codes.codes_in_prose(text, in_code_list=in_list)
        finally:
            codes._DIGIT = saved


@given(st.sampled_from(PROSE) | st.text())
def test_age_limits_without_numbers_is_the_long_way(text: str) -> None:
    short = ages.find_age_limits(text)
    saved, ages._ANY_NUMBER = ages._ANY_NUMBER, re.compile("")
    try:
        assert short == ages.find_age_limits(text)
    finally:
        ages._ANY_NUMBER = saved


def _steps_long_way(text: str, lead: steps.StepLead | None) -> object:
    """What `find_steps` came to for a sentence that names no prerequisite, step by step."""
    zones, overrides = steps._overrides(text)
    exclusions = [
        steps._Zone(start=m.start(), end=m.end()) for m in steps._EXCLUSION.finditer(text)
    ]
    trigger = steps.STEP_TRIGGER.search(text)
    durations = [
        d
        for d in find_durations(text)
        if d.is_trial_length and not steps._inside(zones + exclusions, d)
    ]
    if lead is None:
        counts = steps._counts(text)
        return [], steps._lead(text, trigger is not None, counts, durations, overrides)
    return [], None


# The sentences the shortcut applies to (one naming a therapy is read the long way anyway):
# chosen here rather than skipped in the test (CI fails on a skip it was not told of).
NO_THERAPY = [text for text in PROSE if not steps.find_terms(text, steps._STEP_TERMS)]


def test_some_prose_names_no_therapy() -> None:
    assert len(NO_THERAPY) >= len(PROSE) // 2


@pytest.mark.parametrize("text", NO_THERAPY)
@pytest.mark.parametrize("lead", [None, steps.StepLead(count_required=1, min_duration_days=56)])
def test_steps_of_a_sentence_naming_no_therapy_are_the_long_way(
    text: str, lead: steps.StepLead | None
) -> None:
    assert not steps.find_terms(text, steps._STEP_TERMS)
    assert steps.find_steps(text, lead=lead) == _steps_long_way(text, lead)


CODE_LINES = [
    "J0517 Injection, benralizumab, 1 mg",
    "11400 - 11446 Excision of benign lesion",
    "Afirma 81546",
    "Afirma Xpression Atlas 0204U",
    "NSCLCMET0022U",
    "81445 + 81479",
    "Targeted genomic sequence analysis panel 81445",
    "Not a code line at all.",
    "C34.90 Malignant neoplasm of unspecified part of lung",
]


@pytest.mark.parametrize("line", CODE_LINES)
def test_a_code_line_read_without_short_rows_reads_the_same_with_them(line: str) -> None:
    plain = codes._table_line_codes(line)
    if plain is not None:
        assert codes._table_line_codes(line, short_rows=True) == plain


@given(
    st.sampled_from([*PROSE, "renewal after the initial 6 months", "First, continued"]) | st.text()
)
def test_named_phase_after_its_first_search_is_the_long_way(text: str) -> None:
    hits = [(m.start(), phase) for phase, p in sentences._PHASE_WORDS if (m := p.search(text))]
    assert sentences.named_phase(text) == (min(hits)[1] if hits else None)
