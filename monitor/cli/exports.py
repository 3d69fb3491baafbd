"""Sub-commands for the MCD bulk exports: ``backfill`` (a whole export as the baseline of an
empty database) and ``reconcile`` (where the export and the API disagree)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.errors import ConfigError

if TYPE_CHECKING:
    from monitor.config import Config, SourceConfig
    from sources.base import Source


def register(commands: Any) -> None:
    """Add this module's parsers to `commands` (argparse sub-parsers); each sets ``handler``."""
    backfill = commands.add_parser(
        "backfill",
        help="load a whole MCD export into an empty database as the baseline",
    )
    backfill.add_argument("--source", required=True, help="an mcd_downloads source of the config")
    backfill.add_argument(
        "--file",
        action="append",
        type=Path,
        metavar="PATH.zip",
        help="read this downloaded export (current_lcd.zip, current_article.zip or ncd.zip) "
        "instead of downloading; may be given once per export",
    )
    backfill.set_defaults(handler=cmd_backfill)

    reconcile_parser = commands.add_parser(
        "reconcile",
        help="compare the latest criteria of an API source and an export source, per document",
    )
    reconcile_parser.add_argument("--api", required=True, help="a cms_coverage source")
    reconcile_parser.add_argument("--export", required=True, help="an mcd_downloads source")
    reconcile_parser.add_argument("--format", choices=["json", "table"], default="table")
    reconcile_parser.set_defaults(handler=cmd_reconcile)


def _export_source(config: Config, name: str) -> SourceConfig:
    source = config.source(name)
    if source.kind != "mcd_downloads":
        raise ConfigError(
            f"source {name!r} is a {source.kind!r} source; backfill reads mcd_downloads sources"
        )
    return source


def cmd_backfill(config: Config, args: argparse.Namespace) -> int:
    import asyncio

    from monitor.pipeline.runner import run_source
    from monitor.progress import progress_for
    from monitor.store.core import Store
    from monitor.store.locks import source_locks
    from sources.mcd_downloads import McdDownloadsSource, spec_for_file

    if args.log_level == "WARNING":  # the default: progress lines still show when not on a tty
        logging.getLogger("policy_monitor.progress").setLevel(logging.INFO)
    source = _export_source(config, args.source)
    files = {}
    for path in args.file or ():
        if not path.is_file():
            raise ConfigError(f"--file {path}: no such file")
        files[spec_for_file(path).zip_name] = path
    if files:
        kinds = tuple(spec.option for spec in _specs_of(files))
        source = dataclasses.replace(
            source, options=dataclasses.replace(source.options, document_types=kinds)
        )

    def factory(chosen: SourceConfig) -> Source:
        return McdDownloadsSource(name=chosen.name, options=chosen.options, export_files=files)

    store = Store.open(config.database.url)
    locks = source_locks(config.database.url)
    try:
        status = store.source_statuses([(source.name, source.kind)])[0]
        if status.baseline_done:
            print(
                f"policy-monitor: error: {source.name} already has a baseline "
                f"({status.documents} documents); backfill loads an empty database. "
                f"Use 'policy-monitor check --source {source.name}' to pick up changes.",
                file=sys.stderr,
            )
            return 2
        with locks.lease(source.name) as lease:
            if lease is None:
                print(
                    f"{source.name}: skipped - a run of this source is in progress elsewhere",
                    flush=True,
                )
                return 1
            store.close_stale_runs_of(source.name)
            progress = progress_for(f"{source.name} backfill", sys.stderr)
            try:
                summary = asyncio.run(
                    run_source(
                        source,
                        store,
                        factory=factory,
                        progress=progress,
                        still_holding=lease.still_held,
                        quarantine=config.quarantine,
                    )
                )
            finally:
                progress.close()
    finally:
        locks.close()
        store.close()
    print(summary.line(), flush=True)
    return 1 if summary.outcome == "failed" else 0


def _specs_of(files: dict[str, Path]) -> list[Any]:
    from diffing.mcd import EXPORTS

    return [spec for spec in EXPORTS if spec.zip_name in files]


def cmd_reconcile(config: Config, args: argparse.Namespace) -> int:
    from monitor.pipeline.reconcile import reconcile, render_table
    from monitor.store.core import Store

    store = Store.open(config.database.url)
    try:
        report = reconcile(store, api_source=args.api, export_source=args.export)
    finally:
        store.close()
    if args.format == "json":
        for difference in report.differences:
            sys.stdout.write(difference.to_json() + "\n")
    else:
        print(render_table(report))
    # Like diff(1): 1 when the two sources disagree, so a scheduled job can alert on it.
    return 1 if report.differences else 0
