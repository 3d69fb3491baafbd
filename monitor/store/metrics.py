"""Store queries behind the Prometheus metrics: aggregates over indexed columns, all read in one
transaction at scrape time (the collectors that turn them into metrics are in
`monitor.api.metrics`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased

from monitor.store.core import Store
from monitor.store.models.api import ChangeReview
from monitor.store.models.core import ChangeRow, Document, DocumentVersion, SourceRow, SourceRun
from monitor.store.models.notify import NotifyDelivery
from monitor.store.types import as_utc
from monitor.wording import DEFAULT_NOTICE_DAYS, NOTICE_FLAGS, change_effective_date, notice_flags


@dataclass(frozen=True, kw_only=True)
class StoreFigures:
    """What the database says at one moment; the lists are in the order the metrics show."""

    runs: list[tuple[str, str, int]]  # source, outcome ("running" included), runs
    last_run_seconds: list[tuple[str, float]]  # source, duration of its latest finished run
    last_success: list[tuple[str, dt.datetime]]  # source, end of its latest successful run
    documents: list[tuple[str, int]]  # source, documents not withdrawn
    changes: list[tuple[str, str, int]]  # source, severity, changes
    unreviewed: dict[str, int]  # severity: non-baseline changes (low and up) nobody reviewed
    deliveries: dict[str, int]  # outbox delivery status: deliveries
    oldest_pending: dt.datetime | None  # when the oldest pending delivery was written
    notice_flags: list[tuple[str, str, int]]  # source, flag (short_notice, retroactive), changes


def read_figures(store: Store) -> StoreFigures:
    with store.session() as session:
        return StoreFigures(
            runs=[
                (source, outcome, count)
                for source, outcome, count in session.execute(
                    select(SourceRow.name, SourceRun.outcome, func.count())
                    .join(SourceRun, SourceRun.source_id == SourceRow.id)
                    .group_by(SourceRow.name, SourceRun.outcome)
                    .order_by(SourceRow.name, SourceRun.outcome)
                )
            ],
            last_run_seconds=_last_run_seconds(session),
            last_success=[
                (source, as_utc(finished))
                for source, finished in session.execute(
                    select(SourceRow.name, func.max(SourceRun.finished_at))
                    .join(SourceRun, SourceRun.source_id == SourceRow.id)
                    .where(SourceRun.outcome.in_(["success", "partial"]))
                    .group_by(SourceRow.name)
                )
                if finished is not None
            ],
            documents=[
                (source, count)
                for source, count in session.execute(
                    select(SourceRow.name, func.count(Document.id))
                    .outerjoin(
                        Document,
                        (Document.source_id == SourceRow.id) & Document.withdrawn_at.is_(None),
                    )
                    .group_by(SourceRow.name)
                    .order_by(SourceRow.name)
                )
            ],
            changes=[
                (source, severity, count)
                for source, severity, count in session.execute(
                    select(SourceRow.name, ChangeRow.severity, func.count())
                    .join(ChangeRow, ChangeRow.source_id == SourceRow.id)
                    .group_by(SourceRow.name, ChangeRow.severity)
                    .order_by(SourceRow.name, ChangeRow.severity)
                )
            ],
            unreviewed={
                severity: count
                for severity, count in session.execute(
                    select(ChangeRow.severity, func.count())
                    .where(
                        ChangeRow.baseline.is_(False),
                        ChangeRow.severity != "noise",
                        ~exists().where(ChangeReview.change_id == ChangeRow.id),
                    )
                    .group_by(ChangeRow.severity)
                )
            },
            deliveries={
                status: count
                for status, count in session.execute(
                    select(NotifyDelivery.status, func.count()).group_by(NotifyDelivery.status)
                )
            },
            oldest_pending=_oldest_pending(session),
            notice_flags=_notice_flags(session, store),
        )


def _last_run_seconds(session: Session) -> list[tuple[str, float]]:
    latest_finished = (
        select(func.max(SourceRun.id))
        .where(SourceRun.finished_at.is_not(None))
        .group_by(SourceRun.source_id)
    )
    return [
        (source, max((as_utc(finished) - as_utc(started)).total_seconds(), 0.0))
        for source, started, finished in session.execute(
            select(SourceRow.name, SourceRun.started_at, SourceRun.finished_at)
            .join(SourceRun, SourceRun.source_id == SourceRow.id)
            .where(SourceRun.id.in_(latest_finished))
        )
    ]


def _oldest_pending(session: Session) -> dt.datetime | None:
    oldest = session.scalar(
        select(func.min(NotifyDelivery.created_at)).where(NotifyDelivery.status == "pending")
    )
    return as_utc(oldest) if oldest is not None else None


def _notice_flags(session: Session, store: Store) -> list[tuple[str, str, int]]:
    """Non-baseline changes flagged short_notice or retroactive, per source. The date a change
    takes effect is judged at read time (monitor.wording), so only the dated changes are read
    (five columns each) and judged here, against the store's notice periods."""
    previous = aliased(DocumentVersion)
    counts: dict[tuple[str, str], int] = {}
    rows = session.execute(
        select(
            SourceRow.name,
            ChangeRow.effective_date,
            ChangeRow.detected_at,
            ChangeRow.previous_version_id,
            previous.effective_date,
        )
        .join(ChangeRow, ChangeRow.source_id == SourceRow.id)
        .outerjoin(previous, ChangeRow.previous_version_id == previous.id)
        .where(ChangeRow.baseline.is_(False), ChangeRow.effective_date.is_not(None))
    )
    for source, stated, detected_at, previous_id, previous_date in rows:
        first_seen = as_utc(detected_at).date()
        effective = change_effective_date(
            stated, previous_date, has_previous=previous_id is not None, detected=first_seen
        )
        days = store.notice_days.get(source, DEFAULT_NOTICE_DAYS)
        for flag in notice_flags(effective, first_seen, days):
            counts[(source, flag)] = counts.get((source, flag), 0) + 1
    return [
        (source, flag, counts.get((source, flag), 0))
        for source in sorted({source for source, _ in counts})
        for flag in NOTICE_FLAGS
    ]
