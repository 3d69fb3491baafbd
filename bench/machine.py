"""What machine a benchmark ran on, so that figures from different sessions can be compared.

Each session runs on a machine of its own (2 cores of some host), and their speed differs: the
same commit took 41.3 s for the CMS full-scale baseline one evening and 21.6 s the next morning,
on a quiet machine both times. A figure alone cannot say which of the two it was; so every
benchmark records, beside its figures:

- ``cpu_model`` and ``cores`` (``/proc/cpuinfo``);
- ``calibration_seconds``: the median of three runs of a fixed pure-Python workload (JSON, a
  regular expression, dict and string work, about 0.3 s on the quicker of those machines),
  taken before the benchmark - a figure divided by it compares across sessions far better than
  the figure alone, though still not as well as a same-run pair against a base checkout;
- ``steal_percent``: the share of CPU time the hypervisor gave to other guests while the
  benchmark ran (``/proc/stat``), and the load averages before and after.

    from machine import MachineProbe
    probe = MachineProbe()          # calibrates, snapshots /proc/stat
    ... run the benchmark ...
    record["machine"] = probe.finish()
"""

from __future__ import annotations

import json
import os
import re
import statistics
import time
from pathlib import Path

_WORDS = re.compile(r"[a-z]+ (?:trial|weeks?) of \d+")


def _workload() -> int:
    """A fixed amount of the kind of work the monitor does (parse, match, build, serialise)."""
    text = " ".join(f"a trial of {i} weeks of {i % 7} topical steroid" for i in range(2000))
    total = 0
    for round_ in range(100):
        found = _WORDS.findall(text)
        table = {f"{word}:{round_}": len(word) for word in found}
        encoded = json.dumps(table, sort_keys=True)
        total += len(json.loads(encoded)) + sum(len(w.upper()) for w in found[:500])
    return total


def calibrate(runs: int = 3) -> float:
    """Median seconds of `_workload` over `runs` runs (after one unmeasured warm-up)."""
    _workload()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        _workload()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 4)


def _cpu_times() -> list[int] | None:
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    return [int(x) for x in first[1:]]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


class MachineProbe:
    """Calibrate now and note the CPU counters; `finish` says what the run shared them with."""

    def __init__(self, *, calibrate_runs: int = 3) -> None:
        self.calibration = calibrate(calibrate_runs)
        self.load_before = os.getloadavg()
        self._start = _cpu_times()

    def finish(self) -> dict[str, object]:
        end = _cpu_times()
        steal: float | None = None
        if self._start is not None and end is not None and len(end) > 7:
            spent = [b - a for a, b in zip(self._start, end, strict=False)]
            total = sum(spent[:8])  # user nice system idle iowait irq softirq steal
            steal = round(100 * spent[7] / total, 2) if total else 0.0
        return {
            "cpu_model": cpu_model(),
            "cores": os.cpu_count(),
            "calibration_seconds": self.calibration,
            "steal_percent": steal,
            "loadavg_before": [round(x, 2) for x in self.load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        }


if __name__ == "__main__":
    print(json.dumps(MachineProbe().finish(), indent=1))
