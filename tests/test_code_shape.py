"""Functions stay short (issue 21): none over 60 lines (its `def` to its last line, nested functions
included) in the package, the benchmarks or the tests, except argparse tables: functions whose statements are
mostly `add_argument`/`add_parser`/`set_defaults`/`add_*` calls, recognised by that shape, not by name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.network_free

TREES = ("pyrag_dsl", "benchmarks", "tests")
MAX_LINES = 60
TABLE_SHARE = 0.7  # at least this share of an argparse table's statements declare parsers or flags


def _declares(stmt: ast.stmt) -> bool:
    """`x.add_argument(...)`, `p = sub.add_parser(...)`, `p.set_defaults(...)`, `add_llm_flags(p)` and the like."""
    value = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign)) else None
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name.startswith("add_") or name == "set_defaults"


def is_argparse_table(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    statements = [s for s in ast.walk(func) if isinstance(s, ast.stmt) and s is not func]
    return bool(statements) and sum(map(_declares, statements)) >= TABLE_SHARE * len(statements)


def long_functions(source: str) -> list[tuple[str, int]]:
    """(name, lines) of each function over MAX_LINES lines that is not an argparse table."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_LINES and not is_argparse_table(node):
                out.append((node.name, lines))
    return out


def test_no_function_over_sixty_lines_outside_argparse_tables():
    files = [p for tree in TREES for p in sorted((CHECKOUT / tree).rglob("*.py"))]
    assert len(files) > 150
    found = [
        f"{path.relative_to(CHECKOUT)}::{name} ({lines} lines)"
        for path in files
        for name, lines in long_functions(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_a_long_function_is_seen_and_a_long_argparse_table_is_not():
    body = "".join(f"    x{i} = {i}\n" for i in range(61))
    assert long_functions(f"def long():\n{body}") == [("long", 62)]
    assert long_functions(f"def short():\n{body[: body.index('    x59')]}") == []
    table = "".join(f"    p.add_argument('--f{i}')\n" for i in range(70))
    assert long_functions(f"def add_flags(p):\n{table}") == []
    # a table's shape, not its name: mostly other statements is a long function, whatever it is called
    mixed = table[: table.index("    p.add_argument('--f20')")] + body
    assert long_functions(f"def add_flags(p):\n{mixed}") == [("add_flags", 82)]
