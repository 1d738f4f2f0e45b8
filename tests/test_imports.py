"""The package's imports go one way (issue 21): nothing outside pyrag_dsl/cli/ imports the CLI, and no two
modules import each other, directly or round a circle (pyrag_dsl/interpreter/ inside itself is
test_layers.py's). Every import counts, at module level or inside a function, relative or absolute, except
those under `if TYPE_CHECKING:` (they never run): test_layers.import_graph reads them from the source."""

from __future__ import annotations

import pytest
from test_layers import cycles, import_graph

pytestmark = pytest.mark.network_free

INTERPRETER = "pyrag_dsl.interpreter"


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_nothing_below_the_cli_imports_it():
    up = sorted(
        f"{m} -> {d}"
        for m, deps in import_graph().items()
        if not _in(m, "pyrag_dsl.cli")
        for d in deps
        if _in(d, "pyrag_dsl.cli")
    )
    assert up == []


def test_no_import_circle_outside_the_interpreter():
    """Every module but the interpreter's, with their imports of each other (a circle through the interpreter
    would need an interpreter module that imports a module above it: test_layers.py and the first test)."""
    graph = {
        m: {d for d in deps if not _in(d, INTERPRETER)} for m, deps in import_graph().items() if not _in(m, INTERPRETER)
    }
    assert len(graph) > 100
    assert cycles(graph) == []


def test_a_circle_or_an_arrow_into_the_cli_is_seen(tmp_path):
    """The checks above on a package made to fail them: a function-level import up into cli, and a circle."""
    pkg = tmp_path / "pkg"
    for d in ("cli", "eval"):
        (pkg / d).mkdir(parents=True)
        (pkg / d / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "cli" / "common.py").write_text("X = 1\n")
    (pkg / "eval" / "a.py").write_text("def f():\n    from ..cli.common import X\n    return X\n")
    (pkg / "eval" / "b.py").write_text("from . import a\n")
    (pkg / "eval" / "c.py").write_text(
        "from .b import a\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import f\n"
    )
    graph = import_graph(pkg)
    assert graph["pkg.eval.a"] == {"pkg.cli.common"}
    assert cycles(graph) == []
    (pkg / "eval" / "a.py").write_text("def f():\n    from .c import g\n")
    assert cycles(import_graph(pkg)) == [["pkg.eval.a", "pkg.eval.b", "pkg.eval.c"]]
