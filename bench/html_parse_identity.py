"""Benchmark and check: HTML parse output identical between two trees, and its CPU (not a test).

Corpora: (a) the fixture payer site's 1,000 generated CPB pages (weeks 1 and 2) and its named
CPB, index and home pages; (b) every HTML file under ``tests/`` and ``fixtures/`` and the HTML
string constants of the test modules (plus the chrome variants of ``tests/parse_chrome_pages``);
(c) every ``*.htm*`` file under ``/work/shared/realdata`` (read in place, never copied).

    python bench/html_parse_identity.py --against /tmp/base [--repeat 3]

Each tree parses every document with ``parse_document`` in a subprocess of its own (this
script on that tree's code, `identity_common`) and writes the ``repr`` of each result (or of the
``ParseError``); the two are compared document by document (exit status 1 when any differs).
Then the 1,000 fixture pages are parsed ``--repeat`` times in each tree, interleaved, and the CPU
seconds (user + sys of the parsing process) are reported as medians. Raw figures go
to ``bench/results/html_parse_<name>.json``.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import tempfile
import time
from pathlib import Path

import identity_common as common

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve()
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
        for url_path, resource in sorted(named.resources(scenario).items()):
            if resource.content_type.startswith("text/html"):
                docs.append((f"named:{scenario}:{url_path}", body(resource).data))
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


def _time(tree: Path, label: str, tmp: Path) -> dict[str, float]:
    out = tmp / f"time-{label}.json"
    common.run(SCRIPT, (tree, "time", out, ()))
    return dict(json.loads(out.read_text()))


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
        common.use_tree_under_test()
        dump(args.dump)
        return 0
    if args.time:
        common.use_tree_under_test()
        time_parse(args.time)
        return 0
    if args.against is None:
        parser.error("--against is needed")
    figures = common.header(ROOT, args.against)
    differences = 0
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if not args.skip_identity:
            checked, differences = common.identity(
                SCRIPT, ROOT, args.against, tmp, flag="ParseError", flagged="refused as error pages"
            )
            figures.update(checked)
        runs = common.interleaved(
            args.repeat, args.against, ROOT, lambda tree, label: _time(tree, label, tmp)
        )
        figures["runs"] = runs
        if args.repeat:
            for label in ("base", "mine"):
                cpu, wall = common.median(runs[label], "cpu"), common.median(runs[label], "wall")
                print(f"{label}: parse of 1,000 fixture pages: cpu {cpu:.2f} s, wall {wall:.2f} s")
            figures["median_cpu"] = {k: common.median(v, "cpu") for k, v in runs.items()}
            figures["median_wall"] = {k: common.median(v, "wall") for k, v in runs.items()}
    common.save(ROOT / "bench" / "results" / f"html_parse_{args.name}.json", figures)
    return 1 if differences else 0


if __name__ == "__main__":
    raise SystemExit(main())
