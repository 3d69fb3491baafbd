"""HTTP route ``GET /sources``: every configured source with its last run and, as
`policy-monitor sources` prints them, what failed in that run with the reason. Included by
`monitor.api.app`."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from monitor.api.auth import ReadAccess
from monitor.api.deps import StoreDep
from monitor.api.schemas import KEY_ERRORS
from monitor.config import Config
from monitor.store.types import as_utc

router = APIRouter(tags=["operations"])


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FailureOut(_Model):
    document: str | None = Field(description="Document key; null for a listing (index) page")
    url: str | None
    reason: str


class RunOut(_Model):
    id: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    outcome: str = Field(description="running, success, partial or failed")
    baseline: bool
    listed: int
    fetched: int
    new_versions: int
    changes: int
    errors: int
    error: str | None = Field(description="The run's error line, naming the reasons")


class SourceOut(_Model):
    name: str
    kind: str
    documents: int
    baseline_done: bool
    last_run: RunOut | None
    failures: list[FailureOut] = Field(description="What failed in the last run, with why")


class SourcesOut(_Model):
    items: list[SourceOut]


@router.get("/sources", response_model=SourcesOut, responses=KEY_ERRORS)
def sources(request: Request, store: StoreDep, _key: ReadAccess) -> SourcesOut:
    """Every configured source: its last run and each document (or index page) that failed in
    it, with the reason. Scope `read`."""
    config: Config = request.app.state.config
    items = []
    for status in store.source_statuses([(s.name, s.kind) for s in config.sources]):
        run = status.last_run
        items.append(
            SourceOut(
                name=status.name,
                kind=status.kind,
                documents=status.documents,
                baseline_done=status.baseline_done,
                last_run=None
                if run is None
                else RunOut(
                    id=run.id,
                    started_at=as_utc(run.started_at),
                    finished_at=as_utc(run.finished_at) if run.finished_at else None,
                    outcome=run.outcome,
                    baseline=run.baseline,
                    listed=run.listed,
                    fetched=run.fetched,
                    new_versions=run.new_versions,
                    changes=run.changes,
                    errors=run.errors,
                    error=run.error,
                ),
                failures=[
                    FailureOut(document=f.document, url=f.url, reason=f.reason)
                    for f in status.failures
                ],
            )
        )
    return SourcesOut(items=items)
