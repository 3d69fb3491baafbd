"""Benchmark: the rules API with 1,000,000 rule rows in SQLite (not a test).

Builds (once, cached under the temp dir) a SQLite database with 5,000 documents x 3 versions
and 1,000,000 rule rows, creates a read API key, serves the API with one uvicorn process on
127.0.0.1 and drives it from `wrk` (several connections, one thread, on loopback) with lookups
of the rules for one code as of a date: ``GET /rules?code=X&as_of=D``, X and D varying per
request. Prints requests/s and p50/p99 latency. Targets: >= 1,000 req/s, p99 <= 20 ms.

    python bench/api.py [--rows 1000000] [--seconds 20] [--connections 8] [--rebuild]

Needs `wrk` (``apt-get install -y wrk``); without it a multi-process httpx load generator is
used, which takes CPU from the server on a 2-core machine (its figures are a lower bound).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, text

from monitor.store.core import Store, utcnow
from monitor.store.models.core import Document, DocumentVersion, Payload, SourceRow
from monitor.store.models.rules import RuleRowModel

DOCUMENTS = 5_000
VERSIONS = 3
CODES = 20_000  # distinct codes: each appears in ~50 rows across documents and versions
EFFECTIVE = (dt.date(2024, 1, 1), dt.date(2025, 1, 1), dt.date(2026, 1, 1))


def _code(n: int) -> str:
    """ICD-10-like codes for most, CPT-like for a fifth."""
    if n % 5 == 0:
        return f"{10000 + n:05d}"[:5]
    letter = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[n % 26]
    return f"{letter}{n // 26 % 100:02d}.{n % 10}{n // 2600 % 10}"


def build(path: Path, rows: int) -> None:
    """A fresh database with `rows` rule rows (Core executemany in one transaction)."""
    if path.exists():
        path.unlink()
    url = f"sqlite:///{path}"
    store = Store.open(url)
    started = time.perf_counter()
    rng = random.Random(1)
    per_version, extra = divmod(rows, DOCUMENTS * VERSIONS)
    now = utcnow()
    with store.session() as session:
        source_id = session.execute(
            insert(SourceRow)
            .values(name="cms", kind="cms_coverage", created_at=now)
            .returning(SourceRow.id)
        ).scalar_one()
        session.execute(
            insert(Payload).values(sha256="0" * 64, size=0, compression="zlib", data=b"")
        )
        session.execute(
            insert(Document),
            [
                {
                    "id": d,
                    "source_id": source_id,
                    "key": f"A{50000 + d}",
                    "doc_type": "Article",
                    "title": f"Billing and Coding: topic {d}",
                    "url": f"https://www.cms.gov/x?articleid={50000 + d}",
                    "first_seen_at": now,
                }
                for d in range(1, DOCUMENTS + 1)
            ],
        )
        versions = []
        for d in range(1, DOCUMENTS + 1):
            for v in range(VERSIONS):
                versions.append(
                    {
                        "id": (d - 1) * VERSIONS + v + 1,
                        "document_id": d,
                        "source_version": str(v + 1),
                        "version_number": v + 1,
                        "content_sha256": "0" * 64,
                        "content_type": "application/json",
                        "title": f"Billing and Coding: topic {d}",
                        "status": "active",
                        "effective_date": EFFECTIVE[v],
                        "url": f"https://www.cms.gov/x?articleid={50000 + d}&ver={v + 1}",
                        "fetched_at": now,
                        "published_at": now - dt.timedelta(days=30 * (VERSIONS - v)),
                    }
                )
        session.execute(insert(DocumentVersion), versions)
        # Indexes are cheaper built once after the rows than maintained row by row.
        for name in ("ix_rule_rows_code", "ix_rule_rows_drug", "ix_rule_rows_document"):
            session.execute(text(f"DROP INDEX {name}"))
        batch: list[dict[str, object]] = []
        written = 0
        for index, version in enumerate(versions):
            codes = rng.sample(range(CODES), per_version + (index < extra))
            for n in codes:
                covered = n % 7 != 0
                batch.append(
                    {
                        "version_id": version["id"],
                        "document_id": version["document_id"],
                        "source_id": source_id,
                        "version_number": version["version_number"],
                        "published_at": version["published_at"],
                        "effective_from": version["effective_date"],
                        "retired_on": None,
                        "kind": "covered_code" if covered else "noncovered_code",
                        "payer": "Novitas Solutions, Inc.",
                        "code_system": "icd10",
                        "code": _code(n),
                        "code_group": 1 + n % 3,
                        "drug": None,
                        "text": f"description of code {n}",
                        "evidence_section": "icd10_covered" if covered else "icd10_noncovered",
                    }
                )
            if len(batch) >= 50_000:
                session.execute(insert(RuleRowModel), batch)
                written += len(batch)
                batch = []
        if batch:
            session.execute(insert(RuleRowModel), batch)
            written += len(batch)
        session.execute(text("CREATE INDEX ix_rule_rows_code ON rule_rows (code, id)"))
        session.execute(
            text("CREATE INDEX ix_rule_rows_drug ON rule_rows (drug, id) WHERE drug IS NOT NULL")
        )
        session.execute(text("CREATE INDEX ix_rule_rows_document ON rule_rows (document_id, id)"))
    with store.session() as session:
        session.execute(text("ANALYZE"))
    store.close()
    print(f"built {written:,} rule rows in {time.perf_counter() - started:.1f} s -> {path}")


def serve(url: str) -> None:
    """Child process: the API over `url` on 127.0.0.1, port 0; prints READY <url>."""
    import logging

    from monitor.api.app import create_app
    from monitor.api.server import serve_forever
    from monitor.config import parse_config

    logging.getLogger("uvicorn.access").disabled = True
    store = Store.open(url)
    app = create_app(store, parse_config({}))
    serve_forever(
        app, host="127.0.0.1", port=0, on_ready=lambda bound: print(f"READY {bound}", flush=True)
    )


def _targets(count: int) -> list[str]:
    rng = random.Random(2)
    days = [dt.date(2024, 6, 1), dt.date(2025, 6, 1), dt.date(2026, 6, 1)]
    return [
        f"/rules?code={_code(rng.randrange(CODES))}&as_of={rng.choice(days)}" for _ in range(count)
    ]


WRK_SCRIPT = """
local paths = {%s}
local i = 0
wrk.headers["Authorization"] = "Bearer %s"
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def _wrk(base: str, key: str, seconds: int, connections: int) -> tuple[float, float, float]:
    paths = ", ".join(json.dumps(p) for p in _targets(2000))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % (paths, key))
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                script.name,
                base,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
    finally:
        os.unlink(script.name)
    if "Non-2xx" in out:
        raise SystemExit(f"the server answered errors:\n{out}")

    def millis(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rate, out
    return float(rate.group(1)), millis("50"), millis("99")


def _httpx_worker(args: tuple[str, str, list[str], float]) -> list[float]:
    import httpx

    base, key, paths, until = args
    latencies = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        i = 0
        while time.perf_counter() < until:
            started = time.perf_counter()
            response = client.get(paths[i % len(paths)])
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()
            i += 1
    return latencies


def _httpx(base: str, key: str, seconds: int, connections: int) -> tuple[float, float, float]:
    paths = _targets(2000)
    until = time.perf_counter() + seconds
    with multiprocessing.Pool(connections) as pool:
        results = pool.map(
            _httpx_worker, [(base, key, paths[i::connections], until) for i in range(connections)]
        )
    latencies = sorted(x for r in results for x in r)
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    return len(latencies) / seconds, statistics.median(latencies) * 1000, p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    cache = Path(tempfile.gettempdir()) / "policy-monitor-bench-api"
    cache.mkdir(exist_ok=True)
    path = cache / f"rules-{args.rows}.db"
    if args.rebuild or not path.exists():
        build(path, args.rows)
    url = f"sqlite:///{path}"
    store = Store.open(url)
    from monitor.api.auth import create_api_key

    key = create_api_key(store, f"bench-{os.getpid()}", "read")
    with store.session() as session:
        count = session.execute(text("SELECT count(*) FROM rule_rows")).scalar_one()
    store.close()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        match = re.fullmatch(r"READY (http://127\.0\.0\.1:\d+)\n", line)
        if match is None:
            raise SystemExit(f"the API did not start: {line!r}")
        base = match.group(1)
        import httpx

        sample = httpx.get(base + _targets(1)[0], headers={"Authorization": f"Bearer {key}"})
        sample.raise_for_status()
        found = len(sample.json()["items"])
        tool = "wrk" if shutil.which("wrk") else "httpx"
        measure = _wrk if tool == "wrk" else _httpx
        measure(base, key, 3, args.connections)  # warm-up: page cache, SQLite statement cache
        rate, p50, p99 = measure(base, key, args.seconds, args.connections)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        f"rule rows: {count:,}; lookup of one code as of a date ({found} rows in a sample answer)\n"
        f"load: {tool}, {args.connections} connections, {args.seconds} s, one uvicorn process\n"
        f"requests/s: {rate:,.0f}  p50: {p50:.2f} ms  p99: {p99:.2f} ms  "
        f"(targets >= 1,000 req/s, p99 <= 20 ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
