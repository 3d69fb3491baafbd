"""Benchmark and check: HTML parse output identical between two trees, and its CPU (not a test).

Corpora: (a) the fixture payer site's 1,000 generated CPB pages (weeks 1 and 2) and its named
CPB, index and home pages; (b) every HTML file under ``tests/`` and ``fixtures/`` and the HTML
string constants of the test modules (plus the chrome variants of ``tests/parse_chrome_pages``);
(c) every ``*.htm*`` file under ``/work/shared/realdata`` (read in place, never copied).

    python bench/html_parse_identity.py --against /tmp/base [--repeat 3]

Each tree parses every document with ``parse_document`` in a subprocess of its own and writes
the ``repr`` of each result (or of the ``ParseError``); the two are compared document by
document. Then the 1,000 fixture pages are parsed ``--repeat`` times in each tree, interleaved,
and the CPU seconds (user + sys of the parsing process) are reported as medians. Raw figures go
to ``bench/results/html_parse_<name>.json``.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REALDATA = Path("/work/shared/realdata")
FIXTURE_PAGES = 1000


def _html_constants(path: Path) -> list[str]:
    """Module-level string constants of a test module that are HTML markup."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if len(text) > 80 and "<" in text and ("</p>" in text or "<html" in text.lower()):
                found.append(text)
    return found


def fixture_pages(documents: int = FIXTURE_PAGES) -> list[tuple[str, bytes]]:
    from fixtures.payer_site.site import PayerSite, body

    out: list[tuple[str, bytes]] = []
    for scenario in ("week1", "week2"):
        site = PayerSite(documents=documents, html_only=True)
        for path in sorted(site.document_paths(scenario)):
            resource = site.lookup(scenario, path)
            assert resource is not None
            out.append((f"fixture:{scenario}:{path}", body(resource).data))
    return out


def corpus() -> list[tuple[str, bytes]]:
    from fixtures.payer_site.site import PayerSite, body

    docs = fixture_pages()
    named = PayerSite()
    for scenario in ("week1", "week2"):
        for path, resource in sorted(named.resources(scenario).items()):
            if resource.content_type.startswith("text/html"):
                docs.append((f"named:{scenario}:{path}", body(resource).data))
    for base in ("tests", "fixtures"):
        for path in sorted((ROOT / base).rglob("*.htm*")):
            docs.append((f"file:{path.relative_to(ROOT)}", path.read_bytes()))
        for path in sorted((ROOT / base).rglob("*.py")):
            for i, text in enumerate(_html_constants(path)):
                docs.append((f"const:{path.relative_to(ROOT)}:{i}", text.encode()))
    sys.path.insert(0, str(ROOT / "tests"))
    from parse_chrome_pages import chrome_page

    docs += [(f"chrome:{v}", chrome_page(v).encode()) for v in (0, 1)]
    for path in sorted(REALDATA.rglob("*")):
        if path.is_file() and ".htm" in path.suffix.lower():
            docs.append((f"real:{path.relative_to(REALDATA)}", path.read_bytes()))
    return docs


def dump(out: Path) -> None:
    """Parse the corpus in this tree; write {name: repr} to `out`."""
    from diffing.parse import parse_document
    from monitor.errors import ParseError

    results = {}
    for name, data in corpus():
        try:
            results[name] = repr(parse_document(data, "text/html", document_id=name))
        except ParseError as error:
            results[name] = f"ParseError: {error}"
    out.write_text(json.dumps(results))


def time_parse(out: Path) -> None:
    """CPU seconds of parsing the 1,000 fixture pages (week 1) in this tree."""
    from diffing.parse import parse_document

    pages = [data for name, data in fixture_pages() if ":week1:" in name]
    parse_document(pages[0], "text/html")  # imports and caches warm
    cpu, wall = time.process_time(), time.perf_counter()
    for data in pages:
        parse_document(data, "text/html")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    out.write_text(json.dumps({"pages": len(pages), "cpu": cpu, "wall": wall}))


def _run(tree: Path, mode: str, out: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    script = tree / "bench" / "html_parse_identity.py"
    if not script.exists():
        script = ROOT / "bench" / "html_parse_identity.py"
    subprocess.run(
        [sys.executable, str(script), f"--{mode}", str(out)], check=True, env=env, cwd=tree
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="the other (base) tree")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--name", default="html")
    parser.add_argument("--skip-identity", action="store_true")
    parser.add_argument("--dump", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--time", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dump:
        dump(args.dump)
        return 0
    if args.time:
        time_parse(args.time)
        return 0
    if args.against is None:
        parser.error("--against is needed")
    figures: dict[str, object] = {"base": str(args.against), "load_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_identity:
            mine, theirs = Path(tmp, "mine.json"), Path(tmp, "base.json")
            _run(ROOT, "dump", mine)
            _run(args.against, "dump", theirs)
            a, b = json.loads(mine.read_text()), json.loads(theirs.read_text())
            groups: dict[str, list[int]] = {}
            for name in sorted(set(a) | set(b)):
                kind = name.split(":", 1)[0]
                same = a.get(name) == b.get(name)
                counts = groups.setdefault(kind, [0, 0, 0])
                counts[0] += same
                counts[1] += 1
                counts[2] += a.get(name, "").startswith("ParseError")
                if not same:
                    print(f"DIFFERS: {name}")
            for kind, (same, total, refused) in groups.items():
                print(f"{kind:8} identical {same}/{total} (refused as error pages: {refused})")
            figures["identity"] = {
                kind: {"identical": same, "total": total, "refused": refused}
                for kind, (same, total, refused) in groups.items()
            }
            digest = hashlib.sha256(mine.read_bytes()).hexdigest()[:16]
            figures["output_digest"] = digest
        runs: dict[str, list[dict[str, float]]] = {"base": [], "mine": []}
        for _ in range(args.repeat):
            for label, tree in (("base", args.against), ("mine", ROOT)):
                out = Path(tmp, f"time-{label}.json")
                _run(tree, "time", out)
                runs[label].append(json.loads(out.read_text()))
        for label in ("base", "mine"):
            cpu = statistics.median(r["cpu"] for r in runs[label])
            wall = statistics.median(r["wall"] for r in runs[label])
            print(f"{label}: parse of 1,000 fixture pages: cpu {cpu:.2f} s, wall {wall:.2f} s")
        figures["runs"] = runs
        figures["median_cpu"] = {k: statistics.median(r["cpu"] for r in v) for k, v in runs.items()}
        figures["median_wall"] = {
            k: statistics.median(r["wall"] for r in v) for k, v in runs.items()
        }
    figures["load_end"] = os.getloadavg()
    out = ROOT / "bench" / "results" / f"html_parse_{args.name}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
