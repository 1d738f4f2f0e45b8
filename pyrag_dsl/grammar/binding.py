"""The one argument binder: which argument node feeds which parameter of a tool call.

Validation reports its problems; the interpreter and the pipeline read the bound arguments of a
validated call from the Program (`Program.arguments`), never binding again.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from .tools import ToolSpec


@dataclass
class Binding:
    args: dict[str, ast.AST] = field(default_factory=dict)  # parameter name -> argument node, as given
    surplus: list[ast.AST] = field(default_factory=list)  # positional arguments past the last parameter
    unknown: list[ast.keyword] = field(default_factory=list)  # keywords the tool does not have
    repeated: list[ast.keyword] = field(default_factory=list)  # keywords for a parameter already given
    unpacked: list[ast.Starred | ast.keyword] = field(default_factory=list)  # *x and **x
    missing: list[str] = field(default_factory=list)  # required parameters not given


def bind(spec: ToolSpec, call: ast.Call) -> Binding:
    b = Binding()
    position = 0
    for arg in call.args:
        if isinstance(arg, ast.Starred):
            b.unpacked.append(arg)
        elif position < len(spec.params):
            b.args[spec.params[position].name] = arg
            position += 1
        else:
            b.surplus.append(arg)
    for kw in call.keywords:
        if kw.arg is None:
            b.unpacked.append(kw)
        elif spec.param(kw.arg) is None:
            b.unknown.append(kw)
        elif kw.arg in b.args:
            b.repeated.append(kw)
        else:
            b.args[kw.arg] = kw.value
    b.missing = [p.name for p in spec.params if p.required and p.name not in b.args]
    return b
