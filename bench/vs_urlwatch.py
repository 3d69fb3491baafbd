"""Benchmark: this project against urlwatch on the same 1,000 HTML policy pages (not a test).

Both tools watch the same loopback fixture (``python -m fixtures.payer_site --html-only``: 1,000
byte-stable CPB pages behind four index pages). Round 1 is the first fetch (the project also
parses every page and extracts its criteria); round 2 is a re-check after 5 % of the pages
changed (50 planted changes: a step-therapy duration, a severity threshold or an ICD-10 code).
urlwatch runs from its own virtualenv (``bench/.venv-urlwatch``, created with urlwatch 2.29 when
missing) with its own ``urls.yaml`` and a cache in a temporary directory; the project runs as
``policy-monitor check`` with ``download_delay_seconds = 0``, ``concurrency_per_host = 6`` and a
temporary SQLite database. Wall time and peak RSS (the largest process of each tool's process
tree, from ``wait4``) of each, their ratios, and whether the project reported every planted
change; raw figures go to ``bench/results/vs_urlwatch.json``.

With ``--against DIR`` (a checkout of another commit, e.g. ``git worktree add /tmp/base REV``)
that code runs too, next to this one in every round on its own database (every other run
starts with it), so a change is measured against its base in the same run, under the same load.

    python bench/vs_urlwatch.py [--documents 1000] [--repeat 1] [--against DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from machine import MachineProbe

from fixtures.loopback import spawn_fixture
from fixtures.payer_site import AETNA_INDEX_PATH, ExpectedPayerChange
from fixtures.payer_site.html_pages import index_page_path
from fixtures.payer_site.scale import scale_week2_changes
from fixtures.payer_site.site import INDEX_PAGE_SIZE, PayerSite

ROOT = Path(__file__).resolve().parent.parent
URLWATCH_VERSION = "2.29"
URLWATCH_VENV = ROOT / "bench" / ".venv-urlwatch"
RESULTS = ROOT / "bench" / "results" / "vs_urlwatch.json"
SOURCE = "payers"


@dataclass(frozen=True, kw_only=True)
class Measured:
    seconds: float
    peak_rss_mb: float
    exit_code: int


def urlwatch_binary() -> Path:
    """urlwatch in its own virtualenv, installed on first use (it is not a project dependency)."""
    binary = URLWATCH_VENV / "bin" / "urlwatch"
    if binary.exists():
        return binary
    print(f"installing urlwatch {URLWATCH_VERSION} into {URLWATCH_VENV} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(URLWATCH_VENV)], check=True)
    pip = URLWATCH_VENV / "bin" / "pip"
    subprocess.run([str(pip), "install", "-q", f"urlwatch=={URLWATCH_VERSION}"], check=True)
    return binary


def measure(
    argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Measured:
    """Run `argv` to completion; its wall time and the peak RSS of its process tree."""
    started = time.perf_counter()
    process = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    assert process.stderr is not None
    stderr = process.stderr.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stderr.close()
    if process.returncode != 0:
        tail = stderr.decode(errors="replace").strip().splitlines()[-5:]
        print(f"  {argv[0]} exited {process.returncode}: {' | '.join(tail)}", file=sys.stderr)
    return Measured(
        seconds=elapsed, peak_rss_mb=usage.ru_maxrss / 1024, exit_code=process.returncode
    )


def index_urls(base_url: str, documents: int) -> list[str]:
    pages = max(1, -(-documents // INDEX_PAGE_SIZE))
    return [base_url + index_page_path(AETNA_INDEX_PATH, n) for n in range(1, pages + 1)]


def document_urls(base_url: str, documents: int) -> list[str]:
    """The pages the site publishes (what a urlwatch user would put in urls.yaml)."""
    site = PayerSite(documents=documents, html_only=True)
    return [base_url + path for path in sorted(site.document_paths("week1"))]


def _get(url: str, method: str = "GET") -> bytes:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=60) as response:
        return bytes(response.read())


def write_urlwatch_files(directory: Path, urls: list[str]) -> list[str]:
    """urls.yaml, urlwatch.yaml (stdout reporter only, no colour) and an empty hooks file."""
    jobs = "---\n".join(f"name: page{n}\nurl: {url}\n" for n, url in enumerate(urls))
    (directory / "urls.yaml").write_text(jobs, encoding="utf-8")
    config = {
        "display": {"new": True, "error": True, "unchanged": False, "empty-diff": True},
        "report": {
            "text": {"line_length": 75, "details": True, "footer": False, "minimal": False},
            "stdout": {"enabled": True, "color": False},
            "html": {"diff": "unified"},
            "markdown": {"details": True, "footer": False, "minimal": False},
        },
        "job_defaults": {"all": {}, "shell": {}, "url": {}, "browser": {}},
    }
    (directory / "urlwatch.yaml").write_text(json.dumps(config), encoding="utf-8")
    (directory / "hooks.py").write_text("", encoding="utf-8")
    return [
        "--urls",
        str(directory / "urls.yaml"),
        "--config",
        str(directory / "urlwatch.yaml"),
        "--hooks",
        str(directory / "hooks.py"),
        "--cache",
        str(directory / "cache.db"),
    ]


def write_project_config(directory: Path, base_url: str, documents: int) -> Path:
    starts = ", ".join(json.dumps(url) for url in index_urls(base_url, documents))
    config = directory / "monitor.toml"
    config.write_text(
        f"""[database]
url = "sqlite:///{directory / "monitor.db"}"

[[sources]]
name = "{SOURCE}"
kind = "payer_policies"
payer = "Bench Health"
start_urls = [{starts}]
allow = ["/cpb/medical/data/"]
download_delay_seconds = 0.0
concurrency_per_host = 6
""",
        encoding="utf-8",
    )
    return config


def _days(text: str | None) -> str | None:
    """ "12 weeks" -> "84", "90 days" -> "90" (the planted changes count days)."""
    match = re.fullmatch(r"(\d+) (week|day)s?", (text or "").strip())
    if match is None:
        return text
    return str(int(match.group(1)) * (7 if match.group(2) == "week" else 1))


def _reports(planted: ExpectedPayerChange, row: dict[str, str | None]) -> bool:
    """Whether a reported change is the planted one (the diff names fields by indication and
    branch, "adbry, initial: BSA", and writes durations as the policy did, "12 weeks")."""
    if (row["document_id"], row["kind"]) != (planted.document_url_path, planted.kind):
        return False
    if planted.kind == "step_therapy_changed":
        return (_days(row["before"]), _days(row["after"])) == (planted.before, planted.after)
    if planted.kind == "threshold_changed":
        return (
            (row["field"] or "").endswith(planted.field or "")
            and (row["before"] or "").endswith(planted.before or "")
            and (row["after"] or "").endswith(planted.after or "")
        )
    return row["before"] == planted.before


# The `policy-monitor` executable as the installed console script runs it, for whichever tree is
# on PYTHONPATH: a tree from before `console_main` (the exit that skips the interpreter's
# teardown) runs `main`, as its own console script did. One venv serves both trees of a pair.
# Guarded as a console script is: a worker process started by `multiprocessing` imports the
# parent's main script (as ``__mp_main__``), which must not run the command again.
LAUNCHER = """import sys
try:
    from monitor.cli import console_main as entry
except ImportError:
    from monitor.cli import main as entry
if __name__ == "__main__":
    sys.exit(entry())
"""


def cli_command(directory: Path) -> list[str]:
    launcher = directory / "policy-monitor"
    if not launcher.exists():
        launcher.write_text(LAUNCHER)
    return [sys.executable, str(launcher)]


def caught(
    config: Path, documents: int, root: Path = ROOT
) -> tuple[int, int, list[str], list[str]]:
    """(planted changes the project reported, planted, the missed ones, documents with
    changes reported that were not planted) after round 2."""
    output = subprocess.run(
        [
            *cli_command(config.parent),
            "--config",
            str(config),
            "changes",
            "--format",
            "json",
            "--no-baseline",
            "--source",
            SOURCE,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    ).stdout
    rows = [json.loads(line) for line in output.splitlines() if line]
    planted = scale_week2_changes(documents, html_only=True)
    missed = [
        f"{c.document_url_path} {c.kind} {c.field} {c.before} -> {c.after}"
        for c in planted
        if not any(_reports(c, row) for row in rows)
    ]
    changed = {c.document_url_path for c in planted}
    unplanted = sorted({row["document_id"] for row in rows} - changed)
    return len(planted) - len(missed), len(planted), missed, unplanted


def one_run(
    documents: int, against: Path | None = None, *, base_first: bool = False
) -> dict[str, object]:
    urlwatch = urlwatch_binary()
    server, base_url = spawn_fixture(
        "fixtures.payer_site",
        "--scenario",
        "week1",
        "--documents",
        str(documents),
        "--html-only",
        "--warm",
        cwd=str(ROOT),
    )
    roots = {"project": ROOT} if against is None else {"project": ROOT, "against": against}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-vs-urlwatch-") as scratch:
            directory = Path(scratch)
            urls = document_urls(base_url, documents)
            uw_args = [str(urlwatch), *write_urlwatch_files(directory, urls)]
            configs = {}
            for name in roots:
                (directory / name).mkdir()
                configs[name] = write_project_config(directory / name, base_url, documents)
            rounds: dict[str, dict[str, object]] = {}
            for number, scenario in ((1, "week1"), (2, "week2")):
                if scenario != "week1":
                    _get(base_url + f"/_control/scenario?name={scenario}", "POST")
                theirs = measure(uw_args, env={**os.environ, "PYTHONPATH": str(ROOT)})
                figures: dict[str, object] = {"urlwatch": asdict(theirs)}
                order = list(roots.items())
                for name, root in reversed(order) if base_first else order:
                    ours = measure(
                        [*cli_command(directory), "--config", str(configs[name]), "check"],
                        env={**os.environ, "PYTHONPATH": str(root)},
                    )
                    figures[name] = asdict(ours)
                    figures["ratio" if name == "project" else f"ratio_{name}"] = (
                        ours.seconds / theirs.seconds
                    )
                rounds[str(number)] = figures
            results = {name: caught(configs[name], documents, root) for name, root in roots.items()}
    finally:
        server.terminate()
        server.wait(timeout=10)
    got, planted, missed, unplanted = results["project"]
    run: dict[str, object] = {
        "rounds": rounds,
        "planted_changes": planted,
        "caught_changes": got,
        "missed": missed,
        "documents_with_unplanted_changes": unplanted,
        "urls": len(urls),
    }
    if against is not None:
        got, planted, missed, unplanted = results["against"]
        run["against"] = {
            "tree": str(against),
            "caught_changes": got,
            "missed": missed,
            "documents_with_unplanted_changes": unplanted,
        }
    return run


def _commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument(
        "--repeat", type=int, default=1, help="side-by-side runs, one after another"
    )
    parser.add_argument(
        "--against", type=Path, help="another checkout to run in the same rounds (its base)"
    )
    args = parser.parse_args()
    probe = MachineProbe()  # the machine's speed, for figures of other sessions
    runs = []
    for repeat in range(args.repeat):
        load = os.getloadavg()
        # With --against, every other run starts with the base: load drifts within a run.
        run = one_run(args.documents, args.against, base_first=repeat % 2 == 1)
        run["base_first"] = repeat % 2 == 1
        run["loadavg_before"] = list(load)
        runs.append(run)
        print(f"run {repeat + 1} (load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
        for number, title in (("1", "first fetch"), ("2", "re-check, 5 % changed")):
            figures = run["rounds"][number]  # type: ignore[index]
            theirs, ours = figures["urlwatch"], figures["project"]
            print(
                f"  round {number} ({title}): urlwatch {theirs['seconds']:5.2f} s "
                f"{theirs['peak_rss_mb']:4.0f} MB | project {ours['seconds']:5.2f} s "
                f"{ours['peak_rss_mb']:4.0f} MB | ratio {figures['ratio']:.2f}x"
            )
            if "against" in figures:
                base = figures["against"]
                print(
                    f"      against {args.against}: {base['seconds']:5.2f} s "
                    f"{base['peak_rss_mb']:4.0f} MB | ratio {figures['ratio_against']:.2f}x"
                )
        print(
            f"  planted changes caught: {run['caught_changes']}/{run['planted_changes']}; "
            f"documents with changes not planted: {len(run['documents_with_unplanted_changes'])}"  # type: ignore[arg-type]
        )
        for line in run["missed"]:  # type: ignore[attr-defined]
            print(f"    missed: {line}")
        if "against" in run:
            base_run = run["against"]
            print(
                f"  against: caught {base_run['caught_changes']}/{run['planted_changes']}, "  # type: ignore[index]
                f"not planted {len(base_run['documents_with_unplanted_changes'])}"  # type: ignore[index]
            )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "vs_urlwatch",
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "commit": _commit(),
                "cpu_count": os.cpu_count(),
                "platform": platform.platform(),
                "loadavg": list(os.getloadavg()),
                "machine": probe.finish(),
                "documents": args.documents,
                "urlwatch_version": URLWATCH_VERSION,
                "project_settings": {"download_delay_seconds": 0.0, "concurrency_per_host": 6},
                "against": str(args.against) if args.against else None,
                "runs": runs,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    all_caught = all(run["caught_changes"] == run["planted_changes"] for run in runs)
    return 0 if all_caught else 1


if __name__ == "__main__":
    sys.exit(main())
