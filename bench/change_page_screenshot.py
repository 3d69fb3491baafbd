"""Screenshot of a change page for the README: docs/change-page.png.

Runs the real pipeline on the fixture payer site (week 1, then week 2) into a temporary SQLite
database, serves the API on loopback, and has headless Chromium photograph the signed page of
the Dupixent step-therapy change (8 -> 12 weeks). "Today" is fixed, so the picture is the same
on every run: ``python bench/change_page_screenshot.py [--out docs/change-page.png]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from fixtures.payer_site import AETNA_INDEX_PATH, UHC_INDEX_PATH, PayerSiteFixture
from monitor.api.app import create_app
from monitor.api.server import ApiServer
from monitor.config import parse_config
from monitor.links import change_page_url
from monitor.pipeline.runner import run_source
from monitor.store.core import Store

TODAY = dt.date(2026, 1, 15)
ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "change-page.png")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="change-page-") as scratch, PayerSiteFixture() as site:
        config = parse_config(
            {
                "database": {"url": f"sqlite:///{Path(scratch) / 'monitor.db'}"},
                "sources": [
                    {
                        "name": "acme-health",
                        "kind": "payer_policies",
                        "payer": "Acme Health",
                        "start_urls": [
                            site.base_url + UHC_INDEX_PATH,
                            site.base_url + AETNA_INDEX_PATH,
                        ],
                        "allow": ["/policies/drug/", "/cpb/medical/data/"],
                        "download_delay_seconds": 0.0,
                    }
                ],
            }
        )
        store = Store.open(config.database.url)
        try:
            for week in ("week1", "week2"):
                site.set_scenario(week)
                summary = asyncio.run(run_source(config.sources[0], store, today=lambda: TODAY))
                print(summary.line())
            change = next(
                c
                for c in store.changes()
                if c.kind == "step_therapy_changed" and "dupixent" in c.document_id
            )
            app = create_app(store, config, today=lambda: TODAY)
            with ApiServer(app) as server:
                link = change_page_url(config.api, change.id)
                url = server.url + "/" + link.split("://", 1)[1].split("/", 1)[1]
                args.out.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(
                    [
                        chromium,
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--no-first-run",
                        "--hide-scrollbars",
                        f"--user-data-dir={Path(scratch) / 'profile'}",
                        f"--screenshot={args.out}",
                        "--window-size=1200,900",
                        url,
                    ],
                    check=True,
                    capture_output=True,
                    timeout=120,
                )
        finally:
            store.close()
    print(f"change {change.id} ({change.document_id}) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
