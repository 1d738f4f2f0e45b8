"""A language: the registered tools plus the enabled extra node kinds. One registration drives
the validator, the interpreter, the exported grammars and the tool list shown to the Plan LLM."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Protocol

from .tools import ANSWER, RETRIEVE, ToolSpec, ValueType

if TYPE_CHECKING:
    from . import ir

FINAL_ANSWER = "final_answer"


@dataclass(frozen=True)
class ExprInfo:
    """What the validator knows of an expression: its type (None after an error) and a lower bound on its length."""

    type: ValueType | None
    min_len: int = 0


class NodeKind(Protocol):
    """An extra expression form. `check` returns None when the node is not of this form. Its `name`,
    `ast_type` and `description` are only read (a frozen dataclass has them)."""

    @property
    def name(self) -> str: ...

    @property
    def ast_type(self) -> type[ast.AST]: ...

    @property
    def description(self) -> str: ...

    def check(self, node: Any, checker: Any) -> ExprInfo | None: ...

    def evaluate(self, node: Any, evaluator: Any) -> Any: ...

    def grammar(self, operand: "ir.Node", space: "ir.Node") -> "ir.Node": ...


class Language:
    """Immutable: `with_tool` and `with_node` return a new language."""

    def __init__(self, tools: Iterable[ToolSpec] = (RETRIEVE, ANSWER), nodes: Iterable[NodeKind] = ()) -> None:
        self.tools: dict[str, ToolSpec] = {}
        for spec in tools:
            if spec.name in self.tools:
                raise ValueError(f"tool {spec.name!r} registered twice")
            if spec.name == FINAL_ANSWER:
                raise ValueError(f"{FINAL_ANSWER!r} cannot be a tool")
            self.tools[spec.name] = spec
        self.nodes: dict[type[ast.AST], NodeKind] = {}
        for kind in nodes:
            if kind.ast_type in self.nodes:
                raise ValueError(f"two node kinds claim {kind.ast_type.__name__}")
            self.nodes[kind.ast_type] = kind

    def with_tool(self, spec: ToolSpec) -> "Language":
        return Language([*self.tools.values(), spec], self.nodes.values())

    def with_node(self, kind: NodeKind) -> "Language":
        return Language(self.tools.values(), [*self.nodes.values(), kind])

    def describe_tools(self) -> str:
        """The tool list for the Plan LLM's prompt: one signature and doc line per tool."""
        return "\n".join(f"- {t.signature()}: {t.doc}" for t in self.tools.values())

    def describe_nodes(self) -> str:
        return "\n".join(f"- {k.name}: {k.description}" for k in self.nodes.values())

    def to_lark(self) -> str:
        from .export import to_lark

        return to_lark(self)

    def to_gbnf(self) -> str:
        from .export import to_gbnf

        return to_gbnf(self)


DEFAULT_LANGUAGE = Language()
