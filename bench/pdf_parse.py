"""Benchmark: parse time of the 20-page policy PDF (not a test).

Parses ``fixtures.payer_site.benchmark_pdf()`` (the 20-page policy the payer benchmark serves)
``--runs`` times after one warm-up and prints the median and the fastest wall time and CPU time
of one parse. Target on a 2-core machine (issue 17): median <= 0.2 s. The machine is shared: the
CPU time and the load average are recorded with each result, in
bench/results/pdf_parse.json (date, commit, cores, load average, figures).

    python bench/pdf_parse.py [--runs N] [--results PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from diffing.parse import parse_document
from fixtures.payer_site import benchmark_pdf

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "pdf_parse.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    pdf = benchmark_pdf()
    load_before = os.getloadavg()
    document = parse_document(pdf, "application/pdf", document_id="bench-20-pages")  # warm-up
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(args.runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        parse_document(pdf, "application/pdf", document_id="bench-20-pages")
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    load_after = os.getloadavg()
    figures = {
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
    record = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "cores": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "figures": figures,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(record, indent=1) + "\n")
    print(f"-> {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
