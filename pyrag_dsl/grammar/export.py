"""The language as a grammar for constrained decoding: Lark/EBNF (vLLM, xgrammar) and GBNF (llama.cpp).

The exported grammar describes the canonical form of programs (plain or f-strings in single or
double quotes, decimal ints, parentheses spanning lines, comments); the validator stays the judge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .ir import Chars, Lit, Node, Ref, alt, opt, plus, render, seq, star
from .source import FORBIDDEN_CHARS
from .tools import ToolSpec

if TYPE_CHECKING:  # annotations only: Language.to_lark / to_gbnf import this module
    from .language import Language

_NEVER = "\n" + "".join(FORBIDDEN_CHARS)  # no class may produce a newline where it ends a line, NUL or bidi controls
_HSPACE = Chars(" \t")
_ESCAPE = seq(Lit("\\"), Chars(_NEVER, negate=True))


def _string(quote: str, prefix: Node | None) -> Node:
    body = star(alt(Chars(quote + "\\" + _NEVER, negate=True), _ESCAPE))
    parts: list[Node] = [Lit(quote), body, Lit(quote)]
    return seq(prefix, *parts) if prefix is not None else seq(*parts)


def _fstring(quote: str, other: str) -> Node:
    field = seq(Lit("{"), opt(Ref("sp")), alt(Ref("name"), Ref("int"), Ref(f"str_{other}")), opt(Ref("sp")), Lit("}"))
    body = star(alt(Chars(quote + "\\{}" + _NEVER, negate=True), _ESCAPE, Lit("{{"), Lit("}}"), field))
    return seq(Chars("fF"), Lit(quote), body, Lit(quote))


def _call(spec: ToolSpec) -> Node:
    kw = alt(*(Lit(p.name) for p in spec.params)) if spec.params else None
    arg = alt(Ref("pexpr"), seq(kw, opt(Ref("ws")), Lit("="), opt(Ref("ws")), Ref("pexpr"))) if kw else Ref("pexpr")
    args = seq(arg, star(seq(opt(Ref("ws")), Lit(","), opt(Ref("ws")), arg)), opt(seq(opt(Ref("ws")), Lit(","))))
    return seq(Lit(spec.name), Lit("("), opt(Ref("ws")), opt(seq(args, opt(Ref("ws")))), Lit(")"))


def grammar_rules(language: Language) -> dict[str, Node]:
    rules: dict[str, Node] = {
        "program": seq(star(Ref("line")), opt(Ref("last_line"))),
        "line": seq(opt(Ref("sp")), opt(seq(Ref("stmt"), opt(Ref("sp")))), opt(Ref("comment")), Lit("\n")),
        "last_line": seq(opt(Ref("sp")), Ref("stmt"), opt(Ref("sp")), opt(Ref("comment"))),
        "stmt": alt(seq(Ref("name"), opt(Ref("sp")), Lit("="), opt(Ref("sp")), Ref("expr")), Ref("plain_str")),
        "sp": plus(_HSPACE),
        "ws": plus(alt(Chars(" \t\n"), seq(Ref("comment"), Lit("\n")))),
        "comment": seq(Lit("#"), star(Chars(_NEVER, negate=True))),
        "name": seq(
            Chars(ranges=(("A", "Z"), ("a", "z"))), star(Chars("_", ranges=(("A", "Z"), ("a", "z"), ("0", "9"))))
        ),
        "int": alt(Lit("0"), seq(Chars(ranges=(("1", "9"),)), star(Chars(ranges=(("0", "9"),))))),
        "str_dq": _string('"', opt(Chars("uU"))),
        "str_sq": _string("'", opt(Chars("uU"))),
        "plain_str": alt(Ref("str_dq"), Ref("str_sq")),
        "fstr_dq": _fstring('"', "sq"),
        "fstr_sq": _fstring("'", "dq"),
        "one_str": alt(Ref("plain_str"), Ref("fstr_dq"), Ref("fstr_sq")),
        # adjacent strings concatenate: on one line at statement level, across lines inside parentheses
        "strings": seq(Ref("one_str"), star(seq(opt(Ref("sp")), Ref("one_str")))),
        "pstrings": seq(Ref("one_str"), star(seq(opt(Ref("ws")), Ref("one_str")))),
        "call": alt(*(Ref(f"call_{name}") for name in language.tools)),
        "paren": seq(Lit("("), opt(Ref("ws")), Ref("pexpr"), opt(Ref("ws")), Lit(")")),
        "primary": alt(Ref("strings"), Ref("int"), Ref("call"), Ref("name"), Ref("paren")),
        "pprimary": alt(Ref("pstrings"), Ref("int"), Ref("call"), Ref("name"), Ref("paren")),
    }
    for spec in language.tools.values():
        rules[f"call_{spec.name}"] = _call(spec)
    extra = list(language.nodes.values())
    rules["expr"] = alt(Ref("primary"), *(k.grammar(Ref("primary"), opt(Ref("sp"))) for k in extra))
    rules["pexpr"] = alt(Ref("pprimary"), *(k.grammar(Ref("pprimary"), opt(Ref("ws"))) for k in extra))
    return rules


def to_lark(language: Language) -> str:
    header = "// pyrag-dsl program grammar (Lark/EBNF). Whitespace is explicit; parse with parser='earley'.\n"
    return header + render(grammar_rules(language), "lark", "program")


def to_gbnf(language: Language) -> str:
    header = "# pyrag-dsl program grammar (GBNF for llama.cpp)\n"
    return header + render(grammar_rules(language), "gbnf", "program")
