"""Grammars for the agents' replies (used where the server supports constrained decoding)."""

from __future__ import annotations

from ..grammar.ir import Chars, Lit, Node, Ref, between, opt, render, seq

_CHAR = Chars('"\\\n', negate=True)


def decompose_rules(max_items: int = 4, max_chars: int = 150) -> dict[str, Node]:
    """A JSON list of 1..max_items non-empty strings."""
    item = seq(Lit('"'), between(_CHAR, 1, max_chars), Lit('"'))
    more: Node | None = None
    for _ in range(max_items - 1):
        more = opt(seq(Lit(", "), Ref("item"), more) if more is not None else seq(Lit(", "), Ref("item")))
    return {
        "list": seq(Lit("["), Ref("item"), more, Lit("]"))
        if more is not None
        else seq(Lit("["), Ref("item"), Lit("]")),
        "item": item,
    }


def answer_rules(max_chars: int = 80) -> dict[str, Node]:
    """<answer>short text</answer>"""
    return {"reply": seq(Lit("<answer>"), between(Chars("<\n", negate=True), 1, max_chars), Lit("</answer>"))}


def grammars(rules: dict[str, Node], start: str) -> tuple[str, str]:
    """(lark, gbnf) for a rule set."""
    return render(rules, "lark", start), render(rules, "gbnf", start)
