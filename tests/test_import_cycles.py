"""No import cycles between qwenlong modules, found statically so lazy imports cannot hide one.

A cycle works only while every module in it happens to be imported in a lucky order, and an
import moved into a function to break one still leaves the two modules tangled. The graph is
read with `ast` from every module under packages/*/src/qwenlong and src/qwenlong, with one edge
per import statement, at module level or inside functions; imports under `if TYPE_CHECKING:`
never run and are left out.

Importing a.b.c first runs the `__init__` of the packages a and a.b, so an edge to a.b.c also
points at those packages; except packages enclosing the importing module itself, which Python
has already started initialising before that module can run (a package whose `__init__`
re-exports its submodules is not a cycle). An explicit `from a.b import name` inside a.b.c
still counts: it needs a.b's `__init__` to have finished.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = (*sorted(REPO.glob("packages/*/src")), REPO / "src")
"""Folders holding the PEP 420 namespace package `qwenlong` (it has no __init__.py)."""

Graph = dict[str, set[str]]


def find_modules(roots: Iterable[Path]) -> tuple[dict[str, Path], set[str]]:
    """Module name -> file for every qwenlong module, and the names that are packages."""
    modules: dict[str, Path] = {}
    packages: set[str] = set()
    for root in roots:
        for path in sorted((root / "qwenlong").rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
                packages.add(".".join(parts))
            modules[".".join(parts)] = path
    return modules, packages


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under `node`, at any depth, except `if TYPE_CHECKING:` bodies."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for branch in child.orelse:
                yield from _imports(ast.Module(body=[branch], type_ignores=[]))
        else:
            yield from _imports(child)


def _imported_names(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: set[str]
) -> Iterator[str]:
    """The module names one statement imports (a relative import resolved against `module`)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        yield submodule if submodule in modules else base


def _enclosing_packages(module: str) -> set[str]:
    """`module` and every package above it: initialised before `module`'s code runs."""
    parts = module.split(".")
    return {".".join(parts[:end]) for end in range(1, len(parts) + 1)}


def import_graph(roots: Iterable[Path]) -> Graph:
    """Module -> the qwenlong modules whose code importing it runs (see the module docstring)."""
    modules, packages = find_modules(roots)
    graph: Graph = {name: set() for name in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        enclosing = _enclosing_packages(module)
        for node in _imports(tree):
            for target in _imported_names(node, module, module in packages, set(modules)):
                if target in modules:
                    graph[module].add(target)
                parts = target.split(".")
                for end in range(1, len(parts)):
                    parent = ".".join(parts[:end])
                    if parent in packages and parent not in enclosing:
                        graph[module].add(parent)
    return graph


def find_cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components of more than one module, and modules importing themselves.

    Tarjan's algorithm, iterative so a deep import chain cannot hit the recursion limit.
    """
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = lowlink[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = lowlink[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph.get(succ, ())))))
                    break
                if succ in on_stack:
                    lowlink[node] = min(lowlink[node], index[succ])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    lowlink[parent] = min(lowlink[parent], lowlink[node])
                if lowlink[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph.get(node, ()):
                        cycles.append(sorted(component))
    return sorted(cycles)


def test_no_import_cycles_between_qwenlong_modules() -> None:
    graph = import_graph(SOURCE_ROOTS)
    assert len(graph) > 100  # the scan found the packages (a wrong root would find nothing)
    cycles = find_cycles(graph)
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_detector_reports_two_modules_importing_each_other(tmp_path: Path) -> None:
    """The check can fail: a hidden in-function import back is a cycle too."""
    _write(tmp_path, "qwenlong/fake/__init__.py", "")
    _write(tmp_path, "qwenlong/fake/a.py", "from qwenlong.fake.b import helper\n")
    _write(tmp_path, "qwenlong/fake/b.py", "def helper():\n    from . import a\n")
    _write(tmp_path, "qwenlong/fake/c.py", "import qwenlong.fake.a\n")
    graph = import_graph([tmp_path])
    assert graph == {
        "qwenlong.fake": set(),
        "qwenlong.fake.a": {"qwenlong.fake.b"},
        "qwenlong.fake.b": {"qwenlong.fake.a"},
        "qwenlong.fake.c": {"qwenlong.fake.a"},
    }
    assert find_cycles(graph) == [["qwenlong.fake.a", "qwenlong.fake.b"]]


def test_detector_skips_type_checking_imports_and_reports_self_imports(tmp_path: Path) -> None:
    _write(tmp_path, "qwenlong/fake/__init__.py", "from qwenlong.fake import a\n")
    _write(
        tmp_path,
        "qwenlong/fake/a.py",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from qwenlong.fake import b\n",
    )
    _write(tmp_path, "qwenlong/fake/b.py", "import qwenlong.fake.b\nfrom .. import fake\n")
    graph = import_graph([tmp_path])
    assert graph == {
        "qwenlong.fake": {"qwenlong.fake.a"},
        "qwenlong.fake.a": set(),
        "qwenlong.fake.b": {"qwenlong.fake", "qwenlong.fake.b"},
    }
    assert find_cycles(graph) == [["qwenlong.fake.b"]]


def test_importing_a_submodule_from_outside_runs_its_package(tmp_path: Path) -> None:
    """pkg/__init__ imports pkg.x; pkg.x imports other.y; other.y imports pkg.x: a real cycle
    through pkg's __init__ as well, since importing pkg.x from outside runs pkg first."""
    _write(tmp_path, "qwenlong/pkg/__init__.py", "from qwenlong.pkg.x import X\n")
    _write(tmp_path, "qwenlong/pkg/x.py", "from qwenlong.other.y import Y\nX = 1\n")
    _write(tmp_path, "qwenlong/other/__init__.py", "")
    _write(tmp_path, "qwenlong/other/y.py", "def f():\n    from qwenlong.pkg.x import X\nY = 2\n")
    graph = import_graph([tmp_path])
    assert graph["qwenlong.other.y"] == {"qwenlong.pkg", "qwenlong.pkg.x"}
    assert graph["qwenlong.pkg.x"] == {"qwenlong.other", "qwenlong.other.y"}
    assert find_cycles(graph) == [["qwenlong.other.y", "qwenlong.pkg", "qwenlong.pkg.x"]]
