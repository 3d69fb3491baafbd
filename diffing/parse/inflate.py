"""An inflate budget for pdfminer: its FlateDecode streams are inflated whole and without a
limit, so a few KB of a PDF could become gigabytes in memory (a decompression bomb). Inside
`inflate_budget`, each stream and the document's streams together may inflate only so far;
past that `InflateBudgetExceeded` ends the parse (`diffing.parse.pdf` makes it a ParseError).
"""

from __future__ import annotations

import contextlib
import contextvars
import zlib
from collections.abc import Iterator
from typing import Any

from pdfminer import pdftypes

# Inflate budgets: pdfminer inflates FlateDecode streams whole, without a limit, so a few KB
# of zeros could become gigabytes. A policy's content streams are kilobytes to a few MB.
MAX_STREAM_INFLATED_BYTES = 64 * 1024**2
MAX_DOCUMENT_INFLATED_BYTES = 256 * 1024**2


class InflateBudgetExceeded(Exception):
    """A stream, or the document's streams together, inflated past the budget. Not a
    zlib.error: pdfminer would catch that and retry byte by byte."""


class InflateBudget:
    def __init__(self, per_stream: int, per_document: int) -> None:
        self.per_stream = per_stream
        self.remaining = per_document
        self.exceeded: str | None = None

    def take(self, produced: int, stream_total: int) -> None:
        self.remaining -= produced
        if stream_total > self.per_stream:
            self.exceeded = f"a stream inflates past {self.per_stream:,} bytes"
        elif self.remaining < 0:
            self.exceeded = "the streams together inflate past the document's budget"
        if self.exceeded:
            raise InflateBudgetExceeded(self.exceeded)

    def window(self, stream_total: int) -> int:
        """Most bytes one more step may produce: one past either limit, so passing shows."""
        return max(1, min(self.per_stream - stream_total, self.remaining) + 1)


_budget: contextvars.ContextVar[InflateBudget | None] = contextvars.ContextVar(
    "pdf_inflate_budget", default=None
)


class _BoundedDecompressor:
    """zlib.decompressobj() whose output counts against the budget of the parse in progress."""

    def __init__(self, budget: InflateBudget, *args: Any) -> None:
        self._inner = zlib.decompressobj(*args)
        self._budget = budget
        self._total = 0

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        out = bytearray()
        chunk = self._inner.decompress(data, self._budget.window(self._total))
        while True:
            out += chunk
            self._total += len(chunk)
            self._budget.take(len(chunk), self._total)
            tail = self._inner.unconsumed_tail
            if not tail:
                return bytes(out)
            chunk = self._inner.decompress(tail, self._budget.window(self._total))

    def flush(self, *args: Any) -> bytes:
        out = self._inner.flush(*args)
        self._total += len(out)
        self._budget.take(len(out), self._total)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _BoundedZlib:
    """Stands in for the `zlib` module inside pdfminer.pdftypes: outside a `parse_pdf` call
    it is zlib; inside, `decompress` and `decompressobj` inflate within the budget."""

    error = zlib.error

    def __getattr__(self, name: str) -> Any:
        return getattr(zlib, name)

    @staticmethod
    def decompressobj(*args: Any) -> Any:
        budget = _budget.get()
        return zlib.decompressobj(*args) if budget is None else _BoundedDecompressor(budget, *args)

    @staticmethod
    def decompress(data: bytes, *args: Any) -> bytes:
        budget = _budget.get()
        if budget is None:
            return zlib.decompress(data, *args)
        inflater = _BoundedDecompressor(budget, *args[:1])  # wbits; bufsize is moot
        out = inflater.decompress(data) + inflater.flush()
        if not inflater.eof:
            raise zlib.error("Error -5 while decompressing data: incomplete or truncated stream")
        return out


pdftypes.zlib = _BoundedZlib()  # type: ignore[assignment]


@contextlib.contextmanager
def inflate_budget(per_stream: int, per_document: int) -> Iterator[InflateBudget]:
    """Within this block (this thread or task), pdfminer inflates within the budget."""
    budget = InflateBudget(per_stream, per_document)
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)
