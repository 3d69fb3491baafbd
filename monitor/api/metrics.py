"""Prometheus metrics, read from the store at scrape time.

Nothing is counted in process memory: every figure is a query when Prometheus scrapes, so it is
right whichever instance answers and however many run against one database, and it survives
restarts. The queries are aggregates over indexed columns; a scrape every 15-60 s costs little.

Families (all prefixed ``policy_monitor_``):

- ``runs_total{source,outcome}``            finished runs (success, partial, failed)
- ``runs_in_progress{source}``              runs marked running
- ``last_run_duration_seconds{source}``     duration of the latest finished run
- ``last_success_timestamp_seconds{source}`` end of the latest successful (or partial) run
- ``documents{source}``                     documents stored and not withdrawn
- ``changes_total{source,severity}``        changes detected (baseline included)
- ``unreviewed_changes{severity}``          non-baseline changes of severity low and up that
                                             nobody has reviewed
- ``outbox_deliveries{status}``             notification deliveries (emails, webhook posts)
                                             by status: pending is the backlog, failed gave up
- ``outbox_oldest_pending_age_seconds``     how long the oldest pending delivery has waited
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from monitor.store.core import Store
from monitor.store.models.api import ChangeReview
from monitor.store.models.core import ChangeRow, Document, SourceRow, SourceRun
from monitor.store.models.notify import NotifyDelivery

PREFIX = "policy_monitor"


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def run_metrics(session: Session) -> Iterator[Metric]:
    runs = CounterMetricFamily(
        f"{PREFIX}_runs", "Finished source runs by outcome", labels=["source", "outcome"]
    )
    running = GaugeMetricFamily(
        f"{PREFIX}_runs_in_progress", "Source runs marked running", labels=["source"]
    )
    for source, outcome, count in session.execute(
        select(SourceRow.name, SourceRun.outcome, func.count())
        .join(SourceRun, SourceRun.source_id == SourceRow.id)
        .group_by(SourceRow.name, SourceRun.outcome)
        .order_by(SourceRow.name, SourceRun.outcome)
    ):
        if outcome == "running":
            running.add_metric([source], count)
        else:
            runs.add_metric([source, outcome], count)
    yield runs
    yield running

    duration = GaugeMetricFamily(
        f"{PREFIX}_last_run_duration_seconds",
        "Duration of the latest finished run of each source",
        labels=["source"],
    )
    latest_finished = (
        select(func.max(SourceRun.id))
        .where(SourceRun.finished_at.is_not(None))
        .group_by(SourceRun.source_id)
    )
    for source, started, finished in session.execute(
        select(SourceRow.name, SourceRun.started_at, SourceRun.finished_at)
        .join(SourceRun, SourceRun.source_id == SourceRow.id)
        .where(SourceRun.id.in_(latest_finished))
    ):
        seconds = (_aware(finished) - _aware(started)).total_seconds()
        duration.add_metric([source], max(seconds, 0.0))
    yield duration

    success = GaugeMetricFamily(
        f"{PREFIX}_last_success_timestamp_seconds",
        "Unix time the latest successful (or partly successful) run of each source ended",
        labels=["source"],
    )
    for source, finished in session.execute(
        select(SourceRow.name, func.max(SourceRun.finished_at))
        .join(SourceRun, SourceRun.source_id == SourceRow.id)
        .where(SourceRun.outcome.in_(["success", "partial"]))
        .group_by(SourceRow.name)
    ):
        if finished is not None:
            success.add_metric([source], _aware(finished).timestamp())
    yield success


def document_metrics(session: Session) -> Iterator[Metric]:
    documents = GaugeMetricFamily(
        f"{PREFIX}_documents", "Documents stored and not withdrawn", labels=["source"]
    )
    for source, count in session.execute(
        select(SourceRow.name, func.count(Document.id))
        .outerjoin(Document, (Document.source_id == SourceRow.id) & Document.withdrawn_at.is_(None))
        .group_by(SourceRow.name)
        .order_by(SourceRow.name)
    ):
        documents.add_metric([source], count)
    yield documents


def change_metrics(session: Session) -> Iterator[Metric]:
    changes = CounterMetricFamily(
        f"{PREFIX}_changes", "Changes detected, by severity", labels=["source", "severity"]
    )
    for source, severity, count in session.execute(
        select(SourceRow.name, ChangeRow.severity, func.count())
        .join(ChangeRow, ChangeRow.source_id == SourceRow.id)
        .group_by(SourceRow.name, ChangeRow.severity)
        .order_by(SourceRow.name, ChangeRow.severity)
    ):
        changes.add_metric([source, severity], count)
    yield changes

    unreviewed = GaugeMetricFamily(
        f"{PREFIX}_unreviewed_changes",
        "Non-baseline changes of severity low or higher that nobody has reviewed",
        labels=["severity"],
    )
    rows = session.execute(
        select(ChangeRow.severity, func.count())
        .where(
            ChangeRow.baseline.is_(False),
            ChangeRow.severity != "noise",
            ~exists().where(ChangeReview.change_id == ChangeRow.id),
        )
        .group_by(ChangeRow.severity)
    )
    counts = {severity: count for severity, count in rows}
    for severity in ("high", "medium", "low"):
        unreviewed.add_metric([severity], counts.get(severity, 0))
    yield unreviewed


MetricSource = Callable[[Session], Iterable[Metric]]


# Every function here runs at each scrape, in one read transaction. The notifications module
# (issue 6) appends its outbox backlog gauge (``policy_monitor_outbox_backlog``) here.
def outbox_metrics(session: Session) -> Iterator[Metric]:
    deliveries = GaugeMetricFamily(
        f"{PREFIX}_outbox_deliveries",
        "Notification deliveries by status (pending is the backlog)",
        labels=["status"],
    )
    counts: dict[str, int] = {
        status: count
        for status, count in session.execute(
            select(NotifyDelivery.status, func.count()).group_by(NotifyDelivery.status)
        )
    }
    for status in ("pending", "sent", "failed"):
        deliveries.add_metric([status], counts.get(status, 0))
    yield deliveries
    oldest = session.scalar(
        select(func.min(NotifyDelivery.created_at)).where(NotifyDelivery.status == "pending")
    )
    age = GaugeMetricFamily(
        f"{PREFIX}_outbox_oldest_pending_age_seconds",
        "Seconds the oldest pending delivery has waited (0 when none waits)",
    )
    age.add_metric([], (_now() - _aware(oldest)).total_seconds() if oldest is not None else 0.0)
    yield age


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


STORE_METRICS: list[MetricSource] = [run_metrics, document_metrics, change_metrics, outbox_metrics]


class StoreCollector(Collector):
    """A prometheus_client collector that queries the store on each `collect()`."""

    def __init__(self, store: Store, sources: Iterable[MetricSource] | None = None) -> None:
        self.store = store
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        sources = list(self.sources if self.sources is not None else STORE_METRICS)
        with self.store.session() as session:
            metrics = [metric for source in sources for metric in source(session)]
        yield from metrics


def metrics_registry(store: Store) -> CollectorRegistry:
    """A registry of its own per app (not the global one), so several apps in one process, as
    in tests, do not collide; with the process's CPU, memory and open files."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    ProcessCollector(registry=registry)
    return registry
