"""Score the criteria-tree builder against the hand-labelled trees in tests/criteria_trees/.

Leaves: precision / recall of typed leaves with their values (kind equal and value equal under
the kind's rule: ages, prescribers, durations and doses exactly; names by shared words).
Structure: of the matched leaves, how many sit under the right indication and branch, and under
the right AND/OR parent. Context: leaves whose evidence comes from a context section (must be 0).
Prints the figures and writes bench/results/criteria_trees.json (date, commit, cores, figures).

    python bench/criteria_trees.py
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffing.parse import parse_document  # noqa: E402
from diffing.parse.sections import CRITERIA, section_roles  # noqa: E402
from diffing.tree import build_tree  # noqa: E402

LABELS = ROOT / "tests" / "criteria_trees"
REALDATA = ROOT.parent / "shared" / "realdata"
_STOP = frozenset(
    "a an the of or and for to in with at least one other this these patient".split()  # noqa: SIM905
)


@dataclass(frozen=True)
class Leaf:
    indication: str
    phase: str
    parent_op: str
    kind: str
    value: str


def expected_leaves(label: dict) -> list[Leaf]:
    out: list[Leaf] = []

    def walk(node: object, indication: str, phase: str, op: str) -> None:
        if isinstance(node, str):
            kind, _, value = node.partition(": ")
            out.append(Leaf(indication, phase, op, kind, value))
            return
        assert isinstance(node, dict)
        ((node_op, children),) = node.items()
        for child in children:
            walk(child, indication, phase, node_op)

    for block in label["indications"]:
        for branch in block["branches"]:
            walk(branch["tree"], block["name"], branch["phase"], "all")
            if branch.get("approval"):
                out.append(
                    Leaf(block["name"], branch["phase"], "-", "approval", branch["approval"])
                )
    return out


def predicted_leaves(tree) -> list[Leaf]:  # type: ignore[no-untyped-def]
    out = [
        Leaf(p.indication, p.phase, p.parent_op, p.leaf.kind, _value(p.leaf)) for p in tree.placed()
    ]
    for block in tree.indications:
        for branch in block.branches:
            if branch.approval_text:
                out.append(Leaf(block.name, branch.phase, "-", "approval", branch.approval_text))
    return out


def _value(leaf) -> str:  # type: ignore[no-untyped-def]
    if leaf.kind == "step_therapy":
        parts = [leaf.subject]
        if leaf.duration_text:
            parts.append(leaf.duration_text)
        return " | ".join(parts)
    if leaf.kind == "on_therapy":
        return leaf.duration_text or leaf.value
    return leaf.value


def _words(text: str) -> set[str]:
    return {w.rstrip("s") for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP}


def _duration(text: str) -> str | None:
    match = re.search(r"(\d+) (day|week|month|year)", text)
    return f"{match.group(1)} {match.group(2)}" if match else None


def same_value(kind: str, expected: str, got: str) -> bool:
    if kind in ("age", "approval", "on_therapy", "dosing"):
        return _norm(expected) == _norm(got)
    if kind == "prescriber":
        return {s.strip() for s in expected.split(",")} == {s.strip() for s in got.split(",")}
    if kind == "threshold":
        return _norm(expected) == _norm(got)
    if kind == "step_therapy":
        e_what, *e_rest = [p.strip() for p in expected.split("|")]
        g_what, *_ = [p.strip() for p in got.split("|")]
        e_days = next((_duration(p) for p in e_rest if _duration(p)), None)
        if e_days != _duration(got):
            return False
        return bool(_words(e_what) & _words(g_what))
    shared = _words(expected) & _words(got)
    return len(shared) >= max(1, min(len(_words(expected)), len(_words(got))) // 2)


def _norm(text: str) -> str:
    text = text.lower().replace("≥", ">=").replace("≤", "<=")
    text = re.sub(r"\b(\d+) (day|week|month|year)s\b", r"\1 \2", text)
    text = text.replace("1 year", "12 month") if False else text
    return re.sub(r"\s+", " ", text).strip()


def _indication_match(expected: str, got: str) -> bool:
    return expected == got or (
        bool(_words(expected) & _words(got))
        and (len(_words(expected) & _words(got)) >= max(1, len(_words(expected)) // 2))
    )


def _similarity(a: str, b: str) -> float:
    wa, wb = _words(a), _words(b)
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def _claimed(labelled: list[str], predicted: list[str]) -> set[str]:
    """The predicted block names the labelled ones claim, one each (best similarity first); a
    labelled block the builder did not find claims none (its leaves count as missed)."""
    pairs = sorted(
        (
            (_similarity(n, p), i, j)
            for i, n in enumerate(labelled)
            for j, p in enumerate(predicted)
        ),
        reverse=True,
    )
    taken_labels: set[int] = set()
    claimed: dict[int, str] = {}
    for similarity, i, j in pairs:
        if i in taken_labels or j in claimed:
            continue
        # the block must be the labelled one: mostly the same words, or the same leading name
        # ("abcd1 …", "clonoseq …"); a block that only shares "mutation testing" is another test
        first = next(iter(re.findall(r"[a-z0-9]+", labelled[i].lower())), "")
        if similarity < 0.5 and first not in _words(predicted[j]) | {""} - _STOP:
            continue
        taken_labels.add(i)
        claimed[j] = predicted[j]
    return set(claimed.values())


def score(label: dict, tree, context_leaves: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    expected = expected_leaves(label)
    predicted = predicted_leaves(tree)
    if not label.get("complete", True):
        # Only the blocks the label covers are scored: each labelled block claims the ONE
        # predicted block most like it. (Scoping by "shares words with any labelled block" let
        # unlabelled blocks such as "ezh2 mutation testing" in through "mutation testing".)
        names = [b["name"] for b in label["indications"]]
        scope = _claimed(names, list(dict.fromkeys(p.indication for p in predicted)))
        predicted = [p for p in predicted if p.indication in scope]
    unmatched = list(predicted)
    matched = attached = parent_ok = 0
    # Two passes: leaves under their own indication and branch first, so an expected leaf
    # never takes, from another block, the prediction that was that block's own leaf.
    left = []
    missed: list[Leaf] = []
    blocks = list(dict.fromkeys(p.indication for p in predicted))
    for want in expected:
        # the block most like the labelled one: "alk gene rearrangement" must not take
        # "braf gene … mutation testing"'s leaf because both names say "gene"
        own = [b for b in blocks if _indication_match(want.indication, b)]
        best = max((_similarity(want.indication, b) for b in own), default=0.0)
        own = [b for b in own if _similarity(want.indication, b) == best]
        placed = [
            p
            for p in unmatched
            if p.kind == want.kind
            and same_value(want.kind, want.value, p.value)
            and p.indication in own
            and p.phase == want.phase
        ]
        if not placed:
            left.append(want)
            continue
        chosen = placed[0]
        unmatched.remove(chosen)
        matched += 1
        attached += 1
        if want.parent_op == "-" or chosen.parent_op == want.parent_op:
            parent_ok += 1
    for want in left:
        candidates = [
            p
            for p in unmatched
            if p.kind == want.kind and same_value(want.kind, want.value, p.value)
        ]
        if candidates:
            unmatched.remove(candidates[0])
            matched += 1  # the right leaf under the wrong indication or branch
        else:
            missed.append(want)
    return {
        "expected": len(expected),
        "predicted": len(predicted),
        "matched": matched,
        "attached": attached,
        "parent_ok": parent_ok,
        "context_leaves": context_leaves,
        "false_positives": [_shown(p) for p in unmatched],
        "missed": [_shown(m) for m in missed],
    }


def _shown(leaf: Leaf) -> str:
    return f"{leaf.indication} / {leaf.phase} / {leaf.parent_op}: {leaf.kind}: {leaf.value}"


def run(labels: Path = LABELS) -> dict[str, object]:
    """Score every label in `labels` (the tuning set; `labels / "heldout"` is scored apart)."""
    per_document: dict[str, dict[str, object]] = {}
    for path in sorted(labels.glob("*.json")):
        label = json.loads(path.read_text())
        source = REALDATA / label["source"]
        if not source.exists():
            print(f"{path.stem}: skipped ({source} absent)")
            continue
        document = parse_document(source.read_bytes(), label["content_type"], document_id=path.stem)
        tree = build_tree(document)
        names = [s.name for s in document.sections]
        roles = dict(zip(names, section_roles(names), strict=True))
        context = sum(
            1
            for placed in tree.placed()
            if placed.leaf.evidence is not None
            and placed.leaf.evidence.section is not None
            and roles.get(placed.leaf.evidence.section, CRITERIA) != CRITERIA
        )
        per_document[path.stem] = score(label, tree, context)
    totals = {
        k: sum(int(d[k]) for d in per_document.values())  # type: ignore[call-overload]
        for k in ("expected", "predicted", "matched", "attached", "parent_ok", "context_leaves")
    }
    figures = {
        "leaf_precision": round(totals["matched"] / totals["predicted"], 3)
        if totals["predicted"]
        else 0.0,
        "leaf_recall": round(totals["matched"] / totals["expected"], 3)
        if totals["expected"]
        else 0.0,
        "attachment": round(totals["attached"] / totals["matched"], 3)
        if totals["matched"]
        else 0.0,
        "and_or_parent": round(totals["parent_ok"] / totals["matched"], 3)
        if totals["matched"]
        else 0.0,
        "context_leaves": totals["context_leaves"],
    }
    return {"per_document": per_document, "totals": totals, "figures": figures}


def _print(title: str, result: dict[str, object]) -> None:
    print(f"== {title}")
    print(
        f"{'document':40} {'exp':>4} {'pred':>4} {'match':>5} {'attach':>6} "
        f"{'parent':>6} {'ctx':>3}"
    )
    for name, d in result["per_document"].items():  # type: ignore[attr-defined]
        print(
            f"{name:40} {d['expected']:>4} {d['predicted']:>4} {d['matched']:>5} "
            f"{d['attached']:>6} {d['parent_ok']:>6} {d['context_leaves']:>3}"
        )
    for key, value in result["figures"].items():  # type: ignore[attr-defined]
        print(f"{key}: {value}")
    for name, d in result["per_document"].items():  # type: ignore[attr-defined]
        for leaf in d["false_positives"]:
            print(f"  false positive  {name}: {leaf}")
        for leaf in d["missed"]:
            print(f"  missed          {name}: {leaf}")


def main() -> None:
    result = run()
    _print("labelled set (labels written before tuning)", result)
    heldout = run(LABELS / "heldout")
    _print("held out (labels committed before the builder first ran on them)", heldout)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    out = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "cores": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        **result,
        "heldout": heldout,
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "criteria_trees.json").write_text(
        json.dumps(out, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
