"""Excel workbooks (state PDLs published as .xlsx) to a `PolicyDocument`: one `Table` per sheet.

Cells are read as values (formulas resolved to what Excel last stored), whitespace collapsed,
empty rows and trailing empty cells dropped. Each sheet also becomes a section of its rows as
text, so text diffing and verification see the same words. Row changes between two versions are
found by `table_row_changes`.
"""

from __future__ import annotations

import datetime as dt
import io
import warnings
import zipfile

from diffing.model import Change, PolicyDocument, Section, Table
from diffing.rows import table_row_changes
from monitor.errors import ParseError

XLSX_CONTENT_TYPES = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-excel.sheet.macroenabled.12",
        "xlsx",
    }
)
_MAX_ROWS_SHOWN = 5


def is_xlsx(content: bytes) -> bool:
    """A zip archive holding an Excel workbook part."""
    if not content.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split())


def parse_xlsx(content: bytes, *, document_id: str = "?") -> PolicyDocument:
    """Every sheet's non-empty rows as a `Table` (section = sheet name) and a section of text."""
    import openpyxl  # only the xlsx path pays for importing it

    try:
        with warnings.catch_warnings():
            # Print areas and headers openpyxl cannot read are layout, not content.
            warnings.simplefilter("ignore", UserWarning)
            workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
            sheets = [
                (ws.title, list(ws.iter_rows(values_only=True))) for ws in workbook.worksheets
            ]
            workbook.close()
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ParseError(document_id, f"unreadable Excel workbook: {exc}") from exc
    tables: list[Table] = []
    sections: list[Section] = []
    for title, raw_rows in sheets:
        rows = []
        for raw in raw_rows:
            cells = [_cell(value) for value in raw]
            while cells and not cells[-1]:
                cells.pop()
            if any(cells):
                rows.append(tuple(cells))
        if not rows:
            continue
        name = " ".join(title.split()).lower()
        tables.append(Table(rows=tuple(rows), section=name))
        text = "\n".join(" | ".join(cell for cell in row if cell) for row in rows)
        sections.append(Section(name=name, text=text))
    if not tables:
        raise ParseError(document_id, "Excel workbook without any filled cell")
    title = sheets[0][0] if sheets else ""
    return PolicyDocument(
        title=title, content_type="xlsx", sections=tuple(sections), tables=tuple(tables)
    )


def workbook_row_changes(
    old: PolicyDocument, new: PolicyDocument, *, effective_date: dt.date | None = None
) -> list[Change]:
    """`table_row_changes` sheet by sheet (matched by sheet name); a sheet only in one
    version gives all its rows as added or removed."""
    empty = Table(rows=())
    old_tables = {t.section: t for t in old.tables}
    new_tables = {t.section: t for t in new.tables}
    changes: list[Change] = []
    for name in list(old_tables) + [n for n in new_tables if n not in old_tables]:
        before = old_tables.get(name, Table(rows=(), section=name))
        after = new_tables.get(name, Table(rows=(), section=name))
        if before.rows != after.rows:
            changes.extend(table_row_changes(before or empty, after, effective_date=effective_date))
    return changes
