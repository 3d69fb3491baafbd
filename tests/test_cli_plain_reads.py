"""`policy-monitor changes` reads with plain SQL (monitor.store.plain_reads), not the ORM: its
output, text and JSON, is byte for byte what the ORM read (`Store.changes`) gives, on SQLite and
PostgreSQL, over two weeks of the demo's fixtures (CMS, two payers, a MAC); a database that is
missing, not a database or at another schema fails with the same message; on SQLite the read
loads no SQLAlchemy."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from pg_support import POSTGRES_URL, postgres_available
from sqlalchemy import select

from fixtures.cms_api import CmsApiFixture
from fixtures.cms_corpus.model import scenario_named
from fixtures.mac_sites import MacSitesFixture
from fixtures.payer_site import PayerSiteFixture
from monitor.cli.demo import (
    CMS_SOURCE,
    MCD_SOURCE,
    PAYER_SOURCE,
    SECOND_PAYER_SOURCE,
    config_table,
    run_week,
)
from monitor.cli.main import build_parser, cmd_changes, print_changes
from monitor.config import Config, parse_config
from monitor.errors import StoreError
from monitor.report import change_to_json
from monitor.store.core import ChangeRecord, Store
from monitor.store.db import make_engine, upgrade
from monitor.store.models.core import ChangeRow
from monitor.store.plain_reads import read_changes

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Populated:
    config: Config
    records: list[ChangeRecord]  # every change, as the ORM reads them (oldest first)


def _schema(action: str) -> None:
    import psycopg

    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as conn:
        conn.execute(action)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def populated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Populated]:
    """A database after week 1 and week 2 of the demo's sources but the MCD export, with other
    notice periods than the default for two of them."""
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('plain-reads') / 'monitor.db'}"
    else:
        reason = postgres_available()
        if reason:
            pytest.skip(reason)
        schema = f"t_{uuid.uuid4().hex[:12]}"
        _schema(f"CREATE SCHEMA {schema}")
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    try:
        with ExitStack() as servers:
            cms = servers.enter_context(CmsApiFixture(scenario="week1"))
            payers = servers.enter_context(PayerSiteFixture())
            macs = servers.enter_context(MacSitesFixture())
            table = config_table(url, cms.base_url, "", payers.base_url, macs, 25)
            del table["email"], table["recipients"]
            table["sources"] = [s for s in table["sources"] if s["name"] != MCD_SOURCE]
            for source in table["sources"]:
                source["notice_days"] = {CMS_SOURCE: 60, SECOND_PAYER_SOURCE: 10}.get(
                    source["name"], 30
                )
            config = parse_config(table)
            store = Store.open(url)
            try:
                for week in ("week1", "week2"):
                    for fixture in (cms, payers, macs):
                        fixture.set_scenario(week)
                    summaries = asyncio.run(run_week(config, store, scenario_named(week).today))
                    assert [s.outcome for s in summaries if s.outcome == "failed"] == []
                _add_cases_the_fixtures_lack(store)
            finally:
                store.close()
        reader = Store.open_read_only(url, notice_days=config.notice_days())
        try:
            records = reader.changes()
        finally:
            reader.close()
        yield Populated(config=config, records=records)
    finally:
        if schema is not None:
            _schema(f"DROP SCHEMA {schema} CASCADE")


def _add_cases_the_fixtures_lack(store: Store) -> None:
    """An unverified claim (a code change the texts contradict) and a checklist change stored
    as noise that restates a criterion change (read with that change's severity), as publish
    stores them."""

    def copy(row: ChangeRow, **values: object) -> ChangeRow:
        columns = {c.key: getattr(row, c.key) for c in ChangeRow.__table__.columns if c.key != "id"}
        return ChangeRow(**{**columns, **values})

    with store.session() as session:
        restating = session.scalars(
            select(ChangeRow).where(ChangeRow.kind == "checklist_changed").order_by(ChangeRow.id)
        ).first()
        code = session.scalars(
            select(ChangeRow)
            .where(ChangeRow.kind == "code_added", ChangeRow.baseline.is_(False))
            .order_by(ChangeRow.id)
        ).first()
        assert restating is not None and code is not None
        session.add(copy(restating, severity="noise"))
        session.add(
            copy(
                code,
                severity="unverified",
                claimed_severity=code.severity,
                contradiction="the old text lists the code too: 'covered: ...'",
            )
        )


def test_the_fixture_database_has_what_the_wording_reads(populated: Populated) -> None:
    """The comparisons below are worth something: the database holds every case the read
    words differently."""
    records = populated.records
    assert len(records) > 50
    assert {r.source for r in records} >= {CMS_SOURCE, PAYER_SOURCE, SECOND_PAYER_SOURCE}
    assert {r.baseline for r in records} == {True, False}
    assert {r.previous_version is None for r in records} == {True, False}
    assert {r.severity for r in records} == {"noise", "unverified", "low", "medium", "high"}
    assert [r for r in records if r.same_fact_as is not None]
    assert [r for r in records if r.severity != r.stored_severity]
    assert [r for r in records if "short_notice" in r.flags]
    assert [r for r in records if "retroactive" in r.flags]
    assert [r for r in records if r.effective_date is None and not r.baseline]
    assert [r for r in records if r.stated_effective_date != r.effective_date]
    assert {r.notice_days for r in records} == {10, 30, 60}


def _orm_changes(config: Config, args: argparse.Namespace) -> tuple[list[ChangeRecord], ...]:
    """What `changes` read through the ORM before the plain read (its code as it was)."""
    store = Store.open_read_only(config.database.url, notice_days=config.notice_days())
    try:
        arguments = {
            "since": args.since,
            "source": args.source,
            "document_like": args.document,
            "include_baseline": not args.no_baseline,
            "limit": args.limit,
            "newest_first": True,
            "flag": args.flag,
        }
        records = store.changes(**arguments, min_severity=args.min_severity)
        unverified: list[ChangeRecord] = []
        if args.format != "json" and args.min_severity not in ("noise", "unverified"):
            unverified = [
                r
                for r in store.changes(**arguments, min_severity="noise")
                if r.severity == "unverified"
            ]
    finally:
        store.close()
    return records, unverified


FILTERS = [
    [],
    ["--no-baseline"],
    ["--min-severity", "noise"],
    ["--min-severity", "unverified"],
    ["--min-severity", "medium"],
    ["--min-severity", "high", "--no-baseline"],
    ["--flag", "short_notice"],
    ["--flag", "retroactive", "--min-severity", "noise"],
    ["--limit", "1"],
    ["--limit", "3", "--min-severity", "medium"],
    ["--limit", "2", "--flag", "short_notice"],
    ["--limit", "7", "--min-severity", "noise", "--no-baseline"],
    ["--source", CMS_SOURCE],
    ["--source", SECOND_PAYER_SOURCE, "--min-severity", "noise"],
    ["--source", "no-such-source"],
    ["--document", "l3"],
    ["--document", " DUPI "],
    ["--document", "_"],
    ["--document", "%"],
    ["--document", "/"],
    ["--since", "2999-01-01"],
    ["--since", "2000-01-01T00:00:00+05:00", "--no-baseline"],
]


@pytest.mark.parametrize("output", [["--format", "table"], ["--format", "json"]])
@pytest.mark.parametrize("filters", FILTERS, ids=" ".join)
def test_changes_prints_what_the_orm_read_printed(
    populated: Populated,
    filters: list[str],
    output: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = build_parser().parse_args(["changes", *filters, *output])
    assert cmd_changes(populated.config, args) == 0
    printed = capsys.readouterr().out
    print_changes(*_orm_changes(populated.config, args), args)
    assert printed == capsys.readouterr().out


@pytest.mark.parametrize("at", [0.25, 0.5, 0.9])
def test_since_an_exact_detection_time_keeps_that_change(
    populated: Populated, at: float, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--since` compares with the stored moment as the ORM did, to the microsecond."""
    moment = populated.records[int(at * len(populated.records))].detected_at
    for since in (moment, moment.replace(microsecond=0)):
        args = build_parser().parse_args(
            ["changes", "--since", since.isoformat(), "--format", "json", "--min-severity", "noise"]
        )
        assert cmd_changes(populated.config, args) == 0
        printed = capsys.readouterr().out
        print_changes(*_orm_changes(populated.config, args), args)
        assert printed == capsys.readouterr().out
        assert moment.isoformat() in printed


def test_every_record_field_and_wording_agree(populated: Populated) -> None:
    """Each record, oldest first and unfiltered, as JSON (every field and every wording) and in
    the properties JSON leaves out."""
    config = populated.config
    plain, unverified = read_changes(config.database.url, notice_days=config.notice_days())
    assert unverified == []  # asked for apart only
    assert [change_to_json(r) for r in plain] == [change_to_json(r) for r in populated.records]
    assert [(r.effective_text, r.first_seen) for r in plain] == [
        (r.effective_text, r.first_seen) for r in populated.records
    ]
    assert all(json.loads(change_to_json(r))["id"] == r.id for r in plain)


# -- opening: the same answer as the ORM read for what is not a usable database ---------------


def _both_fail(url: str) -> str:
    with pytest.raises(StoreError) as orm:
        Store.open_read_only(url)
    with pytest.raises(StoreError) as plain:
        read_changes(url)
    assert type(plain.value) is type(orm.value)
    assert str(plain.value) == str(orm.value)
    return str(plain.value)


def test_a_missing_file_is_refused_as_before(tmp_path: Path) -> None:
    message = _both_fail(f"sqlite:///{tmp_path / 'nowhere.db'}")
    assert "no database at" in message
    assert not (tmp_path / "nowhere.db").exists()


def test_a_file_that_is_not_a_database_is_refused_as_before(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are notes, not a database\n" * 200)
    assert "file is not a database" in _both_fail(f"sqlite:///{path}")


def test_an_empty_file_has_no_schema_as_before(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    assert "has no policy-monitor schema" in _both_fail(f"sqlite:///{path}")


def test_a_database_behind_or_ahead_is_refused_as_before(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    for revision, says in ((_first_revision(), "this program needs"), ("future", "newer than")):
        connection = sqlite3.connect(tmp_path / "monitor.db")
        with connection:
            connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))
        connection.close()
        assert says in _both_fail(url)
    engine = make_engine(url)
    with pytest.raises(StoreError, match="newer than this program knows"):
        upgrade(engine)  # what `check` says of it
    engine.dispose()


def _first_revision() -> str:
    """The revision id of the first migration, as its file writes it."""
    (path,) = (ROOT / "monitor/store/migrations/versions").glob("0001_*.py")
    match = re.search(r"""^revision\s*(?::[^=]*)?=\s*["']([^"']+)["']""", path.read_text(), re.M)
    assert match is not None
    return match.group(1)


def test_an_empty_migrated_database_lists_nothing_without_sqlalchemy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    config = tmp_path / "monitor.toml"
    config.write_text(f'[database]\nurl = "{url}"\n')
    script = (
        "import sys\n"
        "from monitor.cli.main import main\n"
        f"code = main(['--config', {str(config)!r}, 'changes'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic')))\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "No changes match (try --min-severity noise, or leave out --no-baseline).",
        "[]",
    ]
