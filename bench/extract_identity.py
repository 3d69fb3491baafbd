"""Benchmark and check: what an extraction worker returns, identical between two trees, and its
CPU (not a test).

What a worker returns for a payer document is `monitor.pipeline.worker.Extracted`: the criteria
(codes, drugs, steps, criteria tree, sections …), the document's text and the page edges its next
version is to be parsed with, or the error message. Corpora: (a) the fixture payer site's 1,000
generated CPB pages of weeks 1 and 2; (b) a sample of the PDFs the fixture payer site serves
(generated and named); (c) every HTML, PDF and text file under ``/work/shared/realdata`` (read in
place, never copied), each dated version after the first parsed with the page edges the worker
sent back for the one before, as the pipeline does.

    python bench/extract_identity.py --against /tmp/base [--repeat 3] [--name NAME]

Each tree runs the worker's own function (`extract_or_error` with the payer source kind's
extraction) over every document in a subprocess of its own, and writes the ``repr`` of what it
returns after a pickle round trip (what the parent receives); the two are compared document by
document. Then the 1,000 week-1 fixture pages are extracted ``--repeat`` times in each tree,
interleaved, and the CPU seconds of the extracting process (extraction and pickling the result,
as a worker does) are reported as medians. Raw figures go to
``bench/results/extract_identity_<name>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import pickle
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import identity_common as common

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve()
REALDATA = Path("/work/shared/realdata")
FIXTURE_PAGES = 1000
FIXTURE_PDFS = 50
_REAL_SUFFIXES = (".htm", ".html", ".pdf", ".txt")
_DATED = re.compile(r"_\d{4}-\d{2}-\d{2}_")
_FETCHED = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)

# (name, content, content type, the name of the document whose reference it is parsed with)
Doc = tuple[str, bytes, str, str | None]


def fixture_pages(documents: int = FIXTURE_PAGES) -> list[Doc]:
    from fixtures.payer_site.site import PayerSite, body

    out: list[Doc] = []
    for scenario in ("week1", "week2"):
        site = PayerSite(documents=documents, html_only=True)
        for path in sorted(site.document_paths(scenario)):
            resource = site.lookup(scenario, path)
            assert resource is not None
            out.append((f"fixture:{scenario}:{path}", body(resource).data, "text/html", None))
    return out


def fixture_pdfs(sample: int = FIXTURE_PDFS) -> list[Doc]:
    """An even sample of `sample` PDFs of the generated site (half from each week), and the
    named site's PDFs of both weeks."""
    from fixtures.payer_site.site import PayerSite, body

    out: list[Doc] = []
    site = PayerSite(documents=FIXTURE_PAGES)
    for scenario in ("week1", "week2"):
        paths = sorted(
            path
            for path in site.document_paths(scenario)
            if site.resources(scenario)[path].content_type.startswith("application/pdf")
        )
        step = max(1, len(paths) // (sample // 2))
        for path in paths[::step][: sample // 2]:
            resource = site.resources(scenario)[path]
            out.append((f"pdf:{scenario}:{path}", body(resource).data, resource.content_type, None))
    named = PayerSite()
    for scenario in ("week1", "week2"):
        for path, resource in sorted(named.resources(scenario).items()):
            if resource.content_type.startswith("application/pdf"):
                data = body(resource).data
                out.append((f"named:{scenario}:{path}", data, resource.content_type, None))
    return out


def real_documents() -> list[Doc]:
    """Every HTML, PDF and text file under REALDATA; a dated version (``…_2026-03-22_…``) is
    parsed with the reference of the version before it in the same folder."""
    out: list[Doc] = []
    last: dict[str, str] = {}
    for path in sorted(REALDATA.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in _REAL_SUFFIXES:
            continue
        name = f"real:{path.relative_to(REALDATA)}"
        kind = {".pdf": "application/pdf", ".txt": "text/plain"}.get(
            path.suffix.lower(), "text/html"
        )
        series = _DATED.sub("_", str(path.relative_to(REALDATA)))
        out.append((name, path.read_bytes(), kind, last.get(series)))
        last[series] = name
    return out


def corpus() -> list[Doc]:
    return [*fixture_pages(), *fixture_pdfs(), *real_documents()]


def _raw(name: str, content: bytes, content_type: str) -> Any:
    from diffing.model import RawDocument

    return RawDocument(
        source="payers",
        key=name,
        url=f"http://127.0.0.1/{name}",
        content=content,
        content_type=content_type,
        fetched_at=_FETCHED,
        title="A Policy Title",
        doc_type="payer_policy",
        source_meta=(("payer", "Aetna"), ("max_pages", "300")),
    )


def _canonical(value: object) -> object:
    """`value` with every set as a sorted tuple, so that its repr does not depend on the order
    of a set (string hashes differ between processes); dataclasses field by field."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return (
            type(value).__name__,
            *((f.name, _canonical(getattr(value, f.name))) for f in fields),
        )
    if isinstance(value, (set, frozenset)):
        return ("set", *sorted((_canonical(item) for item in value), key=repr))
    if isinstance(value, (tuple, list)):
        return type(value)(_canonical(item) for item in value)
    if isinstance(value, dict):
        return ("dict", *sorted(((repr(k), _canonical(v)) for k, v in value.items()), key=repr))
    return value


def _shown(result: object) -> str:
    """What the parent receives, in full: the criteria, the text and its reference."""
    sent = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    received = pickle.loads(sent)  # noqa: S301  (the bytes pickled on the line above)
    if isinstance(received, str):
        return f"error: {received}"
    criteria, text = received
    if text is None:
        return repr(_canonical((criteria, None)))
    return repr(_canonical((criteria, type(text).__name__, str(text), text.reference)))


def dump(out: Path) -> None:
    """Run the worker over the corpus in this tree; write {name: repr} to `out`."""
    from monitor.pipeline.worker import extract_or_error
    from sources import SOURCE_KINDS

    extract = SOURCE_KINDS["payer_policies"].extract
    results: dict[str, str] = {}
    references: dict[str, Any] = {}
    for name, content, content_type, previous in corpus():
        reference = references.get(previous, ()) if previous else ()
        result = extract_or_error(extract, _raw(name, content, content_type), reference)
        if not isinstance(result, str) and result[1] is not None:
            references[name] = result[1].reference
        results[name] = _shown(result)
    out.write_text(json.dumps(results))


def time_extract(out: Path) -> None:
    """CPU seconds of a worker extracting the 1,000 week-1 fixture pages in this tree, with the
    pickling of each result it sends back."""
    from monitor.pipeline.warm import warm  # noqa: F401  (warms as the fork server does)
    from monitor.pipeline.worker import extract_or_error
    from sources import SOURCE_KINDS

    extract = SOURCE_KINDS["payer_policies"].extract
    raws = [_raw(n, c, t) for n, c, t, _ in fixture_pages() if ":week1:" in n]
    cpu, wall = time.process_time(), time.perf_counter()
    sent = 0
    for raw in raws:
        sent += len(pickle.dumps(extract_or_error(extract, raw), pickle.HIGHEST_PROTOCOL))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    out.write_text(json.dumps({"pages": len(raws), "cpu": cpu, "wall": wall, "sent": sent}))


def _time(tree: Path, label: str, tmp: Path) -> dict[str, float]:
    out = tmp / f"time-{label}.json"
    common.run(SCRIPT, (tree, "time", out, ()), hash_seed="0")
    return dict(json.loads(out.read_text()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="the other (base) tree")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--name", default="extract")
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
        time_extract(args.time)
        return 0
    if args.against is None:
        parser.error("--against is needed")
    figures = common.header(ROOT, args.against)
    differences = 0
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if not args.skip_identity:
            # The two dumps side by side; the same set orders in both trees (the repr sorts
            # them too).
            checked, differences = common.identity(
                SCRIPT,
                ROOT,
                args.against,
                tmp,
                flag="error: ",
                flagged="errors, alike in both",
                hash_seed="0",
            )
            figures.update(checked)
        runs = common.interleaved(
            args.repeat, args.against, ROOT, lambda tree, label: _time(tree, label, tmp)
        )
        if args.repeat:
            medians = {k: common.median(v, "cpu") for k, v in runs.items()}
            for label in ("base", "mine"):
                wall = common.median(runs[label], "wall")
                print(
                    f"{label}: worker extraction of 1,000 fixture pages: cpu {medians[label]:.2f} s"
                    f", wall {wall:.2f} s (n={len(runs[label])})"
                )
            print(f"mine/base cpu: {medians['mine'] / medians['base']:.3f}")
            figures["median_cpu"] = medians
            figures["ratio_cpu"] = medians["mine"] / medians["base"]
            figures["median_wall"] = {k: common.median(v, "wall") for k, v in runs.items()}
        figures["runs"] = runs
    common.save(ROOT / "bench" / "results" / f"extract_identity_{args.name}.json", figures)
    return 1 if differences else 0


if __name__ == "__main__":
    raise SystemExit(main())
