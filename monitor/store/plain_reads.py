"""The changes list of `policy-monitor changes`, read with plain SQL instead of the ORM.

The same records as `Store.changes` (tests/test_cli_plain_reads.py compares them on both
backends), without importing the ORM models: a SQLite file is read through the stdlib driver,
without SQLAlchemy at all (a third of a second of the command's start-up), other databases
through SQLAlchemy Core. Anything unusual on opening (no file, an unreadable one, a schema not at
this program's head) goes through the checks of `Store.open_read_only`, so it fails the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from diffing.model import Severity
from monitor.errors import StoreError
from monitor.store.db import connect_read_only, first_line, schema_head, sqlite_read_pragmas
from monitor.store.records import (
    CHECKLIST_CHANGED,
    ChangeRecord,
    VersionLabel,
    as_utc,
    change_record,
    same_facts,
)
from monitor.wording import DEFAULT_NOTICE_DAYS, NOTICE_FLAGS

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from sqlalchemy import Engine

# The columns of `_PlainChange`, then the source, document and the two versions' columns.
_CHANGE_COLUMNS = (
    'c.id, c.version_id, c.kind, c.field, c."before", c."after", c.severity, c.evidence, '
    "c.effective_date, c.detected_at, c.baseline, c.claimed_severity, c.contradiction"
)
# Every query here is built from these constants and generated parameter names; every value is
# a bound parameter (hence the S608 exemptions).
_CHANGES = (
    f'SELECT {_CHANGE_COLUMNS}, s.name, d."key", v.title, v.url, v.source_version, '  # noqa: S608
    "v.version_number, v.effective_date, p.id, p.title, p.url, p.source_version, "
    "p.version_number, p.effective_date "
    "FROM changes AS c "
    "JOIN sources AS s ON c.source_id = s.id "
    "JOIN documents AS d ON c.document_id = d.id "
    "JOIN document_versions AS v ON c.version_id = v.id "
    "LEFT OUTER JOIN document_versions AS p ON c.previous_version_id = p.id"
)
# SQLAlchemy's `contains(..., autoescape=True)`: "/" escapes itself, "%" and "_".
_LIKE_ESCAPE = "/"


class _PlainChange(NamedTuple):
    """The stored columns of a change the wording reads (records.StoredChange)."""

    id: int
    version_id: int
    kind: str
    field: str | None
    before: str | None
    after: str | None
    severity: str
    evidence: str | None
    effective_date: object
    detected_at: object
    baseline: object
    claimed_severity: str | None
    contradiction: str | None


class _Reader(Protocol):
    def rows(self, sql: str, params: Mapping[str, object]) -> list[Sequence[Any]]: ...

    def moment(self, value: dt.datetime) -> object:
        """`value` as this database compares it with a stored UTC datetime."""
        ...

    def close(self) -> None: ...


class _SqliteReader:
    """The stdlib driver on a read-only SQLite connection, in one read transaction."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self._connection.execute("BEGIN")  # every query of the read sees one snapshot

    def rows(self, sql: str, params: Mapping[str, object]) -> list[Sequence[Any]]:
        import sqlite3

        try:
            return list(self._connection.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"database error: {first_line(exc)}") from exc

    def moment(self, value: dt.datetime) -> object:
        return _sqlite_moment(value)

    def close(self) -> None:
        self._connection.rollback()
        self._connection.close()


class _CoreReader:
    """SQLAlchemy Core on the engine `Store.open_read_only` would use, in one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection = engine.connect()
        self._sqlite = engine.dialect.name == "sqlite"

    def rows(self, sql: str, params: Mapping[str, object]) -> list[Sequence[Any]]:
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return list(self._connection.execute(text(sql), dict(params)).all())
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {first_line(exc)}") from exc

    def moment(self, value: dt.datetime) -> object:
        return _sqlite_moment(value) if self._sqlite else as_utc(value)

    def close(self) -> None:
        self._connection.close()
        self._engine.dispose()


def _sqlite_moment(value: dt.datetime) -> str:
    """How SQLAlchemy stores a UTC datetime in SQLite (its DATETIME storage format)."""
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")


def _open(url: str) -> _Reader:
    from monitor.store.db import sqlite_path

    path = sqlite_path(url)
    if path is not None and path.is_file():
        reader = _sqlite_at_head(path)
        if reader is not None:
            return reader
    # Not a SQLite file at this program's schema: the store's own checks say why (or, when
    # they find nothing wrong, read through its engine).
    from monitor.store.db import check_schema, make_read_only_engine

    engine = make_read_only_engine(url)
    try:
        check_schema(engine, str(path) if path else repr(engine.url))
    except StoreError:
        engine.dispose()
        raise
    return _CoreReader(engine)


def _sqlite_at_head(path: Path) -> _SqliteReader | None:
    """A reader of the SQLite file `path` when it opens and its schema is at this program's
    head; None for anything else."""
    import sqlite3

    try:
        connection = connect_read_only(path)
    except sqlite3.Error:
        return None
    try:
        sqlite_read_pragmas(connection)
        stamped = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
        revisions = (
            [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
            if stamped
            else []
        )
        if revisions == [schema_head()]:
            return _SqliteReader(connection)
    except sqlite3.Error:
        pass
    connection.close()
    return None


def _moment(value: object) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, dt.datetime):
        raise StoreError(f"database error: {value!r} is not a date-time")
    return as_utc(moment)


def _day(value: object) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value)
    raise StoreError(f"database error: {value!r} is not a date")


def _like(text: str) -> str:
    escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def read_changes(
    url: str,
    *,
    notice_days: Mapping[str, int] | None = None,
    since: dt.datetime | None = None,
    source: str | None = None,
    document_like: str | None = None,
    include_baseline: bool = True,
    limit: int | None = None,
    min_severity: Severity | str = Severity.NOISE,
    newest_first: bool = False,
    flag: str | None = None,
    unverified_too: bool = False,
) -> tuple[list[ChangeRecord], list[ChangeRecord]]:
    """`Store.open_read_only(url, notice_days=...).changes(...)` with these arguments, and,
    with `unverified_too`, the `unverified` records of the same call at `min_severity`
    "noise" (else []): one opening of the database for both lists."""
    reader = _open(url)
    try:
        query = _ChangesQuery(
            reader,
            periods=dict(notice_days or {}),
            since=since,
            source=source,
            document_like=document_like,
            include_baseline=include_baseline,
            limit=limit,
            newest_first=newest_first,
            flag=flag,
        )
        records = query.records(min_severity)
        unverified = (
            [r for r in query.records(Severity.NOISE) if r.severity == "unverified"]
            if unverified_too
            else []
        )
    finally:
        reader.close()
    return records, unverified


class _ChangesQuery:
    """The filters of one `changes` listing, read at one or more severity floors."""

    def __init__(
        self,
        reader: _Reader,
        *,
        periods: Mapping[str, int],
        since: dt.datetime | None,
        source: str | None,
        document_like: str | None,
        include_baseline: bool,
        limit: int | None,
        newest_first: bool,
        flag: str | None,
    ) -> None:
        if flag is not None and flag not in NOTICE_FLAGS:
            raise ValueError(f"unknown flag {flag!r}; expected one of {', '.join(NOTICE_FLAGS)}")
        self._reader = reader
        self._periods = periods
        self._limit = limit
        self._newest_first = newest_first
        self._flag = flag
        self._where: list[str] = []
        self._params: dict[str, object] = {}
        if since is not None:
            self._where.append("c.detected_at >= :since")
            self._params["since"] = reader.moment(since)
        if source is not None:
            self._where.append("s.name = :source")
            self._params["source"] = source
        if document_like is not None:
            self._where.append(
                f"(lower(d.\"key\") LIKE :like ESCAPE '{_LIKE_ESCAPE}' "
                f"OR lower(v.title) LIKE :like ESCAPE '{_LIKE_ESCAPE}')"
            )
            self._params["like"] = _like(document_like.strip().lower())
        if not include_baseline:
            self._where.append("NOT c.baseline")

    def records(self, min_severity: Severity | str) -> list[ChangeRecord]:
        """`Store.changes` at this severity floor: pages of `limit` rows until `limit` records
        pass the filters that need the wording (a checklist change's severity, the flags)."""
        floor = Severity(min_severity)
        where = list(self._where)
        params = dict(self._params)
        if floor is not Severity.NOISE:
            # A checklist change's severity is its fact's, known only once read: keep them all
            # here and filter after wording.
            kept = [s.value for s in Severity if s.rank >= floor.rank]
            names = [f"severity_{n}" for n in range(len(kept))]
            where.append(
                f"(c.severity IN ({', '.join(':' + n for n in names)}) OR c.kind = :checklist)"
            )
            params.update(zip(names, kept, strict=True))
            params["checklist"] = CHECKLIST_CHANGED
        sql = _CHANGES + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += f" ORDER BY c.id{' DESC' if self._newest_first else ''}"
        out: list[ChangeRecord] = []
        offset = 0
        while True:
            if self._limit is None:
                rows = self._reader.rows(sql, params)
            else:
                page = {**params, "limit": self._limit, "offset": offset}
                rows = self._reader.rows(sql + " LIMIT :limit OFFSET :offset", page)
            changes = [_PlainChange(*row[:13]) for row in rows]
            facts = same_facts(changes, self._siblings)
            for change, row in zip(changes, rows, strict=True):
                record = _record(change, row[13:], facts.get(change.id), self._periods)
                if self._flag is not None and self._flag not in record.flags:
                    continue
                if Severity(record.severity).rank >= floor.rank:
                    out.append(record)
            if self._limit is None or len(rows) < self._limit or len(out) >= self._limit:
                break
            offset += self._limit
        return out if self._limit is None else out[: self._limit]

    def _siblings(self, version_ids: set[int]) -> Iterable[_PlainChange]:
        names = [f"version_{n}" for n in range(len(version_ids))]
        params: dict[str, object] = dict(zip(names, sorted(version_ids), strict=True))
        params["checklist"] = CHECKLIST_CHANGED
        rows = self._reader.rows(
            f"SELECT {_CHANGE_COLUMNS} FROM changes AS c "  # noqa: S608
            f"WHERE c.version_id IN ({', '.join(':' + n for n in names)}) "
            "AND c.kind != :checklist ORDER BY c.id",
            params,
        )
        return [_PlainChange(*row) for row in rows]


def _record(
    change: _PlainChange,
    joined: Sequence[Any],
    fact: tuple[int, str] | None,
    periods: Mapping[str, int],
) -> ChangeRecord:
    """`joined`: the source's name, the document's key, the version's five columns, the
    previous version's id (NULL when there is none) and its five columns."""
    source, key = joined[0], joined[1]
    return change_record(
        change,
        source=source,
        document_id=key,
        version=_version(joined[2:7]),
        previous=None if joined[7] is None else _version(joined[8:13]),
        stated_effective_date=_day(change.effective_date),
        detected_at=_moment(change.detected_at),
        baseline=bool(change.baseline),
        claimed_severity=change.claimed_severity,
        contradiction=change.contradiction,
        fact=fact,
        notice_days=periods.get(source, DEFAULT_NOTICE_DAYS),
    )


def _version(columns: Sequence[Any]) -> VersionLabel:
    title, url, source_version, version_number, effective_date = columns
    return VersionLabel(
        title=title,
        url=url,
        source_version=source_version,
        version_number=version_number,
        effective_date=_day(effective_date),
    )
