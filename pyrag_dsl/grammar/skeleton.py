"""A stricter grammar for generating plans with small models: the canonical program shape.

    docs1 = retrieve("...")
    ans1 = answer("...", docs1)
    docs2 = retrieve(f"... {ans1} ...")
    ans2 = answer(f"... {ans1} ...", docs2)

Every name is defined before use, so whatever a model writes under this grammar validates once the
caller adds its final line. It is a subset of the language: the validator stays the judge.

`steps_rules(n)` is the small-model plan grammar: exactly n retrieve/answer steps, where a later step's
strings may name earlier answers (bridges: `docs2 = retrieve(f"... {ans1}")`), and no final line: the
caller builds `final_answer` from the steps, so that it carries every answer and no planner-written fact.
"""

from __future__ import annotations

from .ir import Chars, Lit, Node, Ref, alt, between, render, seq
from .source import FORBIDDEN_CHARS

_TEXT = Chars('"\\{}\n' + "".join(FORBIDDEN_CHARS), negate=True)


def _string(fields: list[str], max_chars: int) -> Node:
    plain = seq(Lit('"'), between(_TEXT, 1, max_chars), Lit('"'))
    if not fields:
        return plain
    field = seq(Lit("{"), alt(*(Lit(f) for f in fields)), Lit("}"))
    chunk = alt(_TEXT, field)
    return alt(plain, seq(Lit('f"'), between(chunk, 1, max_chars), Lit('"')))


def _step(k: int) -> Node:
    return seq(
        Lit(f"docs{k} = retrieve("),
        Ref(f"q{k}"),
        Lit(")\n"),
        Lit(f"ans{k} = answer("),
        Ref(f"q{k}"),
        Lit(f", docs{k})\n"),
    )


def steps_rules(n: int, max_chars: int = 160) -> dict[str, Node]:
    """Exactly n steps `docsk = retrieve(q)` / `ansk = answer(q, docsk)`; q may be an f-string over ans1..ans(k-1)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    rules: dict[str, Node] = {}
    for k in range(1, n + 1):
        rules[f"q{k}"] = _string([f"ans{i}" for i in range(1, k)], max_chars)
        rules[f"step{k}"] = _step(k)
    return {"program": seq(*(Ref(f"step{k}") for k in range(1, n + 1))), **rules}


def steps_lark(n: int) -> str:
    return render(steps_rules(n), "lark", "program")


def steps_gbnf(n: int) -> str:
    return render(steps_rules(n), "gbnf", "program")
