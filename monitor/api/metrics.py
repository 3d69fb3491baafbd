"""Prometheus metrics, read from the store at scrape time (the queries: `monitor.store.metrics`).

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
- ``notice_flagged_changes{source,flag}``   non-baseline changes flagged ``short_notice`` (less
                                             notice than the source's ``notice_days``) or
                                             ``retroactive`` (effective before first seen)
- ``outbox_deliveries{status}``             notification deliveries (emails, webhook posts)
                                             by status: pending is the backlog, failed gave up
- ``outbox_oldest_pending_age_seconds``     how long the oldest pending delivery has waited
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.store.core import Store
from monitor.store.metrics import StoreFigures, read_figures

PREFIX = "policy_monitor"


def run_metrics(figures: StoreFigures) -> Iterator[Metric]:
    runs = CounterMetricFamily(
        f"{PREFIX}_runs", "Finished source runs by outcome", labels=["source", "outcome"]
    )
    running = GaugeMetricFamily(
        f"{PREFIX}_runs_in_progress", "Source runs marked running", labels=["source"]
    )
    for source, outcome, count in figures.runs:
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
    for source, seconds in figures.last_run_seconds:
        duration.add_metric([source], seconds)
    yield duration

    success = GaugeMetricFamily(
        f"{PREFIX}_last_success_timestamp_seconds",
        "Unix time the latest successful (or partly successful) run of each source ended",
        labels=["source"],
    )
    for source, finished in figures.last_success:
        success.add_metric([source], finished.timestamp())
    yield success


def document_metrics(figures: StoreFigures) -> Iterator[Metric]:
    documents = GaugeMetricFamily(
        f"{PREFIX}_documents", "Documents stored and not withdrawn", labels=["source"]
    )
    for source, count in figures.documents:
        documents.add_metric([source], count)
    yield documents


def change_metrics(figures: StoreFigures) -> Iterator[Metric]:
    changes = CounterMetricFamily(
        f"{PREFIX}_changes", "Changes detected, by severity", labels=["source", "severity"]
    )
    for source, severity, count in figures.changes:
        changes.add_metric([source, severity], count)
    yield changes

    unreviewed = GaugeMetricFamily(
        f"{PREFIX}_unreviewed_changes",
        "Non-baseline changes of severity low or higher that nobody has reviewed",
        labels=["severity"],
    )
    for severity in ("high", "medium", "low"):
        unreviewed.add_metric([severity], figures.unreviewed.get(severity, 0))
    yield unreviewed

    flagged = GaugeMetricFamily(
        f"{PREFIX}_notice_flagged_changes",
        "Non-baseline changes taking effect with short notice or retroactively",
        labels=["source", "flag"],
    )
    for source, flag, count in figures.notice_flags:
        flagged.add_metric([source, flag], count)
    yield flagged


def outbox_metrics(figures: StoreFigures) -> Iterator[Metric]:
    deliveries = GaugeMetricFamily(
        f"{PREFIX}_outbox_deliveries",
        "Notification deliveries by status (pending is the backlog)",
        labels=["status"],
    )
    for status in ("pending", "sent", "failed"):
        deliveries.add_metric([status], figures.deliveries.get(status, 0))
    yield deliveries
    age = GaugeMetricFamily(
        f"{PREFIX}_outbox_oldest_pending_age_seconds",
        "Seconds the oldest pending delivery has waited (0 when none waits)",
    )
    oldest = figures.oldest_pending
    age.add_metric([], (_now() - oldest).total_seconds() if oldest is not None else 0.0)
    yield age


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StoreCollector(Collector):
    """A prometheus_client collector that queries the store on each `collect()`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        figures = read_figures(self.store)
        for family in (run_metrics, document_metrics, change_metrics, outbox_metrics):
            yield from family(figures)


def metrics_registry(store: Store) -> CollectorRegistry:
    """A registry of its own per app (not the global one), so several apps in one process, as
    in tests, do not collide; with the process's CPU, memory and open files."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    ProcessCollector(registry=registry)
    return registry
