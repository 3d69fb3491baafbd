"""Run a Scrapy crawl (``python -m <module> JOB``) in a child process and read its results.

Scrapy's Twisted reactor cannot be restarted in a process, and a crawl that hangs must be
killable: so every crawl is a child with a JSON job file in, one JSON line per outcome out.
"""

from __future__ import annotations

import asyncio
import json
import sys
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
