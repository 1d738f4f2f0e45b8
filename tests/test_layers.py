"""The import graph of the package: no circle inside the interpreter (issue 21).

`import_graph` reads every module's imports of the package from its source (module-level and
function-level imports; those under `if TYPE_CHECKING:` are left out, as they never run, unless asked
for) and `cycles` finds the circles of a graph. The tests assert only on pyrag_dsl/interpreter/ for now.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.network_free

PACKAGE = Path(__file__).resolve().parent.parent / "pyrag_dsl"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    """'pyrag_dsl.interpreter.run' for pyrag_dsl/interpreter/run.py ('pyrag_dsl.interpreter' for its __init__)."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, type_checking: bool = False) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of a module, at any depth; those under `if TYPE_CHECKING:` only when
    `type_checking`."""
    out: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test) and not type_checking:
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def imported_modules(path: Path, modules: set[str], root: Path = PACKAGE, type_checking: bool = False) -> set[str]:
    """The modules among `modules` that the file at `path` imports (`from .x import y` counts as `.x.y` when
    that is a module, else as `.x`)."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), type_checking):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            if node.level:
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        for name in names:
            while name and name not in modules:  # `import a.b.c` of a package: its innermost module of ours
                name = name.rpartition(".")[0]
            if name and name != me:
                found.add(name)
    return found


def import_graph(root: Path = PACKAGE, type_checking: bool = False) -> dict[str, set[str]]:
    """module -> the modules of the package it imports, for every .py file under `root` (imports for type
    checkers only when `type_checking`)."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    return {name: imported_modules(path, set(files), root, type_checking) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of `graph`: each strongly connected part of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def subgraph(graph: dict[str, set[str]], prefix: str) -> dict[str, set[str]]:
    """The modules named `prefix` or under it, with only their imports of each other."""
    inside = {m for m in graph if m == prefix or m.startswith(prefix + ".")}
    return {m: graph[m] & inside for m in inside}


def test_the_interpreter_imports_run_one_way():
    """No circle among the interpreter's modules, its __init__ included."""
    graph = subgraph(import_graph(), "pyrag_dsl.interpreter")
    assert "pyrag_dsl.interpreter.state" in graph and "pyrag_dsl.interpreter.walker" in graph
    assert cycles(graph) == []


def test_the_interpreter_types_run_one_way_too():
    """Counting the imports for type checkers as well: nothing below the front door names the run."""
    assert cycles(subgraph(import_graph(type_checking=True), "pyrag_dsl.interpreter")) == []


def test_the_leaf_holds_the_run_state_and_imports_nothing_above_it():
    graph = subgraph(import_graph(), "pyrag_dsl.interpreter")
    assert graph["pyrag_dsl.interpreter.state"] <= {
        "pyrag_dsl.interpreter.record",
        "pyrag_dsl.interpreter.trace",
        "pyrag_dsl.interpreter.values",
    }
    assert "pyrag_dsl.interpreter.run" not in set().union(
        *(d for m, d in graph.items() if m.endswith((".state", ".walker", ".schedule", ".supervisor")))
    )


def test_the_import_walker_sees_every_kind_of_import(tmp_path):
    """Module-level, function-level, relative and absolute imports count; TYPE_CHECKING ones do not."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .a import f\n")
    (pkg / "sub" / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n"
        "def f():\n    from ..c import g\n    return g\n"
    )
    (pkg / "sub" / "b.py").write_text("from . import a\nimport pkg.c\n")
    (pkg / "c.py").write_text("from pkg.sub.b import x\n")
    assert import_graph(pkg, type_checking=True)["pkg.sub.a"] == {"pkg.c", "pkg.sub.b"}
    graph = import_graph(pkg)
    assert graph == {
        "pkg": set(),
        "pkg.sub": {"pkg.sub.a"},
        "pkg.sub.a": {"pkg.c"},
        "pkg.sub.b": {"pkg.sub.a", "pkg.c"},
        "pkg.c": {"pkg.sub.b"},
    }
    assert cycles(graph) == [["pkg.c", "pkg.sub.a", "pkg.sub.b"]]
    assert cycles(subgraph(graph, "pkg.sub")) == []
