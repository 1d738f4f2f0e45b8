"""A stricter grammar for generating plans with small models: the canonical program shape.

    docs1 = retrieve("...")
    ans1 = answer("...", docs1)
    docs2 = retrieve(f"... {ans1} ...")
    ans2 = answer(f"... {ans1} ...", docs2)
    final_answer = answer(f"Given: ... {ans1} ... {ans2}. Answer the question: ...")

Every name is defined before use and the program ends with `final_answer`, so whatever a model
writes under this grammar validates. It is a subset of the language: the validator stays the judge.

`steps_rules(n)` is the small-model plan grammar: exactly n retrieve/answer steps, where a later step's
strings may name earlier answers (bridges: `docs2 = retrieve(f"... {ans1}")`), and no final line: the
caller builds `final_answer` from the steps, so that it carries every answer and no planner-written fact.
"""

from __future__ import annotations

from .ir import Chars, Lit, Node, Ref, alt, between, opt, render, seq
from .source import FORBIDDEN_CHARS

_TEXT = Chars('"\\{}\n' + "".join(FORBIDDEN_CHARS), negate=True)


def _string(fields: list[str], max_chars: int) -> Node:
    plain = seq(Lit('"'), between(_TEXT, 1, max_chars), Lit('"'))
    if not fields:
        return plain
    field = seq(Lit("{"), alt(*(Lit(f) for f in fields)), Lit("}"))
    chunk = alt(_TEXT, field)
    return alt(plain, seq(Lit('f"'), between(chunk, 1, max_chars), Lit('"')))


def skeleton_rules(max_steps: int, max_chars: int = 160) -> dict[str, Node]:
    if max_steps < 1:
        raise ValueError("max_steps must be at least 1")
    rules: dict[str, Node] = {}
    for k in range(1, max_steps + 1):
        before = [f"ans{i}" for i in range(1, k)]
        rules[f"q{k}"] = _string(before, max_chars)
        rules[f"step{k}"] = seq(Lit(f"docs{k} = retrieve("), Ref(f"q{k}"), Lit(")\n"),
                                Lit(f"ans{k} = answer("), Ref(f"q{k}"), Lit(f", docs{k})\n"))
        final_field = seq(Lit("{"), alt(*(Lit(f"ans{i}") for i in range(1, k + 1))), Lit("}"))
        rules[f"final{k}"] = seq(Lit('final_answer = answer(f"'), between(alt(_TEXT, final_field), 1, max_chars * 2),
                                 Lit('")'), opt(Lit("\n")))
    # program: step1 (final1 | step2 (final2 | ...))
    tail: Node = seq(Ref(f"step{max_steps}"), Ref(f"final{max_steps}"))
    for k in range(max_steps - 1, 0, -1):
        tail = seq(Ref(f"step{k}"), alt(Ref(f"final{k}"), tail))
    return {"program": tail, **rules}


def skeleton_lark(max_steps: int) -> str:
    return render(skeleton_rules(max_steps), "lark", "program")


def skeleton_gbnf(max_steps: int) -> str:
    return render(skeleton_rules(max_steps), "gbnf", "program")


def _step(k: int, max_chars: int) -> Node:
    return seq(Lit(f"docs{k} = retrieve("), Ref(f"q{k}"), Lit(")\n"),
               Lit(f"ans{k} = answer("), Ref(f"q{k}"), Lit(f", docs{k})\n"))


def steps_rules(n: int, max_chars: int = 160) -> dict[str, Node]:
    """Exactly n steps `docsk = retrieve(q)` / `ansk = answer(q, docsk)`; q may be an f-string over ans1..ans(k-1)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    rules: dict[str, Node] = {}
    for k in range(1, n + 1):
        rules[f"q{k}"] = _string([f"ans{i}" for i in range(1, k)], max_chars)
        rules[f"step{k}"] = _step(k, max_chars)
    return {"program": seq(*(Ref(f"step{k}") for k in range(1, n + 1))), **rules}


def steps_lark(n: int) -> str:
    return render(steps_rules(n), "lark", "program")


def steps_gbnf(n: int) -> str:
    return render(steps_rules(n), "gbnf", "program")
