"""Optional node kinds a language can enable with `Language.with_node(...)`.

`TEXT_CONCAT` is the worked example of the extension API: `+` between two texts.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from . import ir
from .errors import TypeMismatch
from .language import ExprInfo
from .tools import ValueType


@dataclass(frozen=True)
class TextConcat:
    name: str = "text_concat"
    ast_type: type[ast.AST] = ast.BinOp
    description: str = "a + b joins two texts"

    def check(self, node: ast.BinOp, checker: Any) -> ExprInfo | None:
        if not isinstance(node.op, ast.Add):
            return None  # other operators stay disallowed
        left, right = checker.sub(node.left), checker.sub(node.right)
        bad = False
        for side, info in ((node.left, left), (node.right, right)):
            if info.type is not None and info.type is not ValueType.TEXT:
                checker.error(
                    TypeMismatch,
                    f"'+' joins texts only, got {info.type.value}",
                    side,
                    expected="text",
                    got=info.type.value,
                )
                bad = True
        if bad or left.type is None or right.type is None:
            return ExprInfo(None)
        total = left.min_len + right.min_len
        return ExprInfo(ValueType.TEXT, total) if checker.check_length(total, node) else ExprInfo(None)

    def evaluate(self, node: ast.BinOp, evaluator: Any) -> str:
        left: str = evaluator.eval(node.left)  # validated: both operands are text
        right: str = evaluator.eval(node.right)
        evaluator.check_length(len(left) + len(right), node)
        return left + right

    def grammar(self, operand: ir.Node, space: ir.Node) -> ir.Node:
        return ir.seq(operand, ir.plus(ir.seq(space, ir.Lit("+"), space, operand)))


TEXT_CONCAT = TextConcat()
