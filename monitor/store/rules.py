"""Rule rows: written with each published version, read as of a date of service and/or as
known at a moment.

Two as-of questions, combinable:
- ``as_of`` (a date of service): for each document, the version that applies on that date is
  the one with the latest effective date on or before it (ties: the higher version number,
  then the later publication), unless that version is retired on or before the date.
- ``known_at`` (a moment): only versions published by then count, both as answers and as
  the later versions that supersede them.

Effective-to is derived, never stored (see `monitor.store.models.rules` for why): the answer's
version stops applying at the earliest effective date of a later version (in the order above)
known at ``known_at``, or at its own retirement date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from itertools import chain, groupby, islice
from operator import attrgetter, itemgetter
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    DateTime,
    Integer,
    SQLColumnExpression,
    String,
    Table,
    and_,
    bindparam,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from diffing.model import Criteria
from diffing.rules import RuleRow, code_runs, fact_rows, rule_payer
from monitor.errors import StoreError
from monitor.store.core import Store
from monitor.store.models.core import Document, DocumentVersion, SourceRow
from monitor.store.models.rules import RuleRowModel
from monitor.store.types import as_utc

DAWN = dt.date(1, 1, 1)  # a version without an effective date applies from the beginning
MAX_LIMIT = 1000
_ROW_FIELDS = (
    "kind",
    "payer",
    "effective_from",
    "retired_on",
    "text",
    "code_system",
    "code",
    "code_group",
    "drug",
    "indication",
    "subject",
    "op",
    "value",
    "unit",
    "days",
    "count",
    "required",
    "evidence",
    "evidence_page",
    "evidence_section",
    "branch",
    "tree_path",
)


def insert_rule_rows(
    session: Session,
    rows: Sequence[RuleRow],
    *,
    version_id: int,
    document_id: int,
    source_id: int,
    version_number: int,
    published_at: dt.datetime,
) -> int:
    """Insert one version's rows with one executemany (a CMS Article can have 10,000 codes)."""
    values = rule_values(
        session,
        rows,
        version_id=version_id,
        document_id=document_id,
        source_id=source_id,
        version_number=version_number,
        published_at=published_at,
    )
    return insert_rule_values(session, values)


RuleValues = tuple[object, ...]  # one rule row as the driver takes it (`_INSERT_COLUMNS`)


def rule_values(
    session: Session,
    rows: Sequence[RuleRow],
    *,
    version_id: int,
    document_id: int,
    source_id: int,
    version_number: int,
    published_at: dt.datetime,
) -> list[RuleValues]:
    """One version's rows as driver tuples, for `insert_rule_values` (a publishing batch
    gathers the rows of all its versions and writes them with one executemany).

    Tuples, not SQLAlchemy parameters: SQLAlchemy's per-row parameter processing was most of a
    full CMS baseline's rule-row cost (half a million rows; bench/cms_full_scale.py). On SQLite
    the values are written the way SQLAlchemy's Date and DateTime types store them.
    """
    if not rows:
        return []
    fixed, date = _fixed(session, version_id, document_id, source_id, version_number, published_at)
    # One attrgetter call per row for the plain fields (C, not ten million Python calls for a
    # full CMS baseline); only the kind and the two dates need converting.
    return [
        (*fixed, date(row.effective_from), date(row.retired_on), row.kind.value, *_PLAIN(row))
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class SharedRows:
    """Consecutive rule rows equal in all but their own columns (a code run's: text, code,
    code_group): the values they share once, and each row's own three. A row is
    ``(*shared, *own)``."""

    shared: RuleValues
    own: list[RuleValues]


RuleParts = list[RuleValues | SharedRows]  # rows in order: single rows and runs of rows


def criteria_rule_parts(
    session: Session,
    criteria: Criteria,
    *,
    version_id: int,
    document_id: int,
    source_id: int,
    version_number: int,
    published_at: dt.datetime,
) -> RuleParts:
    """``rule_values(session, flatten(criteria), …)``, the same rows in the same order (as
    `rule_rows_of` expands them), for `insert_rule_values`: each code run as `SharedRows`
    (not a `RuleRow`, nor a tuple, per code), a code's row being its run's shared columns
    and its own three (`diffing.rules.CodeRun`). A full CMS baseline has half a million code
    rows; making each a RuleRow and reading it back was a tenth of its publishing thread, and
    making each a 27-value tuple, for the insert to take apart again, a tenth of the thread's
    GIL time (bench/cms_full_scale.py)."""
    fixed, date = _fixed(session, version_id, document_id, source_id, version_number, published_at)
    effective, retired = date(criteria.effective_date), date(criteria.retirement_date)
    payer = rule_payer(criteria)
    parts: RuleParts = [
        SharedRows(
            shared=(
                *fixed,
                effective,
                retired,
                run.kind.value,
                payer,
                run.code_system,
                run.drug,
                run.table,
                *_CODE_ROW_NONES,
            ),
            own=list(map(_CODE_OWN, run.codes)),
        )
        for run in code_runs(criteria)
    ]
    parts += rule_values(
        session,
        fact_rows(criteria),
        version_id=version_id,
        document_id=document_id,
        source_id=source_id,
        version_number=version_number,
        published_at=published_at,
    )
    return parts


def rule_rows_of(parts: Iterable[RuleValues | SharedRows]) -> list[RuleValues]:
    """Each row of `parts` as a whole tuple, in order."""
    return list(chain.from_iterable(map(_rows_of, parts)))


def rule_count(parts: Sequence[RuleValues | SharedRows]) -> int:
    """How many rows `parts` hold."""
    return sum(len(part.own) if isinstance(part, SharedRows) else 1 for part in parts)


def _rows_of(part: RuleValues | SharedRows) -> Iterable[RuleValues]:
    if isinstance(part, SharedRows):
        shared = part.shared
        return [(*shared, *own) for own in part.own]
    return (part,)


def _fixed(
    session: Session,
    version_id: int,
    document_id: int,
    source_id: int,
    version_number: int,
    published_at: dt.datetime,
) -> tuple[tuple[object, ...], Callable[[dt.date | None], object]]:
    """The version's columns every row repeats, and how a date is written: on SQLite the
    way SQLAlchemy's Date and DateTime types store them, on PostgreSQL as it is."""
    fixed: tuple[object, ...] = (version_id, document_id, source_id, version_number, published_at)
    if session.get_bind().dialect.name != "sqlite":
        return fixed, _as_is
    return tuple(_sqlite_value(v) for v in fixed), _iso_or_none


def _as_is(value: dt.date | None) -> object:
    return value


def _iso_or_none(value: dt.date | None) -> object:
    return value.isoformat() if value else None


def insert_rule_values(session: Session, values: Sequence[RuleValues | SharedRows]) -> int:
    """Write rows made by `rule_values` (or `criteria_rule_parts`), straight to the driver:
    one executemany, or on PostgreSQL (psycopg) one COPY, its bulk-loading path. Returns how
    many rows were written."""
    if not values:
        return 0
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        return _insert_sqlite(connection, values)
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        columns = ", ".join(_INSERT_COLUMNS)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(f"COPY {RuleRowModel.__tablename__} ({columns}) FROM STDIN") as copy:
                for row in chain.from_iterable(map(_rows_of, values)):
                    copy.write_row(row)
        finally:
            cursor.close()
        return rule_count(values)
    sql = (
        f"INSERT INTO {RuleRowModel.__tablename__} ({', '.join(_INSERT_COLUMNS)}) "
        f"VALUES ({', '.join(['%s'] * len(_INSERT_COLUMNS))})"
    )
    listed = rule_rows_of(values)
    connection.exec_driver_sql(sql, listed)
    return len(listed)


def _insert_sqlite(connection: Connection, values: Sequence[RuleValues | SharedRows]) -> int:
    """`insert_rule_values` on SQLite: consecutive rows that leave the same columns NULL are
    written by one executemany of a statement that says NULL there, instead of binding None.

    The sqlite3 module binds None only after looking for an adapter (a tuple made, a dict
    looked up, two attributes not found): ten times what binding a number costs. A code's row
    leaves 14 of its 27 columns NULL, and binding those Nones was a third of the Python time
    of a full CMS baseline's half a million rule rows (bench/cms_full_scale.py). The values
    written are the same; only how NULL reaches SQLite differs.

    The driver's own cursor, in the session's transaction: an executemany or two per run of
    rows, and a version's code rows and code pairs make a run each, so SQLAlchemy's
    per-execution bookkeeping would cost more than it does for one statement per batch. A
    driver error is raised as SQLAlchemy would have raised it (`DBAPIError.instance`).

    Rows go in several to a statement (`_sqlite_statement`'s ``rows``): the sqlite3 module lets
    go of the GIL around every statement it steps, and taking it back waited on the thread
    fetching the next documents, for each of half a million rows (the publishing thread's
    wall time in rule-row inserts was four times its CPU time; bench/cms_full_scale.py). A
    statement of many rows takes it back once for all of them; the rows are the same and are
    inserted in the same order (a VALUES list inserts its rows in order).
    """
    dbapi = connection.dialect.dbapi
    assert dbapi is not None
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    sql = ""
    written = 0
    try:
        for shared, own in _runs_sharing(values):
            written += len(own)
            if shared is not None:
                sql = _insert_sharing(cursor, shared, own)
                continue
            for nulls, run in _runs_by_nulls(own):
                sql = _insert_run(cursor, nulls, run)
    except dbapi.Error as exc:
        raise DBAPIError.instance(sql, None, exc, dbapi.Error) from exc
    finally:
        cursor.close()
    return written


def _insert_run(cursor: Any, nulls: tuple[int, ...], rows: list[RuleValues]) -> str:
    """Rows NULL at `nulls` (and only there, of `_NULLABLE`): statements of many rows, then
    the rest one at a time. Returns the last statement's SQL."""
    sql, kept, per_statement = _sqlite_statement(nulls, _MAX_BOUND_VALUES)
    # Iterators, not lists: each row's values are let go once bound (a list of them all
    # counted towards the garbage collector's next collection).
    picked = iter(rows) if kept is None else map(kept, rows)
    whole = len(rows) - len(rows) % per_statement
    if whole:
        width = len(_INSERT_COLUMNS) - len(nulls)
        values_of = iter(chain.from_iterable(islice(picked, whole)))
        # zip of one iterator n times: consecutive groups of n values, each a tuple.
        cursor.executemany(sql, zip(*[values_of] * (width * per_statement), strict=True))
    if whole < len(rows):
        sql, _kept, _one = _sqlite_statement(nulls, 0)
        cursor.executemany(sql, picked)
    return sql


def _runs_sharing(
    values: Sequence[RuleValues | SharedRows],
) -> Iterator[tuple[RuleValues | None, list[RuleValues]]]:
    """`values` in order, as runs of rows equal in all but their own columns (the values they
    share and each row's own, at least `_SHARING_AT_LEAST` of them) and runs of the whole rows
    between those (None and the rows). A `SharedRows` is such a run already; rows given one
    by one are grouped here."""
    others: list[RuleValues] = []
    for part in values:
        if isinstance(part, SharedRows):
            if len(part.own) < _SHARING_AT_LEAST:
                others += _rows_of(part)
                continue
            if others:
                yield from _grouped(others)
                others = []
            yield part.shared, part.own
        else:
            others.append(part)
    if others:
        yield from _grouped(others)


def _grouped(values: list[RuleValues]) -> Iterator[tuple[RuleValues | None, list[RuleValues]]]:
    """`_runs_sharing` of rows given one by one (`rule_values`'s)."""
    others: list[RuleValues] = []
    for shared, group in groupby(values, _SHARED):
        rows = list(group)
        if len(rows) < _SHARING_AT_LEAST:
            others += rows
            continue
        if others:
            yield None, others
            others = []
        yield shared, list(map(_OWN_OF, rows))
    if others:
        yield None, others


def _insert_sharing(cursor: Any, shared: RuleValues, own_values: list[RuleValues]) -> str:
    """Rows equal in all but their own columns: each statement binds the shared values
    once, by number, and each row's own three (not all 13 a code row binds). Binding was
    most of the Python time of a full CMS baseline's rule-row inserts
    (bench/cms_full_scale.py). Returns the last statement's SQL."""
    nulls = tuple(i for i, value in enumerate(shared) if value is None)
    bound = tuple(value for value in shared if value is not None)
    own = iter(chain.from_iterable(own_values))
    left = len(own_values)
    sql = ""
    for count in _SHARING_ROWS:
        times = left // count
        if not times:
            continue
        left -= times * count
        sql = _sharing_statement(nulls, count)
        chunks = zip(*[own] * (_OWN * count), strict=True)
        if times == 1:
            cursor.execute(sql, bound + next(chunks))
        else:
            cursor.executemany(sql, (bound + chunk for chunk in islice(chunks, times)))
    return sql


@lru_cache(maxsize=256)
def _sharing_statement(nulls: tuple[int, ...], rows: int) -> str:
    """The INSERT of `rows` rows whose shared columns are NULL at `nulls` and bound once, as
    ?1, ?2 …, and whose own columns are bound after them, row by row."""
    shared: list[str] = []
    number = 0
    for i in range(len(_INSERT_COLUMNS) - _OWN):
        if i in nulls:
            shared.append("NULL")
        else:
            number += 1
            shared.append(f"?{number}")
    tuples = (
        "(" + ", ".join([*shared, *(f"?{number + _OWN * r + k + 1}" for k in range(_OWN))]) + ")"
        for r in range(rows)
    )
    return (
        f"INSERT INTO {RuleRowModel.__tablename__} ({', '.join(_INSERT_COLUMNS)}) "
        f"VALUES {', '.join(tuples)}"
    )


def _runs_by_nulls(
    values: Sequence[RuleValues],
) -> Iterator[tuple[tuple[int, ...], list[RuleValues]]]:
    """`values` in order, as runs of consecutive rows NULL in the same `_NULLABLE` columns
    (the positions of those columns): rows are grouped by those columns' values (C code,
    equal for a version's code rows), and neighbouring groups NULL in the same columns are
    joined (fact rows, whose evidence differs from row to row)."""
    nulls: tuple[int, ...] | None = None
    run: list[RuleValues] = []
    for key, group in groupby(values, _NULLABLE_OF):
        these = tuple(i for i, v in zip(_NULLABLE, key, strict=True) if v is None)
        if these != nulls:
            if run:
                assert nulls is not None
                yield nulls, run
            nulls, run = these, []
        run.extend(group)
    if run:
        assert nulls is not None
        yield nulls, run


# The most values bound to one statement: SQLite's limit before 3.32 (32,766 since), so any
# SQLite Python links takes it; a code row binds 13, so a statement inserts 76 of them.
_MAX_BOUND_VALUES = 999


@lru_cache(maxsize=256)
def _sqlite_statement(
    nulls: tuple[int, ...], max_bound: int
) -> tuple[str, Callable[[RuleValues], RuleValues] | None, int]:
    """The INSERT saying NULL at the positions `nulls`, what takes the other values of a row
    (None: all of them), and how many rows it inserts: as many as bind at most `max_bound`
    values together (at least one; 0: one)."""
    marks = ", ".join("NULL" if i in nulls else "?" for i in range(len(_INSERT_COLUMNS)))
    width = len(_INSERT_COLUMNS) - len(nulls)
    rows = max(1, max_bound // width) if width else 1
    sql = (
        f"INSERT INTO {RuleRowModel.__tablename__} ({', '.join(_INSERT_COLUMNS)}) "
        f"VALUES {', '.join([f'({marks})'] * rows)}"
    )
    if not nulls:
        return sql, None, rows
    kept = itemgetter(*(i for i in range(len(_INSERT_COLUMNS)) if i not in nulls))
    return sql, kept, rows


# The column order of the INSERT: the version's columns, the converted ones, then the plain
# fields with those a code row sets from its run first and from the code itself last (so a
# code's row is its run's tuple and three values: `criteria_rule_parts`).
_CONVERTED = ("effective_from", "retired_on", "kind")
_RUN_FIELDS = ("payer", "code_system", "drug", "evidence_section")
_CODE_FIELDS = ("text", "code", "code_group")
_PLAIN_FIELDS = (
    *_RUN_FIELDS,
    *(name for name in _ROW_FIELDS if name not in (*_CONVERTED, *_RUN_FIELDS, *_CODE_FIELDS)),
    *_CODE_FIELDS,
)
_PLAIN = attrgetter(*_PLAIN_FIELDS)
# A code row leaves these None (RuleRow's defaults), its text is the code's description.
_CODE_ROW_NONES = (None,) * (len(_PLAIN_FIELDS) - len(_RUN_FIELDS) - len(_CODE_FIELDS))
_CODE_OWN = attrgetter("description", "code", "group")
assert sorted((*_CONVERTED, *_PLAIN_FIELDS)) == sorted(_ROW_FIELDS)


_INSERT_COLUMNS = (
    "version_id",
    "document_id",
    "source_id",
    "version_number",
    "published_at",
    *_CONVERTED,
    *_PLAIN_FIELDS,
)


# A row's own columns (a code's: text, code, code_group) are the last `_OWN` of the INSERT;
# rows alike in all the others share those values in a statement (`_insert_sharing`) once at
# least `_SHARING_AT_LEAST` of them follow one another (a version's codes of one table).
_OWN = len(_CODE_FIELDS)
_SHARED = itemgetter(slice(0, len(_INSERT_COLUMNS) - _OWN))
_OWN_OF = itemgetter(*range(len(_INSERT_COLUMNS) - _OWN, len(_INSERT_COLUMNS)))
_SHARING_AT_LEAST = 8
_SHARING_ROWS = (256, 128, 64, 32, 16, 8, 4, 2, 1)  # rows in one statement, largest first
assert _INSERT_COLUMNS[-_OWN:] == _CODE_FIELDS

# Where a row may be NULL for all the rows of a version or of a code run (the code's own
# columns, which differ from row to row, are bound as they are).
_NULLABLE = tuple(
    i
    for i, name in enumerate(_INSERT_COLUMNS)
    if cast(Table, RuleRowModel.__table__).c[name].nullable and name not in _CODE_FIELDS
)
_NULLABLE_OF = itemgetter(*_NULLABLE)


def _sqlite_value(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dt.datetime):  # SQLAlchemy's SQLite DATETIME: naive UTC, microseconds
        utc = value.astimezone(dt.UTC) if value.tzinfo else value
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@dataclass(frozen=True, kw_only=True)
class RuleRecord:
    """A rule row as the API shows it: the fact, where it came from, when it applies."""

    id: int
    kind: str
    source: str
    payer: str
    document: str
    title: str
    version: str
    version_id: int
    url: str
    effective_from: dt.date | None
    effective_to: dt.date | None  # derived: next known version's effective date or retirement
    published_at: dt.datetime
    code_system: str | None
    code: str | None
    code_group: int | None
    drug: str | None
    indication: str | None
    subject: str | None
    op: str | None
    value: float | None
    unit: str | None
    days: int | None
    count: int | None
    required: bool | None
    text: str
    evidence: str | None
    evidence_page: int | None
    evidence_section: str | None
    branch: str | None = None  # the criteria tree's branch: initial, continuation …
    tree_path: str | None = None  # the leaf's place in the policy's logic


# The name monitor.store.checklists knows; the ORM hands back aware datetimes already
# (monitor.store.types.UTCDateTime), only raw driver values still need it.


def _effective(column: SQLColumnExpression[dt.date | None]) -> ColumnElement[dt.date]:
    return func.coalesce(column, literal(DAWN, Date), type_=Date)


def _comes_after(
    later: Any,
    own: ColumnElement[dt.date],
    theirs: ColumnElement[dt.date],
    version_number: SQLColumnExpression[int],
    version_id: SQLColumnExpression[int],
) -> ColumnElement[bool]:
    """SQL: version `later` comes after the given one in applying order (effective date,
    then version number, then id)."""
    return or_(
        theirs > own,
        and_(
            theirs == own,
            or_(
                later.version_number > version_number,
                and_(later.version_number == version_number, later.id > version_id),
            ),
        ),
    )


def applies_as_of(
    *,
    document_id: SQLColumnExpression[int],
    version_id: SQLColumnExpression[int],
    version_number: SQLColumnExpression[int],
    effective_from: SQLColumnExpression[dt.date | None],
    retired_on: SQLColumnExpression[dt.date | None],
    as_of: Any,
    known_at: Any,
) -> ColumnElement[bool]:
    """SQL: the version described by these columns is the one of its document that applies on
    `as_of`, counting only versions published by `known_at` (None: all). Both may be values or
    bound parameters."""
    later = aliased(DocumentVersion)
    own = _effective(effective_from)
    theirs = _effective(later.effective_date)
    superseding = select(later.id).where(
        later.document_id == document_id,
        theirs <= as_of,
        _comes_after(later, own, theirs, version_number, version_id),
    )
    if known_at is not None:
        superseding = superseding.where(later.published_at <= known_at)
    return and_(
        own <= as_of,
        or_(retired_on.is_(None), retired_on > as_of),
        ~exists(superseding),
    )


# Only these columns are read: a Core select (no ORM entities) of a statement built once per
# combination of filters, so a lookup costs one execution (measured: building the statement
# anew took more time than SQLite answering it).
_COLUMNS = (
    RuleRowModel.id,
    RuleRowModel.document_id,
    RuleRowModel.version_id,
    RuleRowModel.version_number,
    RuleRowModel.published_at,
    RuleRowModel.effective_from,
    RuleRowModel.retired_on,
    RuleRowModel.kind,
    RuleRowModel.payer,
    RuleRowModel.code_system,
    RuleRowModel.code,
    RuleRowModel.code_group,
    RuleRowModel.drug,
    RuleRowModel.indication,
    RuleRowModel.subject,
    RuleRowModel.op,
    RuleRowModel.value,
    RuleRowModel.unit,
    RuleRowModel.days,
    RuleRowModel.count,
    RuleRowModel.required,
    RuleRowModel.text,
    RuleRowModel.evidence,
    RuleRowModel.evidence_page,
    RuleRowModel.evidence_section,
    RuleRowModel.branch,
    RuleRowModel.tree_path,
)
_FILTERS = ("code", "drug", "payer", "document", "kind", "branch", "after_id")


@lru_cache(maxsize=128)
def _rules_statement(filters: frozenset[str], by_date: bool, by_knowledge: bool) -> Any:
    r = RuleRowModel
    known = bindparam("known_at", type_=DateTime(timezone=True)) if by_knowledge else None
    # The next version in applying order (see the module docstring) takes effect on the
    # smallest effective date among the versions that come after this one.
    later = aliased(DocumentVersion)
    own = _effective(r.effective_from)
    theirs = _effective(later.effective_date)
    following = select(func.min(theirs, type_=Date)).where(
        later.document_id == r.document_id,
        _comes_after(later, own, theirs, r.version_number, r.version_id),
    )
    if known is not None:
        following = following.where(later.published_at <= known)
    query = (
        select(
            *_COLUMNS,
            following.scalar_subquery().label("next_effective"),
            SourceRow.name,
            Document.key,
            Document.title,
            DocumentVersion.source_version,
            DocumentVersion.url,
        )
        .join(Document, r.document_id == Document.id)
        .join(SourceRow, r.source_id == SourceRow.id)
        .join(DocumentVersion, r.version_id == DocumentVersion.id)
        .order_by(r.id)
        .limit(bindparam("limit", type_=Integer))
    )
    if "code" in filters:
        query = query.where(r.code == bindparam("code", type_=String))
    if "drug" in filters:
        query = query.where(r.drug == bindparam("drug", type_=String))
    if "payer" in filters:
        query = query.where(func.lower(r.payer).like(bindparam("payer", type_=String), escape="/"))
    if "document" in filters:
        query = query.where(Document.key == bindparam("document", type_=String))
    if "kind" in filters:
        query = query.where(r.kind == bindparam("kind", type_=String))
    if "branch" in filters:
        query = query.where(r.branch == bindparam("branch", type_=String))
    if "after_id" in filters:
        query = query.where(r.id > bindparam("after_id", type_=Integer))
    if known is not None:
        query = query.where(r.published_at <= known)
    if by_date:
        query = query.where(
            applies_as_of(
                document_id=r.document_id,
                version_id=r.version_id,
                version_number=r.version_number,
                effective_from=r.effective_from,
                retired_on=r.retired_on,
                as_of=bindparam("as_of", type_=Date),
                known_at=known,
            )
        )
    return query


def query_rule_rows(
    store: Store,
    *,
    code: str | None = None,
    drug: str | None = None,
    payer: str | None = None,
    document: str | None = None,
    kind: str | None = None,
    branch: str | None = None,
    as_of: dt.date | None = None,
    known_at: dt.datetime | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[tuple[Any, ...]]:
    """The driver's raw rows (see `_record` and `rule_row_json`) of the rule rows matching every
    filter given, ordered by id, after `after_id`: at most
    `limit`, capped at `MAX_LIMIT` + 1 (so a caller showing `MAX_LIMIT` can ask for one more
    to learn whether a next page exists). Without `as_of` every version's rows are returned
    (each with its derived effective-from/to); with it, only the rows of the version that
    applies that day."""
    params: dict[str, object] = {"limit": max(1, min(limit, MAX_LIMIT + 1))}
    if code is not None:
        params["code"] = code.strip().upper()
    if drug is not None:
        params["drug"] = drug.strip().lower()
    if payer is not None:
        escaped = payer.strip().lower().replace("/", "//").replace("%", "/%").replace("_", "/_")
        params["payer"] = f"%{escaped}%"
    if document is not None:
        params["document"] = document
    if kind is not None:
        params["kind"] = kind
    if branch is not None:
        params["branch"] = branch.strip().lower()
    if after_id is not None:
        params["after_id"] = after_id
    if as_of is not None:
        params["as_of"] = as_of
    if known_at is not None:
        params["known_at"] = as_utc(known_at)
    statement = _rules_statement(
        frozenset(name for name in _FILTERS if name in params),
        as_of is not None,
        known_at is not None,
    )
    try:
        with store.engine.connect() as connection:
            sql, bind = _compiled(statement, connection.dialect)
            cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(sql, bind(params))
                rows = cursor.fetchall()
            finally:
                cursor.close()
    except (SQLAlchemyError, DBAPIError) as exc:
        raise StoreError(f"database error: {exc}") from exc
    except Exception as exc:  # the driver's own errors, untranslated on this path
        if type(exc).__module__.startswith(("sqlite3", "psycopg")):
            raise StoreError(f"database error: {exc}") from exc
        raise
    return rows


def query_rules(
    store: Store,
    *,
    code: str | None = None,
    drug: str | None = None,
    payer: str | None = None,
    document: str | None = None,
    kind: str | None = None,
    branch: str | None = None,
    as_of: dt.date | None = None,
    known_at: dt.datetime | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[RuleRecord]:
    """Rule rows matching every filter given, ordered by id, after `after_id`: at most
    `limit`, capped at `MAX_LIMIT` + 1 (so a caller showing `MAX_LIMIT` can ask for one more
    to learn whether a next page exists). Without `as_of` every version's rows are returned
    (each with its derived effective-from/to); with it, only the rows of the version that
    applies that day."""
    rows = query_rule_rows(
        store,
        code=code,
        drug=drug,
        payer=payer,
        document=document,
        kind=kind,
        branch=branch,
        as_of=as_of,
        known_at=known_at,
        after_id=after_id,
        limit=limit,
    )
    return [_record(row) for row in rows]


@lru_cache(maxsize=256)
def _compiled(statement: Any, dialect: Any) -> tuple[str, Any]:
    """The SQL text of a (cached) rules statement and a function making its driver parameters.

    The hot path of the rules API (bench/api.py) runs the statement on the driver's cursor:
    SQLAlchemy's per-execution bookkeeping and per-row result processing were a third of a
    lookup. The statement is still built, compiled and bound by SQLAlchemy (bind processors
    included), once per filter combination; `_record` reads the driver's raw values.
    """
    compiled = statement.compile(dialect=dialect)
    processors = compiled._bind_processors
    positions = compiled.positiontup

    def bind(params: dict[str, object]) -> Any:
        values = compiled.construct_params(params)
        processed = {
            name: (processors[name](value) if name in processors else value)
            for name, value in values.items()
        }
        if positions is not None:  # qmark/format drivers (SQLite): a sequence
            return [processed[name] for name in positions]
        return processed  # pyformat drivers (psycopg): a mapping

    return str(compiled), bind


def _date(value: Any) -> dt.date | None:
    """A date column as SQLite returns it (ISO text) or PostgreSQL does (a date)."""
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _moment(value: Any) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return as_utc(moment)


def _record(row: Any) -> RuleRecord:
    # Positional unpacking: attribute access on result rows cost more than the query itself.
    (
        rule_id, _document_id, version_id, version_number, published_at, effective_from,
        retired_on, kind, payer, code_system, code, code_group, drug, indication, subject, op,
        value, unit, days, count, required, text, evidence, evidence_page, evidence_section,
        branch, tree_path, next_effective, source, key, title, source_version, url,
    ) = row  # fmt: skip
    effective_from, retired_on = _date(effective_from), _date(retired_on)
    next_effective = _date(next_effective)
    published_at = _moment(published_at)
    required = None if required is None else bool(required)
    ends = [end for end in (next_effective, retired_on) if end is not None and end != DAWN]
    return RuleRecord(
        id=rule_id,
        kind=kind,
        source=source,
        payer=payer,
        document=key,
        title=title,
        version=source_version or str(version_number),
        version_id=version_id,
        url=url,
        effective_from=effective_from,
        effective_to=min(ends) if ends else None,
        published_at=as_utc(published_at),
        code_system=code_system,
        code=code,
        code_group=code_group,
        drug=drug,
        indication=indication,
        subject=subject,
        op=op,
        value=value,
        unit=unit,
        days=days,
        count=count,
        required=required,
        text=text,
        evidence=evidence,
        evidence_page=evidence_page,
        evidence_section=evidence_section,
        branch=branch,
        tree_path=tree_path,
    )


_DAWN_TEXT = DAWN.isoformat()


def _iso_date(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else value.isoformat()


def _iso_moment(value: Any) -> str:
    """A stored moment as the API writes it: ISO 8601 with "Z" (stored times are UTC)."""
    if isinstance(value, str):  # SQLite: "2026-11-27 02:00:03.255304", naive UTC
        return value.replace(" ", "T", 1).removesuffix(".000000") + "Z"
    text = as_utc(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def rule_row_json(row: Any) -> dict[str, object]:
    """A raw rule row as the API's JSON (the same object `RuleOut` renders from `_record`),
    built without the intermediate record: the rules API's hot path (bench/api.py)."""
    (
        rule_id, _document_id, version_id, version_number, published_at, effective_from,
        retired_on, kind, payer, code_system, code, code_group, drug, indication, subject, op,
        value, unit, days, count, required, text, evidence, evidence_page, evidence_section,
        branch, tree_path, next_effective, source, key, title, source_version, url,
    ) = row  # fmt: skip
    ends = [
        end
        for end in (_iso_date(next_effective), _iso_date(retired_on))
        if end is not None and end != _DAWN_TEXT
    ]
    return {
        "id": rule_id,
        "kind": kind,
        "source": source,
        "payer": payer,
        "document": key,
        "title": title,
        "version": source_version or str(version_number),
        "version_id": version_id,
        "url": url,
        "effective_from": _iso_date(effective_from),
        "effective_to": min(ends) if ends else None,
        "published_at": _iso_moment(published_at),
        "code_system": code_system,
        "code": code,
        "code_group": code_group,
        "drug": drug,
        "indication": indication,
        "subject": subject,
        "op": op,
        "value": value,
        "unit": unit,
        "days": days,
        "count": count,
        "required": None if required is None else bool(required),
        "text": text,
        "evidence": evidence,
        "evidence_page": evidence_page,
        "evidence_section": evidence_section,
        "branch": branch,
        "tree_path": tree_path,
    }
