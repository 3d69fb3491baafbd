"""The dependency rules of docs/architecture.md, checked by reading every import with `ast`.

Imports inside functions (lazy ones) and under `if TYPE_CHECKING:` count like any other: a rule
that a lazy import may step round is not a rule. Nothing is imported to check it, so a broken
module still gets its rules checked.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("monitor", "sources", "diffing", "notifications", "fixtures")
MAX_TOP_LEVEL_MODULES = 15  # of monitor/, beside __init__.py: the leaves and the composition root


@dataclass(frozen=True, kw_only=True)
class Import:
    """One import statement's target, as a dotted name, and where it was written."""

    importer: str  # dotted module name, e.g. "monitor.api.app"
    target: str  # dotted name of what is imported, resolved when relative: "sqlalchemy.orm"
    path: Path
    line: int

    @property
    def top(self) -> str:
        return self.target.split(".", 1)[0]

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} imports {self.target}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def project_modules() -> dict[str, Path]:
    """Every Python module of the project's packages, by dotted name."""
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _resolve_relative(module: str, path: Path, level: int, name: str | None) -> str:
    base = module.split(".")
    if not _is_package(path):
        base.pop()  # a plain module's level 1 is its package
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, name] if name else base)


def _targets(node: ast.Import | ast.ImportFrom, module: str, path: Path) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    source = _resolve_relative(module, path, node.level, node.module) if node.level else node.module
    assert source is not None
    known = project_modules()
    for alias in node.names:
        # `from pkg import sub` imports the submodule pkg.sub when there is one.
        submodule = f"{source}.{alias.name}"
        yield submodule if submodule in known else source


@cache
def imports_of(module: str) -> tuple[Import, ...]:
    path = project_modules()[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []
    for node in ast.walk(tree):  # the whole tree: function bodies and TYPE_CHECKING blocks too
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.extend(
                Import(importer=module, target=target, path=path, line=node.lineno)
                for target in _targets(node, module, path)
            )
    return tuple(sorted(set(found), key=lambda i: (i.line, i.target)))


def all_imports() -> Iterator[Import]:
    for module in project_modules():
        yield from imports_of(module)


def project_target(imp: Import) -> str | None:
    """The project module an import lands on (the longest dotted prefix that is one), or None."""
    if imp.top not in PACKAGES:
        return None
    known = project_modules()
    parts = imp.target.split(".")
    while parts:
        if ".".join(parts) in known:
            return ".".join(parts)
        parts.pop()
    return None


def _in(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def module_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in all_imports():
        target = project_target(imp)
        if target is not None and target != imp.importer:
            graph[imp.importer].add(target)
    return graph


def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; only the components of more than one module (the loops)."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    loops: list[list[str]] = []
    counter = 0
    nodes = sorted(set(graph) | {t for targets in graph.values() for t in targets})
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = []
        index[root] = lowlink[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, iter(sorted(graph.get(root, ())))))
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = lowlink[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    lowlink[node] = min(lowlink[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    lowlink[parent] = min(lowlink[parent], lowlink[node])
                if lowlink[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        loops.append(sorted(component))
    return sorted(loops)


def _report(violations: Iterable[Import]) -> str:
    return "\n".join(str(v) for v in violations)


# --- the rules -------------------------------------------------------------------------------


def room(module: str) -> str:
    """The room a module lives in: a package of monitor/ (monitor.store …), monitor's top level
    ("monitor"), or a top-level package (sources, diffing …)."""
    parts = module.split(".")
    if parts[0] == "monitor" and len(parts) > 1 and (ROOT / "monitor" / parts[1]).is_dir():
        return f"monitor.{parts[1]}"
    return parts[0]


ROOMS = sorted({room(m) for m in project_modules()})

# Violations the work in progress on issue 12 removes; each xfail goes when its room is clean.
# strict=True: the day a room passes, its xfail must be deleted, or this suite fails.
_SQL_MOVING_TO_STORE: dict[str, str] = {}
_LOOPS_BEING_BROKEN: dict[str, str] = {}


def _cases(names: Iterable[str], expected_failures: dict[str, str]) -> list[object]:
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=expected_failures[name]))
        if name in expected_failures
        else name
        for name in names
    ]


@pytest.mark.parametrize("checked_room", _cases(ROOMS, _SQL_MOVING_TO_STORE))
def test_sqlalchemy_only_in_the_store(checked_room: str) -> None:
    """monitor/store/ (with its migrations) is the only room that talks SQLAlchemy or Alembic."""
    violations = [
        imp
        for imp in all_imports()
        if room(imp.importer) == checked_room
        and imp.top in {"sqlalchemy", "alembic"}
        and not _in(imp.importer, "monitor.store")
    ]
    assert not violations, "SQLAlchemy outside monitor/store/:\n" + _report(violations)


@pytest.mark.parametrize("package", _cases(PACKAGES, _LOOPS_BEING_BROKEN))
def test_no_import_cycles(package: str) -> None:
    """No two modules import each other, directly or round a loop, lazy imports included.

    The loops are found over the whole project's graph; each package's case reports those that
    touch it (a loop across packages fails both)."""
    loops = [
        loop
        for loop in strongly_connected_components(module_graph())
        if any(_in(m, package) for m in loop)
    ]
    assert not loops, "import loops (each line one strongly connected component):\n" + "\n".join(
        " <-> ".join(loop) for loop in loops
    )


def test_only_the_composition_roots_import_notifications_and_fixtures() -> None:
    """In monitor/, only daemon.py and cli/ wire the sender and the fixture servers in."""
    violations = [
        imp
        for imp in all_imports()
        if _in(imp.importer, "monitor")
        and not _in(imp.importer, "monitor.daemon", "monitor.cli")
        and imp.top in {"notifications", "fixtures"}
    ]
    assert not violations, "notifications/fixtures imported from monitor/:\n" + _report(violations)


def _project_imports_outside(packages: tuple[str, ...], allowed: tuple[str, ...]) -> list[Import]:
    return [
        imp
        for imp in all_imports()
        if _in(imp.importer, *packages)
        and imp.top in PACKAGES
        and not _in(imp.target, *packages, *allowed)
    ]


def test_sources_import_only_diffing_and_the_errors_leaf() -> None:
    violations = _project_imports_outside(("sources",), ("diffing", "monitor.errors"))
    assert not violations, "sources/ reaching past diffing/ and monitor.errors:\n" + _report(
        violations
    )


def test_diffing_imports_only_the_errors_leaf() -> None:
    violations = _project_imports_outside(("diffing",), ("monitor.errors",))
    assert not violations, "diffing/ is not pure:\n" + _report(violations)


def test_monitor_top_level_stays_small() -> None:
    top_level = sorted(p.name for p in (ROOT / "monitor").glob("*.py") if p.name != "__init__.py")
    assert len(top_level) <= MAX_TOP_LEVEL_MODULES, (
        f"{len(top_level)} modules at monitor/'s top level (at most {MAX_TOP_LEVEL_MODULES}); "
        f"give a family its own package: {top_level}"
    )


def test_the_errors_leaf_imports_nothing_of_the_project() -> None:
    """monitor.errors is the one upward import diffing/ and sources/ may make; it stays a leaf."""
    assert [imp for imp in imports_of("monitor.errors") if imp.top in PACKAGES] == []


# --- the checker itself, on made-up imports --------------------------------------------------


def test_cycle_finder_reports_loops_and_leaves_chains_alone() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": set(), "f": {"g"}, "g": {"f"}}
    assert strongly_connected_components(graph) == [["a", "b", "c"], ["f", "g"]]
    assert strongly_connected_components({"a": {"b"}, "b": {"c"}}) == []


def test_lazy_and_relative_imports_are_seen() -> None:
    targets = {imp.target for imp in imports_of("diffing.mentions")}
    assert "monitor.errors" in targets  # imported inside a function there


@pytest.mark.parametrize(
    ("module", "filename", "level", "name", "expected"),
    [
        ("monitor.store.db", "db.py", 1, "models", "monitor.store.models"),
        ("monitor.store", "__init__.py", 1, "db", "monitor.store.db"),
        ("monitor.store.models.core", "core.py", 2, "db", "monitor.store.db"),
        ("monitor.api.app", "app.py", 1, None, "monitor.api"),
    ],
)
def test_relative_imports_resolve(
    module: str, filename: str, level: int, name: str | None, expected: str
) -> None:
    assert _resolve_relative(module, Path(filename), level, name) == expected
