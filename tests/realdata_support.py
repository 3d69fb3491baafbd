"""The real-data evaluation (`bench/real_pairs.py`) for tests: loaded once, skipped with the
reason when ../shared/realdata is not on this machine (CI has it)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
REALDATA = ROOT.parent / "shared" / "realdata"


def real_pairs_bench() -> ModuleType:
    if not REALDATA.exists():
        pytest.skip(f"real data not present at {REALDATA}")
    bench = str(ROOT / "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    return importlib.import_module("real_pairs")
