"""A validated, resolved program: statements with explicit dependency edges, and the queries over them.

Resolution binds every name a statement reads to the statement that defined it at that point, so
a later reassignment of the name can never change what an earlier reader sees. The interpreter
stores one value per statement and looks values up through these bindings, never by name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from .errors import Span
from .language import FINAL_ANSWER, Language
from .limits import Limits
from .tools import ValueType


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
    smap: object = field(repr=False, compare=False)  # SourceMap
    tools_used: frozenset[str] = frozenset()
    bound: Mapping[int, Mapping[str, ast.AST]] = field(default_factory=dict, repr=False, compare=False)
    # The interpreter's precomputed per-call-node data (walker.CallPlan), keyed by node, filled lazily; not part
    # of the program's value and never an argument.
    plans: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def call_count(self) -> int:
        return sum(s.calls for s in self.statements)

    # -- the dependency graph ------------------------------------------------------------------
    def dependents(self, index: int) -> list[int]:
        """Indexes of the statements that depend, directly or not, on statement `index`."""
        out: set[int] = {index}
        for s in self.statements[index + 1:]:
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

    def last_definitions(self, indexes=None) -> dict[str, int]:
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
            return self.language.tools[node.func.id].event_kind
        return None

    def calls(self, stmt: Statement, kind: str | None = None) -> list[ast.Call]:
        """The tool calls of a statement (of one event kind when given), in source order."""
        return [n for n in ast.walk(stmt.node.value) if self.tool_kind(n) and (kind is None or self.tool_kind(n) == kind)]

    def answer_call(self, stmt: Statement) -> ast.Call | None:
        """The statement's value when it is an answer-kind call."""
        node = stmt.node.value
        return node if self.tool_kind(node) == "answer" else None

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
            return [(where.index, node)] if self.tool_kind(node) == "retrieve" else []
        return [(i, n) for i in self.ancestors(stmt.index) for n in self.calls(self.statements[i], "retrieve")]


def freeze(bound: dict[int, dict[str, ast.AST]]) -> Mapping[int, Mapping[str, ast.AST]]:
    return MappingProxyType({k: MappingProxyType(v) for k, v in bound.items()})
