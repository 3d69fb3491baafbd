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
        raise SourceError(source, f"crawl did not finish within {timeout_seconds:g} s") from None
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

    def _body(self, record: dict[str, Any]) -> bytes:
        """A body the crawl wrote; only ever from its own scratch directory (the record's path
        comes from a child process: never trust it to point anywhere else)."""
        path = Path(record["path"]).resolve()
        if not path.is_relative_to(self._scratch.resolve()):
            raise SourceError(self.name, f"crawl result points outside its directory: {path}")
        return path.read_bytes()
