"""When each source runs: APScheduler 3 jobs (trigger, jitter, coalescing, misfire grace) built
from the config, and each source's next fire time.

Cron expressions are standard five-field crontab in UTC. APScheduler 3 counts weekdays from
Monday = 0 where crontab counts from Sunday = 0 (its issue 286, fixed only in 4.x), so the
day-of-week field is rewritten as weekday names before APScheduler sees it: ``0 6 * * 4`` runs on
Thursdays, as in cron. (As in APScheduler, a restricted day of month *and* day of week must both
match, where classic cron accepts either.)

Interval schedules (``every 6h``) are anchored at the source's last recorded run, not at the
moment the daemon starts: a source that never ran, or is overdue, runs at once; otherwise it runs
one interval after its last run. A daemon restarted more often than the interval therefore
neither skips the source forever nor runs it again early.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import SourceConfig

# crontab weekday numbers (0 and 7 are Sunday) as the names APScheduler 3 reads unambiguously
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DOW_PART = re.compile(r"^(?P<base>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>\d+))?$")


@dataclass(frozen=True, kw_only=True)
class SchedulingOptions:
    """How the daemon schedules source runs (the same for every source)."""

    # Spreads the runs of many instances and sources over up to a minute, so a fleet restarted
    # together does not hit one payer site at the same second.
    jitter_seconds: int = 60
    # A run missed by less than this (daemon busy, host suspended) still happens, once.
    misfire_grace_seconds: int = 3600
    max_concurrent_runs: int = 4

    def __post_init__(self) -> None:
        if self.jitter_seconds < 0:
            raise ValueError("jitter_seconds must not be negative")
        if self.misfire_grace_seconds < 1:
            raise ValueError("misfire_grace_seconds must be at least 1")
        if self.max_concurrent_runs < 1:
            raise ValueError("max_concurrent_runs must be at least 1")


@dataclass(frozen=True, kw_only=True)
class SourceJob:
    """One source's job as the scheduler will hold it."""

    source: str
    trigger: BaseTrigger
    misfire_grace_seconds: int
    # Interval sources: the first run, given to the scheduler as is (the trigger would round a
    # start time that is already "now" up to one interval later).
    first_run_time: dt.datetime | None = None

    def next_fire_time(self, now: dt.datetime) -> dt.datetime | None:
        if self.first_run_time is not None:
            return self.first_run_time
        return self.trigger.get_next_fire_time(None, now)


def crontab_day_of_week(field: str) -> str:
    """A crontab day-of-week field (0/7 = Sunday, names, ranges, steps) as APScheduler 3 names."""
    days: set[int] = set()
    for part in field.lower().split(","):
        match = _DOW_PART.match(part.strip())
        if match is None:
            raise ValueError(f"day of week {field!r} is not a crontab day-of-week field")
        base, step = match.group("base"), int(match.group("step") or 1)
        if step < 1:
            raise ValueError(f"day of week {field!r} has a zero step")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            first, last = (_weekday(value, field) for value in base.split("-"))
        else:
            first = _weekday(base, field)
            last = 6 if match.group("step") else first
        if last < first:  # "fri-mon": wrap around the week end
            last += 7
        days.update(day % 7 for day in range(first, last + 1, step))
    if len(days) == 7:
        return "*"
    return ",".join(_WEEKDAYS[day] for day in sorted(days))


def _weekday(value: str, field: str) -> int:
    if value.isdigit():
        number = int(value)
        if number > 7:
            raise ValueError(f"day of week {field!r}: {number} is not 0-7")
        return number  # 7 stays 7 so that "0-7" and "5-7" are ranges
    if value[:3] in _WEEKDAYS and len(value) == 3:
        return _WEEKDAYS.index(value)
    raise ValueError(f"day of week {field!r}: {value!r} is not a weekday")


def cron_trigger(expression: str, *, jitter_seconds: int = 0) -> CronTrigger:
    """A UTC trigger for a five-field crontab expression, with crontab weekday numbering."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"cron expression {expression!r} needs 5 fields, has {len(fields)}")
    minute, hour, day, month, day_of_week = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=crontab_day_of_week(day_of_week),
        timezone=dt.UTC,
        jitter=jitter_seconds or None,
    )


def interval_start(
    interval_seconds: int, *, last_started: dt.datetime | None, now: dt.datetime
) -> dt.datetime:
    """First fire time of an interval source: one interval after its last run, or now."""
    if last_started is None:
        return now
    return max(now, last_started + dt.timedelta(seconds=interval_seconds))


def build_job(
    source: SourceConfig,
    *,
    options: SchedulingOptions,
    last_started: dt.datetime | None,
    now: dt.datetime,
) -> SourceJob:
    interval = source.schedule.interval_seconds
    if interval is None:
        return SourceJob(
            source=source.name,
            trigger=cron_trigger(source.schedule.expression, jitter_seconds=options.jitter_seconds),
            misfire_grace_seconds=options.misfire_grace_seconds,
        )
    first = interval_start(interval, last_started=last_started, now=now)
    # Jitter of at most a tenth of the interval: "every 1m" must not become "every 1-2m".
    jitter = min(options.jitter_seconds, interval // 10)
    return SourceJob(
        source=source.name,
        trigger=IntervalTrigger(
            seconds=interval, start_date=first, timezone=dt.UTC, jitter=jitter or None
        ),
        misfire_grace_seconds=options.misfire_grace_seconds,
        first_run_time=first,
    )


def build_jobs(
    sources: Iterable[SourceConfig],
    *,
    options: SchedulingOptions,
    now: dt.datetime,
    last_started: Mapping[str, dt.datetime] | None = None,
) -> list[SourceJob]:
    """One job per enabled source; `last_started` anchors interval schedules (see above)."""
    last_started = last_started or {}
    return [
        build_job(source, options=options, last_started=last_started.get(source.name), now=now)
        for source in sources
        if source.enabled
    ]


def add_jobs(
    scheduler: BaseScheduler, jobs: Iterable[SourceJob], run: Callable[[str], object]
) -> list[Job]:
    """Add each job to `scheduler`, calling ``run(source_name)`` when it fires.

    ``max_instances=1``: a firing while the source still runs is skipped (logged by APScheduler),
    not queued. ``coalesce``: several missed firings (host asleep) become one run.
    """
    return [
        scheduler.add_job(
            run,
            trigger=job.trigger,
            args=(job.source,),
            id=job.source,
            name=f"source {job.source}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=job.misfire_grace_seconds,
            replace_existing=True,
            **({"next_run_time": job.first_run_time} if job.first_run_time else {}),
        )
        for job in jobs
    ]


def next_fire_times(
    sources: Iterable[SourceConfig],
    *,
    now: dt.datetime,
    last_started: Mapping[str, dt.datetime] | None = None,
) -> dict[str, dt.datetime | None]:
    """Each enabled source's next scheduled run after `now` (UTC, before jitter)."""
    jobs = build_jobs(
        sources,
        options=SchedulingOptions(jitter_seconds=0),
        now=now,
        last_started=last_started,
    )
    return {job.source: job.next_fire_time(now) for job in jobs}
