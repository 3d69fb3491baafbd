"""Bounded parsing (issue 16, finding 5): a PDF whose content stream inflates to hundreds of MB
is a ParseError after at most the per-stream budget, not a memory blow-up; extraction workers
run under an address-space limit."""

from __future__ import annotations

import resource
import tracemalloc
import zlib

import pytest

from diffing.parse.pdf import parse_pdf
from monitor.errors import ParseError
from monitor.pipeline.runner import limit_worker_memory

MiB = 1024 * 1024


def _pdf_with_content(stream: bytes) -> bytes:
    """A one-page PDF whose page content is `stream`, FlateDecode'd (offsets computed)."""
    compressed = zlib.compress(stream, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(compressed)
        + compressed
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


TEXT = b"BT /F1 12 Tf 72 720 Td (Patient has tried a topical steroid for 8 weeks.) Tj ET\n"


def test_an_ordinary_flate_stream_still_parses() -> None:
    document = parse_pdf(_pdf_with_content(TEXT), document_id="ok.pdf", max_pages=5)
    assert "8 weeks" in " ".join(s.text for s in document.sections)


def test_a_decompression_bomb_is_a_parse_error_without_the_memory() -> None:
    bomb = _pdf_with_content(TEXT + b" " * (512 * MiB))
    assert len(bomb) < 1 * MiB  # half a gigabyte of spaces, in under a megabyte
    tracemalloc.start()
    try:
        with pytest.raises(ParseError, match="decompression bomb"):
            parse_pdf(bomb, document_id="bomb.pdf", max_pages=5)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"decompression bomb: peak traced memory {peak / MiB:.0f} MiB")
    assert peak < 200 * MiB


def test_the_document_budget_counts_every_stream() -> None:
    pdf = _pdf_with_content(TEXT + b" " * (3 * MiB))
    with pytest.raises(ParseError, match="decompression bomb"):
        parse_pdf(pdf, document_id="d.pdf", max_pages=5, max_document_bytes=2 * MiB)
    assert parse_pdf(pdf, document_id="d.pdf", max_pages=5, max_document_bytes=8 * MiB)


def test_extraction_workers_get_an_address_space_limit() -> None:
    # In a child: the limit is for the process that sets it, and must not bind the test run.
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(1, initializer=limit_worker_memory) as pool:
        soft, _hard = pool.apply(resource.getrlimit, (resource.RLIMIT_AS,))
        assert 0 < soft <= 4 * 1024 * MiB
        failed = pool.apply(_allocate, (3 * 1024 * MiB,))
    assert failed == "MemoryError"


def _allocate(size: int) -> str:
    try:
        bytearray(size)
    except MemoryError:
        return "MemoryError"
    return "allocated"
