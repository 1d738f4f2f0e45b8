"""The extension API: one registration drives validator, interpreter, grammars and the Plan LLM's tool list."""

import lark
import pytest

from pyrag_dsl import DEFAULT_LANGUAGE, Param, ToolSpec, ValueType, execute, parse_program, validate
from pyrag_dsl.grammar.extensions import TEXT_CONCAT

pytestmark = pytest.mark.network_free

YEAR_OF = ToolSpec(
    name="year_of",
    params=(Param("date", ValueType.TEXT),),
    returns=ValueType.INT,
    doc="Extract the year from a date written in words.",
)
LANG = DEFAULT_LANGUAGE.with_tool(YEAR_OF).with_node(TEXT_CONCAT)

PROGRAM = """born = answer("When was Jed Hoyer born?")
year = year_of(born)
final_answer = answer("He was born in " + f"{year}.")
"""


def test_registered_tool_validates_and_runs():
    calls = []
    tools = {
        "answer": lambda query, docs: calls.append(query) or "December 7, 1973",
        "year_of": lambda date: int(date[-4:]),
    }
    result = execute(parse_program(PROGRAM, LANG), tools)
    assert result.ok
    assert result.variables["year"] == 1973
    assert calls[-1] == "He was born in 1973."
    assert [e.kind for e in result.trace] == ["answer", "call", "answer"]
    assert result.trace[1].tool == "year_of" and result.trace[1].output == 1973


def test_default_language_rejects_the_extension():
    kinds = [e.kind for e in validate(PROGRAM).errors]
    assert kinds == ["UnknownTool", "DisallowedConstruct"]


def test_registered_tool_is_type_checked():
    errors = validate('d = retrieve("q")\ny = year_of(d)\nfinal_answer = answer(f"{y}")\n', LANG).errors
    assert [e.kind for e in errors] == ["TypeMismatch"]
    errors = validate('y = year_of(date="x", month="y")\nfinal_answer = "z"\n', LANG).errors
    assert [e.kind for e in errors] == ["UnknownKeyword"]


def test_registered_tool_appears_in_grammars_and_tool_list():
    assert "year_of(date: text) -> int: Extract the year" in LANG.describe_tools()
    assert "retrieve(query: text, topk: int = 5) -> docs" in LANG.describe_tools()
    assert 'call_year_of : "year_of" "("' in LANG.to_lark()
    assert 'call-year-of ::= "year_of" "("' in LANG.to_gbnf()
    lark.Lark(LANG.to_lark(), parser="earley").parse(PROGRAM)


def test_bad_registrations_are_refused():
    import pytest

    with pytest.raises(ValueError):
        ToolSpec(name="__class__", params=(), returns=ValueType.TEXT, doc="x")
    with pytest.raises(ValueError):
        ToolSpec(
            name="t",
            params=(Param("a", ValueType.TEXT, "d"), Param("b", ValueType.TEXT)),
            returns=ValueType.TEXT,
            doc="x",
        )
    with pytest.raises(ValueError):
        DEFAULT_LANGUAGE.with_tool(YEAR_OF).with_tool(YEAR_OF)
    with pytest.raises(ValueError):
        DEFAULT_LANGUAGE.with_tool(ToolSpec(name="final_answer", params=(), returns=ValueType.TEXT, doc="x"))


def test_text_concat_length_is_checked_statically():
    from pyrag_dsl import Limits

    src = 'a = "0123456789"\nfinal_answer = a + a + a\n'
    assert validate(src, LANG, Limits(max_string_length=30)).ok
    assert [e.kind for e in validate(src, LANG, Limits(max_string_length=29)).errors] == ["LimitExceeded"]


def test_other_operators_stay_closed_with_concat_enabled():
    for op in "-*/%":
        assert [e.kind for e in validate(f'final_answer = "a" {op} "b"\n', LANG).errors] == ["DisallowedConstruct"]
