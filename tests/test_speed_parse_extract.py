"""The parse and extraction shortcuts of issue 17 read as the code they replaced."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from diffing.extract.vocabulary import DRUGS, INDICATIONS, find_terms
from diffing.parse.clean import MIN_TEXT_CHARS, error_page_reason
from diffing.parse.html import _key, parse_html

SENTENCE = "Trial of Humira (adalimumab) or Dupixent for atopic dermatitis and psoriasis."


def test_find_terms_again_on_the_same_text_finds_the_same_and_hands_out_a_fresh_list() -> None:
    first = find_terms(SENTENCE, DRUGS)
    assert [m.canonical for m in first] == ["adalimumab", "adalimumab", "dupilumab"]
    first.clear()  # a caller's own list: the remembered result is not touched
    again = find_terms(SENTENCE, DRUGS)
    assert [(m.start, m.canonical) for m in again] == [
        (SENTENCE.index("Humira"), "adalimumab"),
        (SENTENCE.index("adalimumab"), "adalimumab"),
        (SENTENCE.index("Dupixent"), "dupilumab"),
    ]


def test_find_terms_remembers_per_vocabulary() -> None:
    drugs = {m.canonical for m in find_terms(SENTENCE, DRUGS)}
    indications = {m.canonical for m in find_terms(SENTENCE, INDICATIONS)}
    assert "dupilumab" in drugs
    assert "atopic dermatitis" in indications
    assert drugs.isdisjoint(indications)


@given(st.text(max_size=60))
def test_key_keeps_exactly_what_isalnum_keeps(text: str) -> None:
    assert _key(text) == "".join(ch for ch in text.lower() if ch.isalnum())


def test_key_drops_underscores_and_punctuation() -> None:
    assert _key("Step_Therapy: Humira®, 12 wks — ½ dose") == "steptherapyhumira12wks½dose"


@given(st.text(alphabet=st.sampled_from("ab \t\n\u00a0\u2003\u3000x"), max_size=400))
def test_error_page_counts_the_characters_that_are_not_space(text: str) -> None:
    visible = sum(1 for c in text if not c.isspace())
    reason = error_page_reason("A policy", text)
    if visible < MIN_TEXT_CHARS:
        assert reason == f"almost no text ({visible} characters)"
    else:
        assert reason is None


def test_chrome_goes_and_a_page_with_a_decomposed_named_element_still_parses() -> None:
    body = " ".join(["Aetna considers adalimumab medically necessary for psoriasis."] * 8)
    page = f"""<html><head><title>Adalimumab - Clinical Policy Bulletins | Aetna</title></head>
    <body><div class="navbar">Home Menu Login</div>
    <h2>Policy</h2><_decomposed><p>{body}</p></_decomposed>
    <div class="cookie-consent">We use cookies</div></body></html>"""
    document = parse_html(page.encode(), document_id="/x")
    text = "\n".join(section.text for section in document.sections)
    assert "medically necessary" in text
    assert "cookies" not in text
    assert "Login" not in text
