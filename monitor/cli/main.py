"""The `policy-monitor` command line."""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import gc
import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from monitor.errors import MonitorError
from monitor.logs import configure_logging
from monitor.wording import NOTICE_FLAGS

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.store.records import ChangeRecord

# Only the parser and the light leaves load at start-up: `--help` and the read commands answer
# in a fifth of a second. Each command imports what it runs (the pipeline, Scrapy, the parsers).

log = logging.getLogger("policy_monitor")


def _parse_since(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date or date-time (e.g. 2026-11-01 or 2026-11-01T08:00:00Z)"
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """--config, --log-level, --log-format: before the command (with defaults) and after it
    (without, so a value given there wins and an absent one leaves the first)."""

    def default(value: str | None) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--config",
        default=default(None),
        help="TOML config file (default: $POLICY_MONITOR_CONFIG, else built-in defaults)",
    )
    parser.add_argument(
        "--log-level",
        default=default("WARNING"),
        type=str.upper,  # "info" and "INFO" alike
        choices=LOG_LEVELS,
        help="DEBUG, INFO, WARNING (default) or ERROR, in any case",
    )
    parser.add_argument(
        "--log-format",
        default=default("text"),
        choices=["text", "json"],
        help="text lines, or one JSON object per line for log collectors (default: text)",
    )


def _accept_global_options(commands: Any) -> None:
    for sub in commands.choices.values():
        _global_options(sub, defaults=False)
        for action in sub._actions:  # nested actions: `db check`, `db upgrade`
            if isinstance(action, argparse._SubParsersAction):
                _accept_global_options(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="policy-monitor",
        description="Watch CMS coverage data and payer policies; report what changed.",
    )
    _global_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="run every (or one) source once now and publish")
    check.add_argument("--source", help="only this source (its name in the config)")

    changes = commands.add_parser("changes", help="list detected changes")
    changes.add_argument(
        "--since", type=_parse_since, help="only changes detected at or after this ISO date-time"
    )
    changes.add_argument("--format", choices=["json", "table"], default="table")
    changes.add_argument("--source", help="only changes from this source")
    changes.add_argument(
        "--document",
        help="only documents whose id or title contains this, in any case (e.g. L33979, dupixent)",
    )
    changes.add_argument(
        "--no-baseline",
        action="store_true",
        help="leave out the documents listed by each source's first run",
    )
    changes.add_argument(
        "--limit",
        type=_positive,
        help="only the newest N changes (the table is newest first; JSON lines stay oldest "
        "first, like the API feed)",
    )
    changes.add_argument(
        "--min-severity",
        choices=["noise", "unverified", "low", "medium", "high"],
        default="low",
        help="leave out less severe changes (default: low, which hides noise-only versions: "
        "re-prints, stamps, layout)",
    )
    changes.add_argument(
        "--flag",
        choices=list(NOTICE_FLAGS),
        help="only changes taking effect with less notice than the source's notice_days "
        "(short_notice) or before they were first seen (retroactive)",
    )

    commands.add_parser("sources", help="last run, outcome and error of every source")

    run = commands.add_parser(
        "run", help="the daemon: run every source on its schedule until SIGTERM/SIGINT"
    )
    run.add_argument(
        "--grace-seconds",
        type=float,
        help="on SIGTERM/SIGINT, wait this long for running sources to finish "
        "(default: [scheduler] shutdown_grace_seconds, 60)",
    )
    run.add_argument(
        "--jitter-seconds",
        type=int,
        help="delay each scheduled run by a random 0..N seconds "
        "(default: [scheduler] jitter_seconds, 60)",
    )

    commands.add_parser(
        "status", help="schedule, next run (UTC) and last run of every configured source"
    )

    demo = commands.add_parser(
        "demo", help="run the pipeline on the bundled fixtures (no network, no set-up)"
    )
    demo.add_argument(
        "--keep",
        metavar="DIR",
        help="keep the demo database in DIR instead of a temporary directory",
    )

    commands.add_parser(
        "config-reference",
        help="print the Markdown reference of every config key (docs/configuration.md)",
    )

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply the schema migrations")
    db_commands.add_parser(
        "check",
        help="check the database's integrity (SQLite: PRAGMA integrity_check; PostgreSQL: "
        "amcheck when installed) and its schema revision; exit 1 when something is wrong",
    )
    for module in _command_modules():
        module.register(commands)
    _accept_global_options(commands)
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


class _CommandModule(Protocol):
    """A module adding its own sub-commands: `register` adds parsers and sets ``handler``
    (a function of (Config, Namespace) -> exit code) with ``set_defaults``."""

    def register(self, commands: Any) -> None: ...


def _command_modules() -> list[_CommandModule]:
    import monitor.cli.api
    import monitor.cli.checklists
    import monitor.cli.compare
    import monitor.cli.coverage
    import monitor.cli.exports
    import monitor.cli.notify
    import monitor.cli.quarantine

    return [
        monitor.cli.checklists,
        monitor.cli.coverage,
        monitor.cli.compare,
        monitor.cli.exports,
        monitor.cli.api,
        monitor.cli.notify,
        monitor.cli.quarantine,
    ]


@contextmanager
def _loading_modules() -> Iterator[None]:
    """No garbage collection while a command's modules load, and their objects left out of
    every later one (`gc.freeze`): loading frees next to nothing, yet each collection walks
    every object made so far. Collections took 0.3 s of the 1.6 s CPU time of a re-check of
    1,000 pages (the process that runs it, not its workers); 0.1 s so."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def cmd_check(config: Config, args: argparse.Namespace) -> int:
    chosen = (
        [config.source(args.source)] if args.source else [s for s in config.sources if s.enabled]
    )
    if any(source.source_kind.isolated_extract for source in chosen):
        # Before the pipeline's imports: the workers' fork server warms on the other core
        # while this process loads and re-checks, so a changed document finds its worker ready.
        from monitor.pipeline.workers import start_workers_early

        start_workers_early()
    with _loading_modules():
        import asyncio

        from monitor.pipeline.runner import RunSummary, run_source
        from monitor.progress import progress_for
        from monitor.store.core import Store
        from monitor.store.locks import source_locks

    if args.log_level == "WARNING":  # the default: progress lines still show when not on a tty
        logging.getLogger("policy_monitor.progress").setLevel(logging.INFO)
    store = Store.open(config.database.url)
    locks = source_locks(config.database.url)
    busy = False
    try:
        summaries: list[RunSummary] = []
        for source in chosen:
            # The same per-source lock as the daemon: a manual check never overlaps its run.
            with locks.lease(source.name) as lease:
                if lease is None:
                    busy = True
                    print(
                        f"{source.name}: skipped - a run of this source is in progress "
                        f"elsewhere (policy-monitor run?)",
                        flush=True,
                    )
                    continue
                # Holding the lock, no live run of this source exists: any "running" run was
                # left by a killed process.
                store.close_stale_runs_of(source.name)
                progress = progress_for(source.name, sys.stderr)
                try:
                    summary = asyncio.run(
                        run_source(
                            source,
                            store,
                            progress=progress,
                            still_holding=lease.still_held,
                            quarantine=config.quarantine,
                        )
                    )
                finally:
                    progress.close()
            summaries.append(summary)
            print(summary.line(), flush=True)
    finally:
        locks.close()
        store.close()
    return 1 if busy or any(s.outcome == "failed" for s in summaries) else 0


def cmd_changes(config: Config, args: argparse.Namespace) -> int:
    # Plain SQL, not the ORM: on SQLite the listing loads no SQLAlchemy at all.
    from monitor.store.plain_reads import read_changes

    records, unverified = read_changes(
        config.database.url,
        notice_days=config.notice_days(),
        since=args.since,
        source=args.source,
        document_like=args.document,
        include_baseline=not args.no_baseline,
        limit=args.limit,
        min_severity=args.min_severity,
        newest_first=True,
        flag=args.flag,
        # Claims the texts contradict are never mixed with the changes, but never hidden.
        unverified_too=args.format != "json" and args.min_severity not in ("noise", "unverified"),
    )
    print_changes(records, unverified, args)
    return 0


def print_changes(
    records: Sequence[ChangeRecord], unverified: Sequence[ChangeRecord], args: argparse.Namespace
) -> None:
    """What `changes` prints for `records` (newest first) and the `unverified` claims kept
    apart from them."""
    from monitor.report import change_to_json, table

    if args.min_severity == "unverified":
        records = [r for r in records if r.severity == "unverified"]
    if args.format == "json":
        # A feed: oldest first, like the API's (with --limit, the newest N in that order).
        for record in reversed(records):
            sys.stdout.write(change_to_json(record) + "\n")
    elif records:
        print(table(records))
    else:
        print("No changes match (try --min-severity noise, or leave out --no-baseline).")
    if unverified:
        print(
            f"\nUnverified - {len(unverified)} claim(s) the two versions' texts contradict "
            "(an extraction error, not a policy change; never alerted):"
        )
        print(table(unverified))


def cmd_sources(config: Config, _args: argparse.Namespace) -> int:
    from monitor.store.core import Store
    from monitor.store.db import DatabaseMissing

    try:
        store = Store.open_read_only(config.database.url)
    except DatabaseMissing as exc:
        print(f"policy-monitor: {exc}", file=sys.stderr)
        for source in config.sources:
            print(f"{source.name} ({source.kind}): never run")
        return 0
    try:
        statuses = store.source_statuses([(s.name, s.kind) for s in config.sources])
    finally:
        store.close()
    for status in statuses:
        run = status.last_run
        if run is None:
            print(f"{status.name} ({status.kind}): never run")
            continue
        finished = run.finished_at.isoformat(timespec="seconds") if run.finished_at else "-"
        print(
            f"{status.name} ({status.kind}): last run {run.started_at:%Y-%m-%d %H:%M} UTC, "
            f"{run.outcome}, finished {finished}, {status.documents} documents, "
            f"{run.new_versions} new versions, {run.changes} changes, {run.errors} errors"
            + (f"\n    error: {run.error}" if run.error else "")
        )
        for failure in status.failures:
            what = failure.document or "listing"
            where = f" ({failure.url})" if failure.url and failure.url != failure.document else ""
            print(f"    failed: {what}{where}: {failure.reason}")
    return 0


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    from monitor.daemon import serve
    from monitor.pipeline.scheduling import SchedulingOptions

    if args.log_level == "WARNING":  # the default: a daemon still says what it runs
        logging.getLogger("policy_monitor.daemon").setLevel(logging.INFO)
    scheduler = config.scheduler
    grace = scheduler.shutdown_grace_seconds if args.grace_seconds is None else args.grace_seconds
    jitter = scheduler.jitter_seconds if args.jitter_seconds is None else args.jitter_seconds
    if grace < 0 or jitter < 0:
        print(
            "policy-monitor: error: --grace-seconds and --jitter-seconds must not be negative",
            file=sys.stderr,
        )
        return 2
    options = SchedulingOptions(
        jitter_seconds=jitter,
        misfire_grace_seconds=scheduler.misfire_grace_seconds,
        max_concurrent_runs=scheduler.max_concurrent_runs,
    )
    return serve(config, grace_seconds=grace, options=options)


def cmd_status(config: Config, _args: argparse.Namespace) -> int:
    from monitor.daemon import status_report
    from monitor.store.core import Store

    store = Store.open_read_only(config.database.url)
    try:
        print(status_report(config, store))
    finally:
        store.close()
    return 0


def cmd_db(config: Config, args: argparse.Namespace) -> int:
    from monitor.store.core import Store

    if args.db_command == "check":
        from monitor.store.reads import check_integrity

        report = check_integrity(config.database.url)
        print(f"database {report.database}: checked {'; '.join(report.checks) or 'nothing'}")
        for problem in report.problems[:20]:
            print(f"    problem: {problem}")
        if len(report.problems) > 20:
            print(f"    … and {len(report.problems) - 20} more")
        print("ok" if not report.problems else f"what to do: {report.advice}")
        return 0 if not report.problems else 1
    Store.open(config.database.url).close()
    print(f"database {config.database.url} is at the newest schema")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    try:
        return _dispatch(args)
    except BrokenPipeError:
        # The reader went away (`| head -1`): not an error of ours.
        _stdout_to_devnull()
        return 0


def _stdout_to_devnull() -> None:
    """Point stdout at devnull, so that no later flush raises BrokenPipeError again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def console_main() -> NoReturn:
    """The `policy-monitor` executable: `main`, then an exit without tearing the interpreter
    down.

    By the time a command returns, its store is closed and its output written; what is left
    of a normal exit is freeing, module by module, everything the command loaded (SQLAlchemy,
    aiohttp, the pipeline): 0.05-0.1 s of a re-check that takes 2 s. So the exit handlers run
    (logging's flush, `multiprocessing`'s clean-up), stdio is flushed, and the process leaves
    with `os._exit`. Only when no other thread is alive: a thread still running would be
    joined by a normal exit, and is, here too (by falling back to `sys.exit`). `main` itself
    returns normally, for callers in the same process (the tests).
    """
    code = main()
    if threading.active_count() > 1:
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        _stdout_to_devnull()
    except (OSError, ValueError):
        sys.exit(code)
    atexit._run_exitfuncs()
    os._exit(code)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        if args.command == "config-reference":
            from monitor.docs import configuration_reference

            sys.stdout.write(configuration_reference())
            return 0
        if args.command == "demo":
            from monitor.cli.demo import run_demo  # the fixtures are only loaded for the demo

            return run_demo(keep=args.keep)
        from monitor.config import load_config

        config = load_config(args.config)
        if getattr(args, "handler", None) is not None:
            return int(args.handler(config, args))
        handler = {
            "check": cmd_check,
            "changes": cmd_changes,
            "sources": cmd_sources,
            "db": cmd_db,
            "run": cmd_run,
            "status": cmd_status,
        }[args.command]
        return handler(config, args)
    except MonitorError as exc:
        print(f"policy-monitor: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("policy-monitor: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    console_main()
