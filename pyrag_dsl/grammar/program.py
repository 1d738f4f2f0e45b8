"""A validated, resolved program: statements with explicit dependency edges, and the queries over them.

Resolution binds every name a statement reads to the statement that defined it at that point, so
a later reassignment of the name can never change what an earlier reader sees. The interpreter
stores one value per statement and looks values up through these bindings, never by name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping, TypeAlias, cast

import orjson

from .errors import Span
from .language import FINAL_ANSWER, Language
from .limits import Limits
from .source import SourceMap
from .tools import Param, RunDefault, ToolSpec, ValueType


def tool_name(call: ast.Call) -> str:
    """The tool a validated call names: validation admits only calls of the form `name(...)`."""
    return cast(ast.Name, call.func).id


@dataclass(frozen=True)
class Statement:
    """One `name = expr` statement; `binds` maps each name it reads to the defining statement's index."""

    index: int
    node: ast.Assign
    target: str
    type: ValueType
    span: Span
    source: str
    reads: tuple[str, ...]
    binds: Mapping[str, int] = field(hash=False, compare=False)
    calls: int = 0

    def place(self) -> dict[str, Any]:
        """Where the statement stands, as trace events give it."""
        span = self.span
        return {
            "statement": self.index,
            "line": span.line,
            "col": span.col,
            "end_line": span.end_line,
            "end_col": span.end_col,
            "source": self.source,
        }

    @property
    def deps(self) -> tuple[int, ...]:
        """Indexes of the statements whose values this one reads."""
        return tuple(sorted(set(self.binds.values())))


@dataclass(frozen=True)
class Program:
    """A validated program: the very tree that was checked, resolved, ready for the interpreter."""

    source: str
    tree: ast.Module
    statements: tuple[Statement, ...]
    language: Language
    limits: Limits
    smap: SourceMap = field(repr=False, compare=False)
    tools_used: frozenset[str] = frozenset()
    bound: Mapping[int, Mapping[str, ast.AST]] = field(default_factory=dict, repr=False, compare=False)
    # Every tool call node's CallPlan, built here, once, with the program (read-only); derived from the fields
    # above, so not part of the program's value and never an argument.
    plans: Mapping[ast.Call, "CallPlan"] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        plans = {
            node: CallPlan(self.language.tools[tool_name(node)], self.bound[id(node)], stmt, node)
            for stmt in self.statements
            for node in ast.walk(stmt.node.value)
            if type(node) is ast.Call and id(node) in self.bound
        }
        object.__setattr__(self, "plans", MappingProxyType(plans))

    @property
    def call_count(self) -> int:
        return sum(s.calls for s in self.statements)

    # -- the dependency graph ------------------------------------------------------------------
    def dependents(self, index: int) -> list[int]:
        """Indexes of the statements that depend, directly or not, on statement `index`."""
        out: set[int] = {index}
        for s in self.statements[index + 1 :]:
            if out.intersection(s.binds.values()):
                out.add(s.index)
        out.discard(index)
        return sorted(out)

    def ancestors(self, index: int) -> list[int]:
        """Indexes of the statements that statement `index` depends on, directly or not."""
        seen: set[int] = set()
        todo = list(self.statements[index].deps)
        while todo:
            i = todo.pop()
            if i not in seen:
                seen.add(i)
                todo.extend(self.statements[i].deps)
        return sorted(seen)

    def last_definitions(self, indexes: Iterable[int] | None = None) -> dict[str, int]:
        """Each name's last defining statement (among `indexes`, default all): what a name means at the end."""
        out: dict[str, int] = {}
        for s in self.statements if indexes is None else (self.statements[i] for i in sorted(indexes)):
            out[s.target] = s.index
        return out

    @property
    def final_statement(self) -> Statement | None:
        idx = self.last_definitions().get(FINAL_ANSWER)
        return None if idx is None else self.statements[idx]

    # -- calls and their arguments ---------------------------------------------------------------
    def arguments(self, call: ast.Call) -> Mapping[str, ast.AST]:
        """The argument nodes of a validated call by parameter name (defaults not included)."""
        return self.bound[id(call)]

    def argument(self, call: ast.Call, name: str) -> ast.AST | None:
        return self.bound[id(call)].get(name)

    def tool_kind(self, node: ast.AST) -> str | None:
        """The event kind of a tool call node ("retrieve", "answer", "call"), or None for other nodes."""
        if isinstance(node, ast.Call) and id(node) in self.bound:
            return self.language.tools[tool_name(node)].event_kind
        return None

    def calls(self, stmt: Statement, kind: str | None = None) -> list[ast.Call]:
        """The tool calls of a statement (of one event kind when given), in source order."""
        return [
            n
            for n in ast.walk(stmt.node.value)
            if isinstance(n, ast.Call) and self.tool_kind(n) and (kind is None or self.tool_kind(n) == kind)
        ]

    def answer_call(self, stmt: Statement) -> ast.Call | None:
        """The statement's value when it is an answer-kind call."""
        node = stmt.node.value
        return node if isinstance(node, ast.Call) and self.tool_kind(node) == "answer" else None

    def feeding_retrieves(self, stmt: Statement) -> list[tuple[int, ast.Call]]:
        """The retrieve calls whose docs reach this answer statement: those of its docs argument (through
        aliases such as `d2 = d1`); for an answer without docs (a synthesis), every retrieve upstream."""
        call = self.answer_call(stmt)
        if call is None:
            return []
        node, where = self.argument(call, "docs"), stmt
        while isinstance(node, ast.Name):
            where = self.statements[where.binds[node.id]]
            node = where.node.value
        if node is not None:
            return [(where.index, node)] if isinstance(node, ast.Call) and self.tool_kind(node) == "retrieve" else []
        return [(i, n) for i in self.ancestors(stmt.index) for n in self.calls(self.statements[i], "retrieve")]


# How a CallPlan parameter gets its value.
ARG_CONST, ARG_BOUND, ARG_EVAL, ARG_SETTING = range(4)

# One parameter of a CallPlan: (name, how, what, bounded, at); see CallPlan.
ParamPlan: TypeAlias = tuple[str, int, Any, Param | None, ast.AST]


class CallPlan:
    """How one validated tool call gets its arguments, computed once per call node with the program.

    `params` holds one (name, how, what, bounded, at) per parameter of the tool, in signature order: `how` is
    ARG_CONST (`what` is the value), ARG_BOUND (`what` is the index of the statement whose value it is),
    ARG_EVAL (`what` is the expression to evaluate) or ARG_SETTING (`what` is the RunDefault to read from the
    run's settings); `bounded` is the Param when it has a range, else None; `at` is the node an error points
    at. `target` is the statement's name when the call is the statement's whole value, else None.

    For the call's trace event: `kind` is the tool's event kind; `where` the statement's place under the
    names events give it (statement, line, col, end_line, end_col, source; shared: do not modify);
    `source_size` the UTF-8 size of the source's JSON string (validated text holds no lone surrogate).
    """

    __slots__ = ("spec", "params", "statement", "target", "kind", "where", "source_size")

    spec: ToolSpec
    params: tuple[ParamPlan, ...]
    statement: Statement
    target: str | None
    kind: str
    where: dict[str, Any]
    source_size: int

    def __init__(self, spec: ToolSpec, given: Mapping[str, ast.AST], stmt: Statement, node: ast.Call) -> None:
        params: list[ParamPlan] = []
        for p in spec.params:
            bounded = p if (p.min is not None or p.max is not None) else None
            if p.name in given:
                a = given[p.name]
                if type(a) is ast.Constant:
                    params.append((p.name, ARG_CONST, a.value, bounded, a))
                elif type(a) is ast.Name:
                    params.append((p.name, ARG_BOUND, stmt.binds[a.id], bounded, a))
                else:
                    params.append((p.name, ARG_EVAL, a, bounded, a))
            elif isinstance(p.default, RunDefault):
                params.append((p.name, ARG_SETTING, p.default, bounded, node))
            else:
                params.append((p.name, ARG_CONST, p.default, bounded, node))
        setattr_ = object.__setattr__
        setattr_(self, "spec", spec)
        setattr_(self, "params", tuple(params))
        setattr_(self, "statement", stmt)
        setattr_(self, "target", stmt.target if node is stmt.node.value else None)
        setattr_(self, "kind", spec.event_kind)
        setattr_(self, "where", stmt.place())
        setattr_(self, "source_size", len(orjson.dumps(stmt.source)))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a CallPlan is read-only")


def freeze(bound: dict[int, dict[str, ast.AST]]) -> Mapping[int, Mapping[str, ast.AST]]:
    return MappingProxyType({k: MappingProxyType(v) for k, v in bound.items()})
