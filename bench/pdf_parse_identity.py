"""Benchmark and check: PDF parse output identical between two trees, and its CPU (not a test).

Corpora: (a) the fixture payer site's PDFs: a sample of 100 of the generated corpus (every
tenth of the 1,000-document site's PDFs, weeks 1 and 2), its named PDFs of both weeks and the
20-page benchmark PDF; (b) every PDF under ``tests/`` and ``fixtures/``; (c) every PDF under
``/work/shared/realdata`` (read in place, never copied).

    python bench/pdf_parse_identity.py --against /tmp/base [--repeat 3]

Each tree parses every document with ``parse_document`` in a subprocess of its own and writes
the ``repr`` of each result (or of the ``ParseError``); the two are compared document by
document (`identity_common`; exit status 1 when any differs). Then the whole corpus is parsed
``--repeat`` times in each tree, interleaved, and the CPU seconds of the parsing process are
reported as medians (fixture and real PDFs apart). Raw figures go to
``bench/results/pdf_parse_identity_<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import identity_common as common

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve()
REALDATA = Path("/work/shared/realdata")
SITE_DOCUMENTS = 1000
SAMPLE_EVERY = 10  # of the site's generated PDFs (about 1,000 over two weeks): 100


def corpus() -> list[tuple[str, bytes]]:
    from fixtures.payer_site import benchmark_pdf
    from fixtures.payer_site.pdf_layout import render_policy_pdf
    from fixtures.payer_site.site import named_documents, scale_documents

    docs: list[tuple[str, bytes]] = [("fixture:benchmark", benchmark_pdf())]
    generated = [(week, pdf) for week in (1, 2) for pdf in scale_documents(SITE_DOCUMENTS, week)[0]]
    for week, pdf in generated[::SAMPLE_EVERY]:
        docs.append((f"fixture:week{week}:{pdf.url_path}", render_policy_pdf(pdf)))
    for week in (1, 2):
        for pdf in named_documents(week)[0]:
            docs.append((f"fixture:named{week}:{pdf.url_path}", render_policy_pdf(pdf)))
    for base in ("tests", "fixtures"):
        for path in sorted((ROOT / base).rglob("*")):
            if path.is_file() and path.suffix.lower() == ".pdf":
                docs.append((f"file:{path.relative_to(ROOT)}", path.read_bytes()))
    for path in sorted(REALDATA.rglob("*")):
        if path.is_file() and path.suffix.lower() == ".pdf":
            docs.append((f"real:{path.relative_to(REALDATA)}", path.read_bytes()))
    return docs


def _parse(name: str, data: bytes) -> str:
    from diffing.parse import parse_document
    from monitor.errors import ParseError

    try:
        return repr(parse_document(data, "application/pdf", document_id=name))
    except ParseError as error:
        return f"ParseError: {error}"


def dump(out: Path) -> None:
    """Parse the corpus in this tree; write {name: repr} to `out`."""
    out.write_text(json.dumps({name: _parse(name, data) for name, data in corpus()}))


def time_parse(out: Path, kinds: list[str]) -> None:
    """CPU and wall seconds of parsing the corpus in this tree, fixture and real apart."""
    docs = corpus()
    _parse(*docs[0])  # imports and caches warm
    figures: dict[str, dict[str, float]] = {}
    for kind in kinds:
        chosen = [(name, data) for name, data in docs if name.startswith(kind + ":")]
        cpu, wall = time.process_time(), time.perf_counter()
        for name, data in chosen:
            _parse(name, data)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        figures[kind] = {"documents": len(chosen), "cpu": cpu, "wall": wall}
    out.write_text(json.dumps(figures))


def _time(tree: Path, label: str, tmp: Path, kinds: str) -> dict[str, dict[str, float]]:
    out = tmp / f"time-{label}.json"
    common.run(SCRIPT, (tree, "time", out, ("--kinds", kinds)))
    return dict(json.loads(out.read_text()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="the other (base) tree")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--name", default="pdf2")
    parser.add_argument("--skip-identity", action="store_true")
    parser.add_argument("--base-dump", type=Path, help="the base tree's dump, made before")
    parser.add_argument("--mine-dump", type=Path, help="this tree's dump, made before")
    parser.add_argument(
        "--kinds", default="fixture,file,real", help="corpora timed (fixture, file, real)"
    )
    parser.add_argument("--dump", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--time", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dump:
        common.use_tree_under_test()
        dump(args.dump)
        return 0
    if args.time:
        common.use_tree_under_test()
        time_parse(args.time, args.kinds.split(","))
        return 0
    if args.against is None:
        parser.error("--against is needed")
    figures = common.header(ROOT, args.against)
    differences = 0
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if not args.skip_identity:
            checked, differences = common.identity(
                SCRIPT,
                ROOT,
                args.against,
                tmp,
                flag="ParseError",
                flagged="refused with a ParseError",
                mine_dump=args.mine_dump,
                base_dump=args.base_dump,
            )
            figures.update(checked)
        runs = common.interleaved(
            args.repeat, args.against, ROOT, lambda tree, label: _time(tree, label, tmp, args.kinds)
        )
        if args.repeat:
            medians = {
                label: {kind: common.median(runs[label], kind, "cpu") for kind in runs[label][0]}
                for label in ("base", "mine")
            }
            for kind in medians["base"]:
                base, mine_cpu = medians["base"][kind], medians["mine"][kind]
                documents = runs["base"][0][kind]["documents"]
                print(
                    f"{kind:8} ({documents} PDFs) CPU median of {args.repeat}: base "
                    f"{base:.2f} s, mine {mine_cpu:.2f} s, ratio {mine_cpu / base:.3f}"
                )
            figures["median_cpu"] = medians
        figures["runs"] = runs
    common.save(ROOT / "bench" / "results" / f"pdf_parse_identity_{args.name}.json", figures)
    return 1 if differences else 0


if __name__ == "__main__":
    raise SystemExit(main())
