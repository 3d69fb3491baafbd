"""MCD export tables the CSV reader marks `plain_text` give the bundle bytes that checking
their values gives (`diffing.mcd.ExportBundles.bundle` skips that check for them), and a
table not so marked is still checked: a float in it is written as json writes it."""

from __future__ import annotations

import dataclasses
import json

from test_mcd_mapping import _lcd_data
from test_mcd_quirks import _options

from diffing.mcd import EXPORTS, ExportBundles, ExportData
from fixtures.mcd_export import export_directory
from sources.mcd_archive import read_export
from sources.mcd_downloads import McdDownloadsOptions


def _unmarked(data: ExportData) -> ExportData:
    tables = {n: dataclasses.replace(t, plain_text=False) for n, t in data.tables.items()}
    return dataclasses.replace(data, tables=tables)


def test_read_tables_are_marked_and_give_the_bundles_checked_tables_give() -> None:
    options = _options()
    assert isinstance(options, McdDownloadsOptions)
    directory = export_directory("week1")
    compared = 0
    for spec in EXPORTS:
        data, _stats = read_export(
            directory / spec.zip_name, spec, source="mcd", limits=options.limits
        )
        assert data.tables and all(table.plain_text for table in data.tables.values())
        marked, checked = ExportBundles(data), ExportBundles(_unmarked(data))
        for version in marked.versions():
            assert marked.bundle(version) == checked.bundle(version)
            compared += 1
    assert compared > 10


def test_an_unmarked_table_is_checked_and_written_as_json_writes_it() -> None:
    data = _lcd_data("A", "", [("1", "1")])
    main = data.tables["lcd.csv"]
    (key,) = main.by_document
    (row,) = main.by_document[key]
    at = main.columns.index("indication")
    odd = dataclasses.replace(main, by_document={key: [(*row[:at], 1e-05, *row[at + 1 :])]})
    # Every other table marked: only the detail record (the main table's row) is checked.
    marked = {n: dataclasses.replace(t, plain_text=True) for n, t in data.tables.items()}
    bundles = ExportBundles(dataclasses.replace(data, tables={**marked, "lcd.csv": odd}))
    [version] = list(bundles.versions())
    content = bundles.bundle(version)
    assert b'"indication":1e-05' in content  # json's digits (orjson writes 0.00001)
    assert json.loads(content)["detail"]["indication"] == 1e-05
