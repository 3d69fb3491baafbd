"""Writing a benchmark's raw figures to ``bench/results/<name>.json``, stamped with when, on
which commit and on what machine they were measured (not a test)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def write(name: str, figures: dict[str, object], *, machine: dict[str, object]) -> Path:
    """Write `figures` under `name` (``bench/results/<name>.json``) after the stamp: date,
    commit of this tree, cores, the load average now and `machine` (`MachineProbe.finish()`)."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    stamped = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "cores": os.cpu_count(),
        "loadavg_after": list(os.getloadavg()),
        "machine": machine,
        **figures,
    }
    out = RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(stamped, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")
    return out
