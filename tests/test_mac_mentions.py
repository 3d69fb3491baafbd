"""Mentions in MAC bulletins (LCD/Article ids, CPT/HCPCS, ICD-10, drugs), bulletin dates,
bulletin criteria and diffs, and the mac_bulletins options. Pure: no server, no database."""

from __future__ import annotations

import datetime as dt

import pytest

from diffing.mentions import (
    BULLETIN_DOC_TYPE,
    MentionKind,
    bulletin_criteria,
    diff_bulletin,
    find_mentions,
    mentions_in_criteria,
)
from diffing.model import ChangeKind, RawDocument, Severity
from fixtures.mac_sites import MENTIONS, WEEK1, WEEK2, Bulletin, render
from fixtures.mac_sites.content import QUESTIONS, SITE_A
from monitor.config import parse_config
from monitor.errors import ConfigError
from sources.mac_bulletins import bulletin_date, bulletin_key
from sources.mac_crawl import canonical_page


def _values(text: str) -> set[str]:
    return {m.value for m in find_mentions(text)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The LCD L39902 was revised.", {"L39902"}),
        ("See the article A57520 for coding.", {"A57520"}),
        ("The proposed LCD DL39902 and draft article DA57520 are open.", {"DL39902", "DA57520"}),
        ("Comments on LCD 39902 close soon.", {"L39902"}),
        ("Report CPT code 17110 for up to 14 lesions.", {"17110"}),
        ("Bill CPT codes 11102-11104 once per lesion.", {"11102", "11103", "11104"}),
        ("Category III code 0479T is reported with 96999.", {"0479T", "96999"}),
        ("Tildrakizumab is given in the office; J3245 per mg.", {"J3245", "tildrakizumab"}),
        ("Apligraf (Q4101) is a skin substitute.", {"Q4101"}),
        ("Atopic dermatitis, unspecified (L20.9) and psoriasis L40.0.", {"L20.9", "L40.0"}),
        ("The diagnosis code L209 must be on the claim.", {"L209"}),
        ("Dupixent and Cosentyx are self-administered.", {"dupilumab", "secukinumab"}),
    ],
)
def test_mentions_found(text: str, expected: set[str]) -> None:
    assert _values(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        # Years and dates, even next to the word "code".
        "The 2026 code update takes effect 01/01/2026 and 2026-01-01.",
        # ZIP codes and ZIP+4 in a sentence about codes, and alone.
        "Mail coding questions to P.O. Box 3096, Camp Hill, PA 17099.",
        "Our billing code office is in Fargo, ND 58108-6722.",
        "The office at 12345 Main Street is closed.",
        # Phone and fax numbers.
        "Call 1-877-555-0142 or fax 717-555-0143 about codes.",
        # Page numbers, issue numbers, change requests, transmittals, MLN articles.
        "Page 12 of 40. Issue 2026-02 lists codes.",
        "CR 13512 (MM13512, Transmittal 12874) updates the code set.",
        "Change Request 13456 revises billing codes.",
        # Amounts and doses.
        "Codes paid $12,345 and $10000 last year; 10000 units were billed.",
        # Five digits with no word about codes.
        "Registration 48213 is confirmed for the webinar.",
        # Dotless ICD-looking tokens without a word about diagnoses; sections and versions.
        "Jurisdiction J15 and J5 questions go to the portal, version V12.3.",
        "As section A12.3 says, vitamin B12 is not a code.",
        # Form numbers and paths.
        "Use Form CMS-1500 and see /web/jeb/12345.",
    ],
)
def test_not_mentions(text: str) -> None:
    assert _values(text) == set()


def test_code_list_rows_keep_the_header_context() -> None:
    text = (
        "The edits apply to these codes.\nCode Description\n96910 Photochemotherapy\n"
        "96912 Photochemotherapy\n96913 Photochemotherapy\nOur office, 17011 Main, is open."
    )
    assert _values(text) == {"96910", "96912", "96913"}


def test_mention_kinds_and_links() -> None:
    mentions = {m.value: m for m in find_mentions("Proposed LCD DL39902 replaces L39902; J0517.")}
    assert mentions["DL39902"].kind is MentionKind.LCD
    assert mentions["DL39902"].document_key == mentions["L39902"].document_key == "L39902"
    assert mentions["J0517"].kind is MentionKind.HCPCS and mentions["J0517"].document_key is None
    assert "DL39902" in mentions["DL39902"].sentence


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("02/03/2026", dt.date(2026, 2, 3)),
        ("02-03-2026", dt.date(2026, 2, 3)),
        ("February 3, 2026", dt.date(2026, 2, 3)),
        ("Feb 3, 2026", dt.date(2026, 2, 3)),
        ("Posted: Feb. 3, 2026", dt.date(2026, 2, 3)),
        ("2026-02-03", dt.date(2026, 2, 3)),
        ("2026-02-03T14:00:00Z", dt.date(2026, 2, 3)),
        ("Tue, 03 Feb 2026 14:00:00 GMT", dt.date(2026, 2, 3)),
        # Late evening in the MAC's time zone is already tomorrow in UTC: keep the MAC's day.
        ("Tue, 03 Feb 2026 23:30:00 -0500", dt.date(2026, 2, 3)),
        ("sometime soon", None),
        ("", None),
    ],
)
def test_bulletin_dates(text: str, expected: dt.date | None) -> None:
    assert bulletin_date(text) == expected


def test_bulletin_key_is_the_path_without_tracking() -> None:
    url = "https://example.org/webcenter/pagebyid?contentId=00284581&utm_source=rss#top"
    assert bulletin_key(url) == "/webcenter/pagebyid?contentId=00284581"


def _raw(bulletin: Bulletin) -> RawDocument:
    """The bytes the crawler hands over: the canonical article page, or the PDF."""
    if bulletin.pdf:
        content, content_type = render.site_b_pdf(bulletin), "application/pdf"
    else:
        page = render.site_a_article if bulletin.site == SITE_A else render.site_b_article
        html_page = page(bulletin)
        start = html_page.index("<div class=") if bulletin.site == SITE_A else 0
        body = html_page[start:] if start else html_page
        content = canonical_page(bulletin.title, bulletin.date.isoformat(), body)
        content_type = "text/html; charset=utf-8"
    return RawDocument(
        source="mac",
        key=bulletin.path,
        url=f"http://127.0.0.1{bulletin.path}",
        content=content,
        content_type=content_type,
        fetched_at=dt.datetime(2026, 2, 10, tzinfo=dt.UTC),
        title=bulletin.title,
        doc_type=BULLETIN_DOC_TYPE,
        source_meta=(("mac", "Novitas"), ("bulletin_date", bulletin.date.isoformat())),
    )


@pytest.mark.parametrize(
    "bulletin", sorted({*WEEK1, *WEEK2}, key=lambda b: b.path), ids=lambda b: b.path[-40:]
)
def test_fixture_bulletins_mention_exactly_the_manifest(bulletin: Bulletin) -> None:
    criteria = bulletin_criteria(_raw(bulletin))
    assert criteria.doc_type == BULLETIN_DOC_TYPE and criteria.effective_date == bulletin.date
    assert {m.value for m in mentions_in_criteria(criteria)} == MENTIONS[bulletin.path]


def test_new_bulletin_is_published_with_its_mentions() -> None:
    criteria = bulletin_criteria(_raw(next(b for b in WEEK2 if "00284601" in b.path)))
    (change,) = diff_bulletin(None, criteria, today=dt.date(2026, 2, 10)).changes
    assert change.kind is ChangeKind.BULLETIN_PUBLISHED and change.severity is Severity.MEDIUM
    assert change.after is not None
    assert change.after.startswith("Novitas bulletin of 2026-02-03 mentions L33979, A57520")
    assert "L33979" in (change.evidence or "")
    news = bulletin_criteria(_raw(QUESTIONS))
    (plain,) = diff_bulletin(None, news, today=dt.date(2026, 2, 10)).changes
    assert plain.severity is Severity.LOW and plain.after == "Novitas bulletin of 2026-02-06"


def test_edited_bulletin_is_a_text_change_naming_new_mentions() -> None:
    old = bulletin_criteria(_raw(QUESTIONS))
    edited = Bulletin(
        site=QUESTIONS.site,
        path=QUESTIONS.path,
        title=QUESTIONS.title,
        date=QUESTIONS.date,
        paragraphs=(*QUESTIONS.paragraphs, "Ordering providers must also follow LCD L33979."),
    )
    diff = diff_bulletin(old, bulletin_criteria(_raw(edited)), today=dt.date(2026, 2, 10))
    assert [c.kind for c in diff.changes] == [ChangeKind.SECTION_CHANGED]
    assert "now also mentions L33979" in (diff.changes[0].evidence or "")
    assert diff_bulletin(old, old, today=dt.date(2026, 2, 10)).is_empty


def _source(**keys: object) -> dict[str, object]:
    return {"sources": [{"name": "mac", "kind": "mac_bulletins", "mac": "Novitas", **keys}]}


def test_options_accept_css_and_xpath_selectors() -> None:
    config = parse_config(
        _source(
            listing_urls=["https://mac.example/news"],
            item_selector="xpath://div[@class='news-item']",
            link_selector="h3 a::attr(href)",
        )
    )
    options = config.sources[0].options
    assert options.hosts == ("mac.example",)
    assert config.sources[0].schedule.expression == "0 */4 * * *"


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({}, "give listing_urls"),
        ({"listing_urls": ["https://mac.example/news"]}, "need an item_selector"),
        ({"feed_url": "ftp://mac.example/rss"}, r"not an http\(s\) URL"),
        (
            {"feed_url": "https://mac.example/rss", "body_selector": "xpath://div[@id="},
            "not a valid xpath selector",
        ),
        (
            {"feed_url": "https://mac.example/rss", "body_selector": "div[[class"},
            "not a valid css selector",
        ),
        ({"feed_url": "https://mac.example/rss", "selectors": "a"}, "unknown key 'selectors'"),
    ],
)
def test_options_are_validated(keys: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(_source(**keys))
