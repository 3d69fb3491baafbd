"""The HTML parse on one lxml tree: the shortcuts it takes give what the long way gave."""

from __future__ import annotations

from typing import Any

import pytest
import trafilatura
import trafilatura.core
from hypothesis import given
from hypothesis import strategies as st

from diffing.parse import parse_document
from diffing.parse.clean import (
    _DASHES,
    _LEADING_PRIVATE_USE,
    _PRIVATE_USE,
    _SOFT_HYPHEN,
    clean_line,
)
from diffing.parse.html import _NOT_ALNUM, _extractor, _key, _parse_tree, _strip
from diffing.parse.meta import header_meta
from diffing.text import normalize_text

FILLER = " ".join(
    "Aetna considers this treatment medically necessary when the member meets the criteria."
    for _ in range(4)
)


def _page(body: str) -> bytes:
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Mohs Surgery</title>
    </head><body><main><h2>Policy</h2><p>{FILLER}</p>{body}</main></body></html>""".encode()


def _texts(content: bytes) -> str:
    document = parse_document(content, "text/html", document_id="t")
    return "\n".join(section.text for section in document.sections)


def test_text_around_removed_markup_stays_in_place() -> None:
    texts = _texts(
        _page(
            "<p>Prior <!-- build 12 -->authorization is <del>not</del> required for "
            "<span style='display: none'>hidden </span>members<?php echo 1 ?> over 18.</p>"
        )
    )
    assert "Prior authorization is required for members over 18." in texts


def test_chrome_inside_chrome_and_chrome_holding_the_heading() -> None:
    root = _parse_tree(
        _page(
            "<div class='site-menu'><div class='navbar'>Find a Doctor</div>Log In</div>"
            "<div class='menu-wrapper'><h2>Coverage</h2><p hidden>Old text</p>"
            "<p>Lesions on the face qualify.</p></div>after"
        )
    )
    assert root is not None
    _strip(root)
    text = " ".join(root.itertext())
    assert "Find a Doctor" not in text and "Log In" not in text and "Old text" not in text
    assert "Coverage Lesions on the face qualify. after" in text


def test_extractor_is_what_extract_builds_from_the_keywords(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = []
    real = trafilatura.core.bare_extraction

    def record(*args: Any, **kwargs: Any) -> Any:
        built.append(kwargs["options"])
        return real(*args, **kwargs)

    monkeypatch.setattr(trafilatura.core, "bare_extraction", record)
    markup = _page("").decode()
    plain = trafilatura.extract(
        markup,
        include_tables=True,
        include_comments=False,
        include_links=False,
        favor_recall=True,
        deduplicate=False,
    )
    assert trafilatura.extract(markup, options=_extractor()) == plain
    mine = _extractor()
    assert built[-1] is mine
    fields = [name for name in type(mine).__slots__ if name != "config"]
    assert {name: getattr(built[0], name) for name in fields} == {
        name: getattr(mine, name) for name in fields
    }
    assert built[0].config is mine.config


@given(st.text())
def test_key_fast_path_is_the_regex(text: str) -> None:
    assert _key(text) == _NOT_ALNUM.sub("", text.lower())


def _clean_line_long_way(text: str) -> str:
    text = _LEADING_PRIVATE_USE.sub(r"\1• ", text)
    text = _PRIVATE_USE.sub("", text)
    ends_soft = text.rstrip().endswith(_SOFT_HYPHEN)
    text = normalize_text(text.replace("\n", " ").translate(_DASHES))
    return text + _SOFT_HYPHEN if ends_soft and text else text


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_clean_line_ascii_path_is_the_long_way(text: str) -> None:
    assert clean_line(text) == _clean_line_long_way(text)


def test_header_meta_compiled_labels() -> None:
    text = "Policy Number: 2026D0045A\nEffective Date: May 1, 2025\nNext Review Date 05/01/2026"
    assert header_meta(text) == [
        ("effective_date", "2025-05-01"),
        ("next_review", "2026-05-01"),
        ("policy_number", "2026D0045A"),
    ]


def test_extractor_options_carry_todays_date_limit() -> None:
    """Built once a day: a process running past midnight does not keep yesterday's options
    (the CI run that crossed midnight found the cached options a day behind `extract`'s)."""
    import datetime as dt

    options = _extractor()
    assert options is _extractor()
    assert options.date_params["max_date"] == dt.date.today().isoformat()
