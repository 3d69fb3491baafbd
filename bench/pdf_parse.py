"""Benchmark: parse time of the 20-page policy PDF (not a test).

Parses ``fixtures.payer_site.benchmark_pdf()`` (the 20-page policy the payer benchmark serves)
``--runs`` times after one warm-up and prints the median and the fastest wall time and CPU time
of one parse. Target on a 2-core machine (issue 17): median <= 0.2 s. The machine is shared: the
CPU time and the load average are recorded with each result, in
bench/results/pdf_parse.json (date, commit, cores, load average, figures).

With ``--extractors`` it also times (fastest CPU time of ``--runs``) what the glyphs alone cost
through each extractor on the same PDF: the project's pdfminer glyph device
(`diffing.parse.pdf_glyphs.read_page`), pypdfium2 per character (text, box and font size: the
least the line building needs) and pypdfium2's plain page text (no geometry, so no lines,
headings, paragraphs or tables as the parser builds them).

With ``--against DIR`` (a checkout of another commit, e.g. ``git worktree add /tmp/base main``)
it also times that checkout's parser on the same PDF in the same run, the two interleaved in
child processes (``--rounds`` rounds of ``--runs`` parses each), and records both.

    python bench/pdf_parse.py [--runs N] [--results PATH] [--extractors] [--against DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from machine import MachineProbe

from diffing.parse import parse_document
from fixtures.payer_site import benchmark_pdf

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "pdf_parse.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--extractors", action="store_true", help="time the glyph extractors")
    parser.add_argument("--against", type=Path, help="a checkout to time side by side")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (--against)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_time_parses(benchmark_pdf(), args.runs)))
        return 0
    commit = _commit(ROOT)
    probe = MachineProbe()  # the machine's speed, for figures of other sessions
    pdf = benchmark_pdf()
    load_before = os.getloadavg()
    document = parse_document(pdf, "application/pdf", document_id="bench-20-pages")
    timed = _time_parses(pdf, args.runs)
    wall, cpu = timed["wall"], timed["cpu"]
    extractors = _extractors(pdf, args.runs) if args.extractors else None
    side_by_side = _side_by_side(args.against, args.runs, args.rounds) if args.against else None
    load_after = os.getloadavg()
    figures: dict[str, object] = {
        "pages": document.pages,
        "pdf_bytes": len(pdf),
        "runs": args.runs,
        "median_seconds": round(statistics.median(wall), 4),
        "fastest_seconds": round(min(wall), 4),
        "median_cpu_seconds": round(statistics.median(cpu), 4),
        "fastest_cpu_seconds": round(min(cpu), 4),
    }
    print(
        f"20-page PDF parse ({document.pages} pages, {len(pdf) // 1024} KB, {args.runs} runs): "
        f"median {figures['median_seconds']:.3f} s (CPU {figures['median_cpu_seconds']:.3f} s), "
        f"fastest {figures['fastest_seconds']:.3f} s; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after"
    )
    if extractors is not None:
        figures["glyph_extractors_fastest_cpu_seconds"] = extractors
        for name, seconds in extractors.items():
            print(f"  {name:60s} {seconds:.3f} s CPU")
    if side_by_side is not None:
        figures["side_by_side"] = side_by_side
        for name, row in side_by_side.items():
            print(
                f"  {name:8s} median {row['median_seconds']:.3f} s, CPU median "
                f"{row['median_cpu_seconds']:.3f} s, fastest {row['fastest_cpu_seconds']:.3f} s"
            )
    record = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "cores": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "machine": probe.finish(),
        "figures": figures,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(record, indent=1) + "\n")
    print(f"-> {args.results}")
    return 0


def _time_parses(pdf: bytes, runs: int) -> dict[str, list[float]]:
    parse_document(pdf, "application/pdf", document_id="bench-20-pages")  # warm-up
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        parse_document(pdf, "application/pdf", document_id="bench-20-pages")
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return {"wall": wall, "cpu": cpu}


def _side_by_side(against: Path, runs: int, rounds: int) -> dict[str, dict[str, object]]:
    """This checkout and `against`, each parsing in its own child process, taking turns."""
    checkouts = {"this": ROOT, "against": against.resolve()}
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in checkouts}
    for _ in range(rounds):
        for name, checkout in checkouts.items():
            env = {**os.environ, "PYTHONPATH": str(checkout)}
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            child = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--child", "--runs", str(runs)],
                cwd=checkout,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            for key, values in json.loads(child.stdout).items():
                times[name][key].extend(values)
    return {
        name: {
            "checkout": str(checkouts[name]),
            "commit": _commit(checkouts[name]),
            "runs": len(row["wall"]),
            "median_seconds": round(statistics.median(row["wall"]), 4),
            "median_cpu_seconds": round(statistics.median(row["cpu"]), 4),
            "fastest_cpu_seconds": round(min(row["cpu"]), 4),
        }
        for name, row in times.items()
    }


def _commit(checkout: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=checkout, capture_output=True, text=True
    ).stdout.strip()


def _fastest_cpu(run: Callable[[], object], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return round(best, 4)


def _extractors(pdf: bytes, runs: int) -> dict[str, float]:
    import ctypes

    import pdfplumber
    import pypdfium2
    import pypdfium2.raw as pdfium

    from diffing.parse.pdf_glyphs import read_page

    def pdfminer_device() -> None:
        with pdfplumber.open(io.BytesIO(pdf)) as document:
            for page in document.pages:
                read_page(document.rsrcmgr, page.page_obj)

    def pdfium_chars() -> None:
        left, right, bottom, top = (ctypes.c_double() for _ in range(4))
        for page in pypdfium2.PdfDocument(pdf):
            textpage = page.get_textpage()  # held: its handle closes with it
            text = textpage.raw
            count = pdfium.FPDFText_CountChars(text)
            assert count > 0, "no characters: the text page was closed"
            for index in range(count):
                pdfium.FPDFText_GetUnicode(text, index)
                pdfium.FPDFText_GetCharBox(text, index, left, right, bottom, top)
                pdfium.FPDFText_GetFontSize(text, index)

    def pdfium_text() -> None:
        for page in pypdfium2.PdfDocument(pdf):
            page.get_textpage().get_text_range()

    return {
        "whole parse (parse_document)": _fastest_cpu(
            lambda: parse_document(pdf, "application/pdf", document_id="bench-20-pages"), runs
        ),
        "pdfminer glyph device (pdf_glyphs.read_page)": _fastest_cpu(pdfminer_device, runs),
        "pypdfium2 per character (text, box, size)": _fastest_cpu(pdfium_chars, runs),
        "pypdfium2 page text (no geometry)": _fastest_cpu(pdfium_text, runs),
    }


if __name__ == "__main__":
    sys.exit(main())
