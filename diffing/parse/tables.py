"""Tables found in a PDF by pdfplumber, cleaned into rows a code extractor can read.

The table finder also returns boxes drawn around text and splits columns under merged header
cells; a table that runs onto the next page comes back as two. All three are mended here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from diffing.parse.clean import clean_line


@dataclass(slots=True)
class PdfTable:
    page: int
    top: float
    rows: list[tuple[str, ...]] = field(default_factory=list)
    last_page: int = 0


def table_rows(raw: list[list[str | None]]) -> list[tuple[str, ...]]:
    """Clean cells, drop empty rows and columns; [] unless it is a real table.

    A box drawn around text (a sidebar, a note) also comes out of the table finder; a real
    table has at least two rows with two or more filled cells.
    """
    rows = [tuple(clean_line(cell or "") for cell in row) for row in raw]
    rows = [row for row in rows if any(row)]
    width = max((len(row) for row in rows), default=0)
    used = [i for i in range(width) if any(i < len(row) and row[i] for row in rows)]
    rows = [tuple(row[i] if i < len(row) else "" for i in used) for row in rows]
    rows = _merge_complementary_columns(rows)
    if sum(1 for row in rows if sum(1 for cell in row if cell) >= 2) < 2:
        return []
    return rows


def _merge_complementary_columns(rows: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Merged header cells make the finder split one column in two, each filled in different
    rows ("CPT Code" in one, the codes in the other); such neighbours are one column."""
    if not rows:
        return rows
    columns: list[list[str]] = []
    for column in zip(*rows, strict=True):
        if columns and not any(a and b for a, b in zip(columns[-1], column, strict=True)):
            columns[-1] = [a or b for a, b in zip(columns[-1], column, strict=True)]
        else:
            columns.append(list(column))
    return [tuple(row) for row in zip(*columns, strict=True)]


def merge_split_tables(
    anchors: list[tuple[int, PdfTable]],
) -> list[tuple[int, PdfTable]]:
    """A table continued on the next page (same columns, no text between) is one table."""
    out: list[tuple[int, PdfTable]] = []
    for anchor, table in anchors:
        if out:
            prev_anchor, prev = out[-1]
            same_shape = len(prev.rows[0]) == len(table.rows[0])
            if prev_anchor == anchor and same_shape and table.page == prev.last_page + 1:
                rows = table.rows[1:] if table.rows[0] == prev.rows[0] else table.rows
                prev.rows.extend(rows)
                prev.last_page = table.page
                continue
        out.append((anchor, table))
    return out
