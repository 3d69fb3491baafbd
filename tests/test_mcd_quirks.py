"""The export reader survives the quirks of the real files: a header-less CSV, upper- and
lower-case NCD headers, stray cp1252 bytes and an HTML field over a megabyte. Each variant must
give exactly the criteria of the plain export."""

from __future__ import annotations

import asyncio
import json
import logging
import zipfile
from pathlib import Path

import pytest

from diffing.cms import cms_criteria
from diffing.model import Criteria, RawDocument
from fixtures.mcd_export import ExportQuirks, export_directory
from monitor.config import parse_config
from sources.mcd_downloads import McdDownloadsOptions, McdDownloadsSource

ZIPS = ("current_lcd.zip", "current_article.zip", "ncd.zip")
PLAIN = ExportQuirks(headerless=frozenset(), cp1252_row=False, huge_field_bytes=0)


def _options() -> McdDownloadsOptions:
    source = parse_config(
        {"sources": [{"name": "mcd", "kind": "mcd_downloads", "base_url": "http://127.0.0.1:9"}]}
    ).source("mcd")
    assert isinstance(source.options, McdDownloadsOptions)
    return source.options


def _documents(directory: Path) -> dict[tuple[str, str], RawDocument]:
    """Every document version of the export zips in `directory`, read from disk."""

    async def read() -> dict[tuple[str, str], RawDocument]:
        source = McdDownloadsSource(
            name="mcd", options=_options(), export_files={n: directory / n for n in ZIPS}
        )
        try:
            listing = await source.list_documents({})
            assert not listing.problems
            return {
                (raw.key, raw.source_version or ""): raw
                async for raw in source.fetch(listing.documents)
                if isinstance(raw, RawDocument)
            }
        finally:
            await source.aclose()

    return asyncio.run(read())


def _criteria(directory: Path) -> dict[tuple[str, str], Criteria]:
    return {key: cms_criteria(raw.content) for key, raw in _documents(directory).items()}


@pytest.fixture(scope="module")
def plain() -> dict[tuple[str, str], Criteria]:
    return _criteria(export_directory("week2", quirks=PLAIN))


def test_header_less_files_are_read_in_the_known_column_order(
    plain: dict[tuple[str, str], Criteria], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="policy_monitor.sources.mcd")
    headerless = frozenset({"lcd_x_contractor.csv", "article_x_icd10_covered.csv", "ncd_trkg.csv"})
    directory = export_directory(
        "week2", quirks=ExportQuirks(headerless=headerless, cp1252_row=False, huge_field_bytes=0)
    )
    with (
        zipfile.ZipFile(directory / "ncd.zip") as outer,
        zipfile.ZipFile(outer.open("ncd_csv.zip")) as inner,
    ):
        first = inner.read("ncd_trkg.csv").split(b"\r\n", 1)[0]
    assert first.split(b",")[0].isdigit()  # really no header row: data from the first line
    assert _criteria(directory) == plain
    assert "header-less: article_x_icd10_covered.csv" in caplog.text
    assert any(len(c.codes) > 5 for c in plain.values())  # the codes were there to lose


@pytest.mark.parametrize("case", ["upper", "lower"])
def test_ncd_headers_in_any_case(plain: dict[tuple[str, str], Criteria], case: str) -> None:
    quirks = ExportQuirks(
        headerless=frozenset(), cp1252_row=False, huge_field_bytes=0, ncd_header_case=case
    )
    got = _criteria(export_directory("week2", quirks=quirks))
    assert got == plain
    assert got[("NCD 270.1", "4")].section("indications_limitations") is not None


def test_stray_cp1252_bytes_are_decoded_counted_and_logged(
    plain: dict[tuple[str, str], Criteria], caplog: pytest.LogCaptureFixture
) -> None:
    quirks = ExportQuirks(headerless=frozenset(), cp1252_row=True, huge_field_bytes=0)
    directory = export_directory("week2", quirks=quirks)
    with (
        zipfile.ZipFile(directory / "current_lcd.zip") as outer,
        zipfile.ZipFile(outer.open("current_lcd_csv.zip")) as inner,
    ):
        raw = inner.read("lcd.csv")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert b"\x92" in raw  # a cp1252 right single quote
    caplog.set_level(logging.WARNING, logger="policy_monitor.sources.mcd")
    got = _criteria(directory)
    assert got == plain
    indication = got[("L34216", "16")].section("indication")
    assert indication is not None and "\ufffd" not in indication.text
    assert "lcd.csv: 3 byte(s) were not UTF-8; read as cp1252" in caplog.text


def test_an_html_field_over_a_megabyte_is_read(plain: dict[tuple[str, str], Criteria]) -> None:
    quirks = ExportQuirks(headerless=frozenset(), cp1252_row=False, huge_field_bytes=3_000_000)
    documents = _documents(export_directory("week2", quirks=quirks))
    sizes = {
        key: len(json.loads(raw.content)["detail"].get("bibliography") or "")
        for key, raw in documents.items()
        if key[0].startswith("L")
    }
    assert max(sizes.values()) >= 3_000_000  # csv's default field limit is 131,072
    assert {key: cms_criteria(raw.content) for key, raw in documents.items()} == plain
