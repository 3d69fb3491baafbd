"""The store: sources, runs, documents and their immutable versions, criteria and changes.

All database access of the service goes through `Store` and the query modules beside it in
`monitor.store`; nothing outside the package builds queries.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, exists, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased, sessionmaker

from diffing.model import Criteria, Severity
from diffing.serialize import criteria_from_json
from monitor.errors import StoreError
from monitor.store.db import (
    check_schema,
    first_line,
    make_engine,
    make_read_only_engine,
    sqlite_path,
    upgrade,
)
from monitor.store.models.api import ChangeReview
from monitor.store.models.core import (
    ChangeRow,
    CriteriaRow,
    Document,
    DocumentVersion,
    ListingEntry,
    RunError,
    SourceRow,
    SourceRun,
)
from monitor.store.records import (
    CHECKLIST_CHANGED,
    ChangeRecord,
    VersionLabel,
    change_record,
    same_facts,
)
from monitor.wording import DEFAULT_NOTICE_DAYS, NOTICE_FLAGS
from sources.base import Validators


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def compress(data: bytes) -> bytes:
    # Level 1: measured 3x faster than the default on code-table JSON for ~15 % more bytes.
    return zlib.compress(data, 1)


def decompress(data: bytes) -> bytes:
    return zlib.decompress(data)


@dataclass(frozen=True, kw_only=True)
class RunCounts:
    listed: int = 0
    fetched: int = 0
    new_versions: int = 0
    unchanged: int = 0
    changes: int = 0
    errors: int = 0
    requests: int = 0


@dataclass(frozen=True, kw_only=True)
class SourceStatus:
    name: str
    kind: str
    documents: int
    baseline_done: bool
    last_run: SourceRun | None
    # What failed in the last run, each with its reason: documents and index pages alike.
    failures: tuple[RunFailure, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RunFailure:
    document: str | None  # the document key; None for a listing problem (an index page)
    url: str | None
    reason: str


class Store:
    def __init__(self, engine: Engine, *, notice_days: Mapping[str, int] | None = None) -> None:
        """`notice_days`: each source's notice period by name (`Config.notice_days()`), which
        the changes read are flagged against; a source not named gets DEFAULT_NOTICE_DAYS."""
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.notice_days: Mapping[str, int] = dict(notice_days or {})

    @classmethod
    def open(
        cls, url: str, *, migrate: bool = True, notice_days: Mapping[str, int] | None = None
    ) -> Store:
        engine = make_engine(url)
        if migrate:
            upgrade(engine)
        return cls(engine, notice_days=notice_days)

    @classmethod
    def open_read_only(cls, url: str, *, notice_days: Mapping[str, int] | None = None) -> Store:
        """The store of a read-only command: an existing database, never created or migrated
        (a SQLite file is opened read-only), refused in one line when its schema is not
        this program's or the file is not a database."""
        engine = make_read_only_engine(url)
        path = sqlite_path(url)
        try:
            check_schema(engine, str(path) if path else repr(engine.url))
        except StoreError:
            engine.dispose()
            raise
        return cls(engine, notice_days=notice_days)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on any error."""
        session = self._sessions()
        try:
            with session.begin():
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {first_line(exc)}") from exc
        finally:
            session.close()

    # -- sources and runs ------------------------------------------------------------------

    def ensure_source(self, name: str, kind: str) -> SourceRow:
        with self.session() as s:
            row = s.scalar(select(SourceRow).where(SourceRow.name == name))
            if row is None:
                row = SourceRow(name=name, kind=kind, created_at=utcnow())
                s.add(row)
                s.flush()
            elif row.kind != kind:
                raise StoreError(
                    f"source {name!r} was stored as kind {row.kind!r}, config now says {kind!r}"
                )
            return row

    def start_run(self, source_id: int, *, baseline: bool) -> int:
        with self.session() as s:
            run = SourceRun(
                source_id=source_id,
                started_at=utcnow(),
                outcome="running",
                baseline=baseline,
                listed=0,
                fetched=0,
                new_versions=0,
                unchanged=0,
                changes=0,
                errors=0,
                requests=0,
            )
            s.add(run)
            s.flush()
            return run.id

    def record_run_error(
        self, run_id: int, *, key: str | None, url: str | None, message: str
    ) -> None:
        with self.session() as s:
            s.add(RunError(run_id=run_id, document_key=key, url=url, message=message))

    def finish_run(
        self,
        run_id: int,
        *,
        outcome: str,
        counts: RunCounts,
        error: str | None = None,
        complete_baseline: bool = False,
    ) -> None:
        with self.session() as s:
            run = s.get_one(SourceRun, run_id)
            run.finished_at = utcnow()
            run.outcome = outcome
            run.error = error
            for name in RunCounts.__dataclass_fields__:
                setattr(run, name, getattr(counts, name))
            if complete_baseline:
                source = s.get_one(SourceRow, run.source_id)
                source.baseline_completed_at = source.baseline_completed_at or run.finished_at

    def run_errors(self, run_id: int) -> list[RunError]:
        with self.session() as s:
            return list(s.scalars(select(RunError).where(RunError.run_id == run_id)))

    def sources_with_running_runs(self) -> list[str]:
        """Names of the sources with a run marked 'running' (live, or left by a dead process)."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(SourceRow.name)
                    .join(SourceRun, SourceRun.source_id == SourceRow.id)
                    .where(SourceRun.outcome == "running")
                    .distinct()
                    .order_by(SourceRow.name)
                )
            )

    def close_stale_runs_of(
        self, source: str, reason: str = "interrupted before it finished"
    ) -> int:
        """Mark the runs of `source` left "running" by a dead process as failed; returns how
        many. Call it while holding that source's lock (monitor.store.locks): then no live run of
        the source can exist, even in another instance."""
        with self.session() as s:
            stale = list(
                s.scalars(
                    select(SourceRun)
                    .join(SourceRow, SourceRun.source_id == SourceRow.id)
                    .where(SourceRow.name == source, SourceRun.outcome == "running")
                )
            )
            for run in stale:
                run.outcome = "failed"
                run.finished_at = utcnow()
                run.error = reason
            return len(stale)

    def listing_state(self, source_id: int) -> dict[tuple[str, str], Validators]:
        with self.session() as s:
            rows = s.execute(
                select(
                    ListingEntry.key,
                    ListingEntry.source_version,
                    ListingEntry.fingerprint,
                    ListingEntry.etag,
                    ListingEntry.last_modified,
                    Document.withdrawn_at.is_not(None),
                )
                .outerjoin(
                    Document,
                    (Document.source_id == ListingEntry.source_id)
                    & (Document.key == ListingEntry.key),
                )
                .where(ListingEntry.source_id == source_id)
            )
            return {
                (key, version): Validators(
                    fingerprint=fingerprint,
                    etag=etag,
                    last_modified=last_modified,
                    withdrawn=bool(withdrawn),
                )
                for key, version, fingerprint, etag, last_modified, withdrawn in rows
            }

    def document_keys(self, source_id: int) -> frozenset[str]:
        """The keys of every document stored for the source (withdrawn ones included)."""
        with self.session() as s:
            return frozenset(s.scalars(select(Document.key).where(Document.source_id == source_id)))

    # -- reading ---------------------------------------------------------------------------

    def criteria_of(self, version_id: int) -> Criteria:
        with self.session() as s:
            row = s.get_one(CriteriaRow, version_id)
            return criteria_from_json(decompress(row.data))

    def versions(self, source: str, key: str) -> list[DocumentVersion]:
        with self.session() as s:
            return list(
                s.scalars(
                    select(DocumentVersion)
                    .join(Document, DocumentVersion.document_id == Document.id)
                    .join(SourceRow, Document.source_id == SourceRow.id)
                    .where(SourceRow.name == source, Document.key == key)
                    .order_by(DocumentVersion.version_number, DocumentVersion.id)
                )
            )

    def count(self, model: type) -> int:
        with self.session() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)

    def changes(
        self,
        *,
        since: dt.datetime | None = None,
        source: str | None = None,
        document: str | None = None,
        include_baseline: bool = True,
        limit: int | None = None,
        run_id: int | None = None,
        min_severity: Severity | str = Severity.NOISE,
        after_id: int | None = None,
        ids: Sequence[int] | None = None,
        unreviewed: bool = False,
        newest_first: bool = False,
        document_like: str | None = None,
        flag: str | None = None,
        notice_days: Mapping[str, int] | None = None,
    ) -> list[ChangeRecord]:
        """Changes in id order (`newest_first`: the reverse; `limit` keeps the first ones of
        that order). `after_id` is the API feed's cursor (ids greater than it); `unreviewed`
        keeps changes nobody has acknowledged (store.models.api.ChangeReview); `document` is
        an exact document id, `document_like` part of an id or a title, in any case.

        Each record is worded for people (monitor.wording): durations as written, the date the
        change takes effect (None with a note when the source states none newer than the
        previous version's), and a checklist change that restates a criterion change of the
        same version carries that change's severity.

        `flag` keeps changes carrying that notice flag ("short_notice", "retroactive"), judged
        against `notice_days` (each source's notice period by name; default: the store's)."""
        if flag is not None and flag not in NOTICE_FLAGS:
            raise ValueError(f"unknown flag {flag!r}; expected one of {', '.join(NOTICE_FLAGS)}")
        periods = self.notice_days if notice_days is None else notice_days
        previous = aliased(DocumentVersion)
        query = (
            select(ChangeRow, SourceRow.name, Document.key, DocumentVersion, previous)
            .join(SourceRow, ChangeRow.source_id == SourceRow.id)
            .join(Document, ChangeRow.document_id == Document.id)
            .join(DocumentVersion, ChangeRow.version_id == DocumentVersion.id)
            .outerjoin(previous, ChangeRow.previous_version_id == previous.id)
            .order_by(ChangeRow.id.desc() if newest_first else ChangeRow.id)
        )
        if since is not None:
            query = query.where(ChangeRow.detected_at >= since)
        if source is not None:
            query = query.where(SourceRow.name == source)
        if document is not None:
            query = query.where(Document.key == document)
        if document_like is not None:
            wanted = document_like.strip().lower()
            query = query.where(
                func.lower(Document.key).contains(wanted, autoescape=True)
                | func.lower(DocumentVersion.title).contains(wanted, autoescape=True)
            )
        if not include_baseline:
            query = query.where(ChangeRow.baseline.is_(False))
        if run_id is not None:
            query = query.where(ChangeRow.run_id == run_id)
        if after_id is not None:
            query = query.where(ChangeRow.id > after_id)
        if ids is not None:
            query = query.where(ChangeRow.id.in_(list(ids)))
        if unreviewed:
            query = query.where(~exists().where(ChangeReview.change_id == ChangeRow.id))
        floor = Severity(min_severity)
        if floor is not Severity.NOISE:
            # A checklist change's severity is its fact's, known only once read: keep them all
            # here and filter after wording.
            query = query.where(
                ChangeRow.severity.in_([s.value for s in Severity if s.rank >= floor.rank])
                | (ChangeRow.kind == CHECKLIST_CHANGED)
            )
        out: list[ChangeRecord] = []
        with self.session() as s:
            offset = 0
            while True:
                page = query if limit is None else query.offset(offset).limit(limit)
                rows = list(s.execute(page))
                facts = _same_facts(s, [row[0] for row in rows])
                for change, source_name, key, version, prev in rows:
                    record = _record(
                        change,
                        source_name,
                        key,
                        version,
                        prev,
                        facts.get(change.id),
                        notice_days=periods.get(source_name, DEFAULT_NOTICE_DAYS),
                    )
                    if flag is not None and flag not in record.flags:
                        continue
                    if Severity(record.severity).rank >= floor.rank:
                        out.append(record)
                if limit is None or len(rows) < limit or len(out) >= limit:
                    break
                offset += limit
        return out if limit is None else out[:limit]

    def source_statuses(self, names: Sequence[tuple[str, str]]) -> list[SourceStatus]:
        """Status of each configured (name, kind), stored or not yet run."""
        out = []
        with self.session() as s:
            for name, kind in names:
                row = s.scalar(select(SourceRow).where(SourceRow.name == name))
                if row is None:
                    out.append(
                        SourceStatus(
                            name=name, kind=kind, documents=0, baseline_done=False, last_run=None
                        )
                    )
                    continue
                last = s.scalar(
                    select(SourceRun)
                    .where(SourceRun.source_id == row.id)
                    .order_by(SourceRun.id.desc())
                    .limit(1)
                )
                documents = (
                    s.scalar(
                        select(func.count())
                        .select_from(Document)
                        .where(Document.source_id == row.id)
                    )
                    or 0
                )
                failures: tuple[RunFailure, ...] = ()
                if last is not None:
                    failures = tuple(
                        RunFailure(document=e.document_key, url=e.url, reason=e.message)
                        for e in s.scalars(
                            select(RunError).where(RunError.run_id == last.id).order_by(RunError.id)
                        )
                    )
                out.append(
                    SourceStatus(
                        name=name,
                        kind=row.kind,
                        documents=int(documents),
                        baseline_done=row.baseline_completed_at is not None,
                        last_run=last,
                        failures=failures,
                    )
                )
        return out


def _label(version: DocumentVersion) -> VersionLabel:
    return VersionLabel(
        title=version.title,
        url=version.url,
        source_version=version.source_version,
        version_number=version.version_number,
        effective_date=version.effective_date,
    )


def _record(
    change: ChangeRow,
    source_name: str,
    key: str,
    version: DocumentVersion,
    prev: DocumentVersion | None,
    fact: tuple[int, str] | None,
    *,
    notice_days: int = DEFAULT_NOTICE_DAYS,
) -> ChangeRecord:
    return change_record(
        change,
        source=source_name,
        document_id=key,
        version=_label(version),
        previous=_label(prev) if prev is not None else None,
        stated_effective_date=change.effective_date,
        detected_at=change.detected_at,
        baseline=change.baseline,
        claimed_severity=change.claimed_severity,
        contradiction=change.contradiction,
        fact=fact,
        notice_days=notice_days,
    )


def _same_facts(session: Session, changes: Sequence[ChangeRow]) -> dict[int, tuple[int, str]]:
    """`records.same_facts` of `changes`, their sibling changes read in `session`."""
    return same_facts(
        changes,
        lambda version_ids: session.scalars(
            select(ChangeRow)
            .where(ChangeRow.version_id.in_(version_ids), ChangeRow.kind != CHECKLIST_CHANGED)
            .order_by(ChangeRow.id)
        ),
    )
