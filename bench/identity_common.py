"""What the identity benchmarks share (`html_parse_identity`, `pdf_parse_identity`,
`extract_identity`): run one of them in a subprocess on another tree's code, compare two dumps
document by document, time both trees interleaved, and write the figures (not a test).

Each benchmark is one script with two hidden modes, ``--dump OUT`` (the repr of what the code
under test returns for every document of its corpus) and ``--time OUT`` (CPU and wall seconds
of one pass); the script of *this* tree runs in both modes with ``PYTHONPATH`` and the working
directory set to the tree under test, so both trees read the same corpus and only the code
differs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# A run of the script on a tree: (tree, mode, output file, extra arguments).
Job = tuple[Path, str, Path, Sequence[str]]


def use_tree_under_test() -> None:
    """In a ``--dump`` or ``--time`` child: import the tree under test (the working directory)
    before anything else on the path, this script's folder included."""
    sys.path.insert(0, os.getcwd())


def commit(tree: Path) -> str:
    found = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return found.stdout.strip()


def header(root: Path, against: Path) -> dict[str, object]:
    """The figures every identity benchmark starts with: when, which commits, which machine."""
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit(root),
        "base": str(against),
        "base_commit": commit(against),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_start": os.getloadavg(),
    }


def run(script: Path, *jobs: Job, hash_seed: str | None = None) -> None:
    """Run `script` once per job, each in a process of its own, all at once, to completion;
    a child that fails raises `CalledProcessError`."""
    processes = []
    for tree, mode, out, extra in jobs:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # timings with bytecode cached, as in use
        if hash_seed is not None:
            env["PYTHONHASHSEED"] = hash_seed
        command = [sys.executable, str(script), f"--{mode}", str(out), *extra]
        processes.append(subprocess.Popen(command, env=env, cwd=tree))
    for process in processes:
        if process.wait() != 0:
            raise subprocess.CalledProcessError(process.returncode, process.args)


def compare(mine: Path, theirs: Path, *, flag: str, flagged: str) -> tuple[dict[str, Any], int]:
    """Compare two dumps ({document name: repr}) document by document, grouped by the name's
    prefix (``fixture:…``, ``real:…``); print each document that differs and a line per group.
    `flag` is the start of a repr counted apart (an error answer), `flagged` its label.
    Returns the groups' counts and the number of documents that differ."""
    a, b = json.loads(mine.read_text()), json.loads(theirs.read_text())
    groups: dict[str, list[int]] = {}
    differences = 0
    for name in sorted(set(a) | set(b)):
        kind = name.split(":", 1)[0]
        same = a.get(name) == b.get(name)
        counts = groups.setdefault(kind, [0, 0, 0])
        counts[0] += same
        counts[1] += 1
        counts[2] += a.get(name, "").startswith(flag)
        if not same:
            differences += 1
            print(f"DIFFERS: {name}")
    for kind, (same, total, flagged_count) in groups.items():
        print(f"{kind:8} identical {same}/{total} ({flagged}: {flagged_count})")
    print(f"differences: {differences}")
    identity = {
        kind: {"identical": same, "total": total, flagged: flagged_count}
        for kind, (same, total, flagged_count) in groups.items()
    }
    return identity, differences


def digest(dump: Path) -> str:
    return hashlib.sha256(dump.read_bytes()).hexdigest()[:16]


def identity(
    script: Path,
    root: Path,
    against: Path,
    tmp: Path,
    *,
    flag: str,
    flagged: str,
    hash_seed: str | None = None,
    mine_dump: Path | None = None,
    base_dump: Path | None = None,
) -> tuple[dict[str, object], int]:
    """Dump the corpus with both trees side by side (a dump given is used as it is) and compare
    them (`compare`). Returns the figures to keep (identity by group, the number of documents
    that differ, a digest of this tree's dump) and that number."""
    mine = mine_dump or tmp / "mine.json"
    theirs = base_dump or tmp / "base.json"
    jobs: list[Job] = []
    if mine_dump is None:
        jobs.append((root, "dump", mine, ()))
    if base_dump is None:
        jobs.append((against, "dump", theirs, ()))
    run(script, *jobs, hash_seed=hash_seed)
    groups, differences = compare(mine, theirs, flag=flag, flagged=flagged)
    return {
        "identity": groups,
        "differences": differences,
        "output_digest": digest(mine),
    }, differences


def interleaved(
    repeat: int, base: Path, mine: Path, time_one: Callable[[Path, str], dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """`repeat` rounds of timing both trees, base first in even rounds and this tree first in
    odd ones, so a drift of the machine's load weighs on both alike."""
    runs: dict[str, list[dict[str, Any]]] = {"base": [], "mine": []}
    for round_ in range(repeat):
        order = [("base", base), ("mine", mine)]
        for label, tree in order if round_ % 2 == 0 else order[::-1]:
            runs[label].append(time_one(tree, label))
    return runs


def median(runs: list[dict[str, Any]], *keys: str) -> float:
    """The median of one figure over `runs`, reached by `keys` (``"cpu"``, or ``"real", "cpu"``)."""
    values = []
    for r in runs:
        value: Any = r
        for key in keys:
            value = value[key]
        values.append(value)
    return statistics.median(values)


def save(path: Path, figures: dict[str, object]) -> None:
    figures["load_end"] = os.getloadavg()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"-> {path}")
