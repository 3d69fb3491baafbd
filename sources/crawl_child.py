"""Run a Scrapy crawl (``python -m <module> JOB``) in a child process and read its results.

Scrapy's Twisted reactor cannot be restarted in a process, and a crawl that hangs must be
killable: so every crawl is a child with a JSON job file in, one JSON line per outcome out.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from monitor.errors import SourceError
from sources.base import KnownListing


def crawl_timed_out(source: str, timeout_seconds: float) -> SourceError:
    """The error of a crawl that outlived its `crawl_timeout_seconds` (the Scrapy child or the
    in-process fetch of `sources.payer_recheck`: one limit, one message)."""
    return SourceError(source, f"crawl did not finish within {timeout_seconds:g} s")


async def run_crawl(
    module: str, job: dict[str, Any], scratch: Path, *, source: str, timeout_seconds: float
) -> list[dict[str, Any]]:
    """Write `job` to ``scratch/job.json``, run ``python -m module`` on it, return the records
    of ``scratch/results.jsonl``. A timeout or a non-zero exit is a `SourceError`."""
    job_path = scratch / "job.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        str(job_path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout_seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise crawl_timed_out(source, timeout_seconds) from None
    if process.returncode != 0:
        tail = stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise SourceError(source, f"crawler exited with {process.returncode}: " + " | ".join(tail))
    results_file = scratch / "results.jsonl"
    if not results_file.exists():
        return []
    return [json.loads(line) for line in results_file.read_text().splitlines() if line]


class CrawledSource:
    """What a source whose crawl runs in a child process holds: a scratch directory for the
    job and the bodies, the crawl's request count, and the one safe way to read a body back."""

    def __init__(self, *, name: str, options: Any) -> None:
        self.name = name
        self.options = options
        self._scratch = Path(tempfile.mkdtemp(prefix=f"policy-monitor-{name}-"))
        self._errors: dict[str, dict[str, Any]] = {}
        self._requests = 0

    @property
    def request_count(self) -> int:
        return self._requests

    async def aclose(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)

    crawl_module: str  # the child's module: `python -m <crawl_module>` runs the spider

    def _job(self, known: KnownListing) -> dict[str, Any]:
        raise NotImplementedError

    def _crawl_settings(self, known: KnownListing) -> dict[str, Any]:
        """The job keys every crawl takes: politeness, limits, the outbound policy, where to
        write, and the validators of what is known (for conditional requests)."""
        o = self.options
        return {
            "outbound": o.outbound.to_json(),
            "obey_robots": o.obey_robots,
            "download_delay_seconds": o.download_delay_seconds,
            "concurrency_per_host": o.concurrency_per_host,
            "timeout_seconds": o.timeout_seconds,
            "max_retries": o.max_retries,
            "max_document_bytes": o.max_document_bytes,
            "user_agent": o.user_agent,
            "out": str(self._scratch),
            "known": {
                key: {"etag": v.etag, "last_modified": v.last_modified, "withdrawn": v.withdrawn}
                for (key, _version), v in known.items()
            },
        }

    async def _crawl(self, known: KnownListing) -> list[dict[str, Any]]:
        return await run_crawl(
            self.crawl_module,
            self._job(known),
            self._scratch,
            source=self.name,
            timeout_seconds=self.options.crawl_timeout_seconds,
        )

    def _body(self, record: dict[str, Any]) -> bytes:
        """A body the crawl wrote; only ever from its own scratch directory (the record's path
        comes from a child process: never trust it to point anywhere else)."""
        path = Path(record["path"]).resolve()
        if not path.is_relative_to(self._scratch.resolve()):
            raise SourceError(self.name, f"crawl result points outside its directory: {path}")
        return path.read_bytes()
