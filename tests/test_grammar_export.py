"""The exported grammars: Lark parses what the validator accepts, and refuses constructs outside the language."""

import lark
import pytest
from corpus import HOSTILE, VALID_PROGRAMS, chain_program

from pyrag_dsl import DEFAULT_LANGUAGE, validate
from pyrag_dsl.grammar import ir
from pyrag_dsl.grammar.extensions import TEXT_CONCAT

pytestmark = pytest.mark.network_free


@pytest.fixture(scope="module")
def parser():
    return lark.Lark(DEFAULT_LANGUAGE.to_lark(), start="start", parser="earley")


EXTRA_VALID = {
    "no_trailing_newline": 'final_answer = answer("q")',
    "single_quotes_and_escapes": "q = 'It\\'s \"quoted\"\\n'\nfinal_answer = answer(q)\n",
    "fstring_escaped_braces": 'x = "v"\nfinal_answer = f"{{literal}} {x} {\'c\'} {42}"\n',
    "comments_and_blank_lines": '# plan\n\nd = retrieve("q")  # first\n\n\nfinal_answer = answer("q", d)\n',
    "multiline_call_with_comments": 'd = retrieve(\n    "q",  # the query\n    topk=10,\n)\nfinal_answer = answer(\n  "q",\n  d\n)\n',
    "parenthesized_value": 'final_answer = ("a"\n    "b")\n',
    "chain_20": chain_program(20),
}


@pytest.mark.parametrize("name, source", [*VALID_PROGRAMS.items(), *EXTRA_VALID.items()])
def test_valid_programs_parse_with_lark(parser, name, source):
    assert validate(source).ok, name
    parser.parse(source)


GRAMMAR_INVALID = [h for h in HOSTILE if h.grammar_rejects]


@pytest.mark.parametrize("case", GRAMMAR_INVALID, ids=[h.name for h in GRAMMAR_INVALID])
def test_constructs_outside_the_language_do_not_parse(parser, case):
    with pytest.raises(lark.exceptions.LarkError):
        parser.parse(case.source)


def test_grammar_rejects_most_hostile_programs():
    assert len(GRAMMAR_INVALID) >= 50


def test_tool_names_and_keywords_come_from_the_registry():
    text = DEFAULT_LANGUAGE.to_lark()
    assert 'call_retrieve : "retrieve" "("' in text
    assert '("query" | "topk")' in text and '("query" | "docs")' in text
    gbnf = DEFAULT_LANGUAGE.to_gbnf()
    assert gbnf.splitlines()[1] == "root ::= program"
    assert 'call-answer ::= "answer" "("' in gbnf


def test_gbnf_and_lark_have_the_same_rules():
    lark_rules = [line.split(" : ")[0] for line in DEFAULT_LANGUAGE.to_lark().splitlines()[1:]]
    gbnf_rules = [line.split(" ::= ")[0] for line in DEFAULT_LANGUAGE.to_gbnf().splitlines()[1:]]
    assert [r.replace("_", "-") for r in lark_rules][1:] == gbnf_rules[1:]
    assert "_" not in "".join(gbnf_rules)


def test_gbnf_is_well_formed():
    """Every GBNF rule referenced is defined, and literals and classes are closed."""
    text = DEFAULT_LANGUAGE.to_gbnf()
    defined, used = set(), set()
    for line in text.splitlines()[1:]:
        name, _, body = line.partition(" ::= ")
        defined.add(name)
        i = 0
        while i < len(body):
            ch = body[i]
            if ch in '"[':
                close = '"' if ch == '"' else "]"
                j = i + 1
                while body[j] != close:
                    j += 2 if body[j] == "\\" else 1
                i = j + 1
            elif ch.isalpha():
                j = i
                while j < len(body) and (body[j].isalnum() or body[j] == "-"):
                    j += 1
                used.add(body[i:j])
                i = j
            else:
                assert ch in " ()|*+?", f"unexpected {ch!r} in {line}"
                i += 1
    assert used <= defined


def test_extension_alternatives_appear_in_both_grammars():
    lang = DEFAULT_LANGUAGE.with_node(TEXT_CONCAT)
    assert 'expr : primary | primary (sp? "+" sp? primary)+' in lang.to_lark()
    assert 'expr ::= primary | primary (sp? "+" sp? primary)+' in lang.to_gbnf()
    p = lark.Lark(lang.to_lark(), parser="earley")
    p.parse('a = "x" + "y"\nfinal_answer = answer(a +\n  "z")\n')
    with pytest.raises(lark.exceptions.LarkError):
        lark.Lark(DEFAULT_LANGUAGE.to_lark(), parser="earley").parse('final_answer = "x" + "y"\n')


def test_ir_rejects_unknown_flavor():
    with pytest.raises(ValueError):
        ir.render({"a": ir.Lit("x")}, "peg", "a")
