"""Store queries behind the Prometheus metrics: aggregates over indexed columns, all read in one
transaction at scrape time (the collectors that turn them into metrics are in
`monitor.api.metrics`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from monitor.store.core import Store
from monitor.store.models.api import ChangeReview
from monitor.store.models.core import ChangeRow, Document, SourceRow, SourceRun
from monitor.store.models.notify import NotifyDelivery
from monitor.store.types import as_utc


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
