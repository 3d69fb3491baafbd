"""Benchmark: what handing a payer version's page edges to its successor's parse costs the
publishing process per document (not a test).

The worker parses anyway; the parent adds one lookup before it sends a document
(`previous_reference`) and one write when the worker answers (`keep_reference`, 16 pages of
edges at most). Both are timed here per document, beside the publishing transaction of the same
document (`publish` with criteria already extracted), on one database, in the same run, so the
ratio means something on a loaded machine. Also: the pickled size of a reference.

    python bench/page_edges.py [--documents 300] [--database URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import pickle
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from diffing.model import Criteria, RawDocument, Section
from monitor.pipeline.publish import PublishContext, publish
from monitor.pipeline.verification import WorkerText, keep_reference, previous_reference
from monitor.store.core import RunCounts, Store
from sources.base import ListedDocument

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "page_edges.json"
TODAY = dt.date(2026, 12, 3)
# A 16-page reference as a long policy gives it: header, two lines, footer and stamp a page.
EDGES = tuple(
    (
        "Acme Health Pharmacy Clinical Policy Bulletin",
        f"Section {page}: criteria for coverage of the requested drug",
        "The member meets all of the following criteria for initial authorization;",
        "Prior authorization is required; renewal is for 12 months when the member responds.",
        "Acme Health Plans of Example, Member Services",
        f"Page {page} of 40",
    )
    for page in range(1, 17)
)


def _document(key: str, note: str) -> tuple[RawDocument, ListedDocument, Criteria]:
    content = f"Policy {key}\nCoverage Criteria\nCovered when criteria are met. {note}".encode()
    criteria = Criteria(
        document_id=key,
        doc_type="payer_policy",
        title=f"Policy {key}",
        version=None,
        status="active",
        payer="Acme Health",
        sections=(Section(name="coverage criteria", text=f"Covered. {note}"),),
    )
    url = f"https://acme.example{key}"
    raw = RawDocument(
        source="acme",
        key=key,
        url=url,
        content=content,
        content_type="text/plain",
        fetched_at=dt.datetime.now(dt.UTC),
        title=criteria.title,
        doc_type="payer_policy",
    )
    listed = ListedDocument(
        key=key,
        source_version="",
        version_number=None,
        fingerprint=hashlib.sha256(content).hexdigest(),
        doc_type="payer_policy",
        title=criteria.title,
        url=url,
    )
    return raw, listed, criteria


def _run(store: Store, keys: list[str], note: str, *, baseline: bool) -> list[float]:
    """Publish one version of every key in one run; each publish's seconds."""
    source = store.ensure_source("acme", "payer_policies")
    run_id = store.start_run(source.id, baseline=baseline)
    seconds = []
    for key in keys:
        raw, listed, criteria = _document(key, note)
        ctx = PublishContext(
            source_id=source.id,
            run_id=run_id,
            baseline=baseline,
            today=TODAY,
            extract=lambda _raw, found=criteria: found,
            extractor_name="bench/1",
        )
        started = time.perf_counter()
        publish(store, ctx, raw, listed, criteria=criteria)
        seconds.append(time.perf_counter() - started)
    store.finish_run(run_id, outcome="success", counts=RunCounts(), complete_baseline=baseline)
    return seconds


def _ms(values: list[float]) -> float:
    return round(1000 * statistics.median(values), 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--database", help="a database URL (default: a new SQLite file)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as directory:
        url = args.database or f"sqlite:///{Path(directory) / 'bench.db'}"
        store = Store.open(url)
        try:
            keys = [f"/policies/p{n:05d}.txt" for n in range(args.documents)]
            _run(store, keys, "v1", baseline=True)
            source_id = store.ensure_source("acme", "payer_policies").id
            lookups, writes = [], []
            for key in keys:
                raw, _listed, _criteria = _document(key, "v1")
                started = time.perf_counter()
                keep_reference(store, raw.content, WorkerText("text", EDGES))
                writes.append(time.perf_counter() - started)
                started = time.perf_counter()
                found = previous_reference(store, source_id, key)
                lookups.append(time.perf_counter() - started)
                assert found == EDGES
            publishes = _run(store, keys, "v2", baseline=False)
        finally:
            store.close()
    figures = {
        "database": url.split(":", 1)[0],
        "documents": args.documents,
        "lookup_median_ms": _ms(lookups),
        "write_median_ms": _ms(writes),
        "publish_changed_version_median_ms": _ms(publishes),
        "added_share_of_publish": round(
            (statistics.median(lookups) + statistics.median(writes)) / statistics.median(publishes),
            3,
        ),
        "reference_pickled_bytes": len(pickle.dumps(EDGES)),
    }
    for name, value in figures.items():
        print(f"{name}: {value}")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "page_edges",
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "commit": commit,
                "cpu_count": os.cpu_count(),
                "platform": platform.platform(),
                "loadavg_before": list(load_before),
                "loadavg_after": list(os.getloadavg()),
                "figures": figures,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
