"""Render the week-2 digest of the bundled fixtures and screenshot it with headless Chromium.

    python bench/render_digest.py [--out docs/digest.png] [--html FILE]

Runs week 1 and week 2 of the fixture CMS Coverage API and payer site into a temporary SQLite
database (as `policy-monitor demo` does), renders the digest an unfiltered profile would get,
and prints how long each step took. Chromium: `chromium` or `chromium-browser` on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fixtures.cms_api import CmsApiFixture
from fixtures.cms_corpus.model import scenario_named
from fixtures.payer_site import AETNA_INDEX_PATH, UHC_INDEX_PATH, PayerSiteFixture
from monitor.config import parse_config
from monitor.pipeline.runner import run_source
from monitor.store.core import Store
from monitor.store.outbox import NotifyStore
from notifications.planner import Planner
from notifications.select import effective_profiles


def _same_day(day: dt.date) -> dt.date:
    return day


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="docs/digest.png")
    parser.add_argument("--html", help="also keep the HTML here")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'bench.db'}"
        started = time.perf_counter()
        with CmsApiFixture(scenario="week1") as cms, PayerSiteFixture() as payers:
            config = parse_config(
                {
                    "database": {"url": url},
                    "api": {"public_url": "https://policy-monitor.example.org"},
                    "recipients": [{"name": "billing", "addresses": ["billing@example.org"]}],
                    "sources": [
                        {"name": "cms", "kind": "cms_coverage", "base_url": cms.base_url},
                        {"name": "acme", "kind": "payer_policies", "payer": "Acme Health",
                         "start_urls": [payers.base_url + UHC_INDEX_PATH,
                                        payers.base_url + AETNA_INDEX_PATH],
                         "allow": ["/policies/drug/", "/cpb/medical/data/"],
                         "download_delay_seconds": 0.0},
                    ],
                }
            )  # fmt: skip
            store = Store.open(url)
            for week in ("week1", "week2"):
                cms.set_scenario(week)
                payers.set_scenario(week)
                today = scenario_named(week).today
                for source in config.sources:
                    asyncio.run(
                        run_source(source, store, today=functools.partial(_same_day, today))
                    )
        pipeline = time.perf_counter() - started
        planner = Planner(NotifyStore(store), config)
        profile = effective_profiles(config)[0]
        now = dt.datetime.combine(today, dt.time(7), dt.UTC)
        started = time.perf_counter()
        _cursor, _pending, wanted = planner.digest_changes(profile, now)
        rendered = planner.preview(profile, now)
        render = time.perf_counter() - started
        store.close()
        html = Path(args.html) if args.html else Path(scratch) / "digest.html"
        html.write_text(rendered.html, encoding="utf-8")
        out = Path(args.out).resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--screenshot={out}", "--window-size=900,1400", html.as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        shot = time.perf_counter() - started
    print(f"pipeline (week 1 + week 2, fixtures): {pipeline:.1f} s")
    print(f"digest: {len(wanted)} changes, subject {rendered.subject!r}")
    print(f"render (read outbox + criteria facets + Jinja2): {render * 1000:.0f} ms")
    print(f"HTML {len(rendered.html.encode()):,} bytes, text {len(rendered.text.encode()):,} bytes")
    print(f"screenshot {out} in {shot:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
