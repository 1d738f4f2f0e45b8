"""Source text: line boundaries as Python's tokenizer counts them, control characters, f-string fields,
every error reported, and a language that is the same on every supported Python."""

import pytest
from conftest import RecordingTools

from pyrag_dsl import Limits, execute, parse_program, validate
from pyrag_dsl.grammar import DisallowedCharacter, LimitExceeded
from pyrag_dsl.grammar.fstrings import check_fstring_source
from pyrag_dsl.interpreter import dumps_jsonl, loads_jsonl

pytestmark = pytest.mark.network_free

# -- line table -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sep", ["\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_a_splitlines_character_in_a_comment_cannot_hide_a_non_ascii_identifier(sep):
    src = f'# note{sep}final_answer = "decoy"\n\uff46inal_answer = "x"\n'
    kinds = [e.kind for e in validate(src).errors]
    assert "DisallowedCharacter" in kinds


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_form_feed_and_newline_styles_keep_spans_and_trace_lines(newline):
    src = newline.join(
        ["# a comment\x0c still the comment", 'docs = retrieve("q")', 'final_answer = answer("a", docs)', ""]
    )
    prog = parse_program(src)
    assert [s.span.line for s in prog.statements] == [2, 3]
    result = execute(prog, RecordingTools().as_dict())
    assert [(e.line, e.source) for e in result.trace] == [
        (2, 'docs = retrieve("q")'),
        (3, 'final_answer = answer("a", docs)'),
    ]


def test_error_points_at_the_right_line_after_a_form_feed():
    err = validate('x = "a"\x0c\nfinal_answer = answr(x)\n').errors[0]
    assert err.kind == "UnknownTool" and err.span.line == 2
    assert err.source_line == "final_answer = answr(x)"


def test_keyword_argument_continued_on_the_next_line_is_valid_and_in_the_grammar():
    src = 'final_answer = answer(query=f"Who is"\n    " older?")\n'
    assert validate(src).errors == []
    from lark import Lark

    from pyrag_dsl import DEFAULT_LANGUAGE

    Lark(DEFAULT_LANGUAGE.to_lark(), parser="earley").parse(src)


# -- control and invisible characters -------------------------------------------------------------------


@pytest.mark.parametrize(
    "escape", ["\\ud800", "\\x00", "\\u202e", "\\u200b", "\\U000e0041", "\\x1b", "\\x0c", "\\ufeff"]
)
def test_escaped_control_characters_in_literals_are_rejected(escape):
    for src in (f'final_answer = answer("a{escape}b")\n', f'x = "q"\nfinal_answer = answer(f"{{x}}{escape}")\n'):
        tools = RecordingTools()
        errors = validate(src).errors
        assert [type(e) for e in errors] == [DisallowedCharacter], src
        assert "U+" in errors[0].message
        assert tools.calls == []


def test_tab_and_newline_escapes_are_fine():
    assert validate('final_answer = answer("a\\tb\\nc")\n').ok


def test_raw_invisible_characters_in_source_are_rejected():
    errors = validate('final_answer = answer("a\u200bb")\n').errors
    assert [e.kind for e in errors] == ["DisallowedCharacter"]
    assert "ZERO WIDTH SPACE" in errors[0].message


def test_a_tool_returning_a_lone_surrogate_cannot_break_the_trace():
    prog = parse_program('final_answer = answer("q")\n')
    result = execute(prog, {"answer": lambda query, docs: "bad \ud800 text"})
    assert result.ok and result.final_answer == "bad \ufffd text"
    text = dumps_jsonl(result.trace)
    assert loads_jsonl(text)[1] == result.trace


def test_trace_writing_is_total_for_pipeline_events_too():
    from pyrag_dsl.interpreter.trace import OtherEvent
    from pyrag_dsl.pipeline.events import DecomposeEvent

    odd = OtherEvent(kind="a_kind_no_layer_defines", step=1, start=0.0, end=0.0, raw=["\udc80 junk"])
    llm_text = DecomposeEvent(
        step=2,
        start=0.0,
        end=0.0,
        question="q\ud800",
        sub_queries=["\udfff"],
        fallback=False,
        attempts=1,
        raw=["\udc80 raw reply"],
    )
    header, events = loads_jsonl(dumps_jsonl([odd, llm_text]))
    assert [e.kind for e in events] == ["a_kind_no_layer_defines", "decompose"]
    assert isinstance(events[0], OtherEvent) and events[1].sub_queries == ["\udfff"]


# -- f-string fields: the language is the same on every Python -------------------------------------------


@pytest.mark.parametrize(
    "text,ok",
    [
        ('f"a {x} b"', True),
        ('f"{ x }"', True),
        ("f\"{'k'}\"", True),
        ('f"{12}"', True),
        ('f"{{x}}"', True),
        ('"a" f"{x}"  # c\n f\'{y}\'', True),
        ('rf"\\{x}"', True),
        ('f"\\N{EM DASH} {x}"', True),
        ('f"{"k"}"', False),  # the enclosing quote inside a field: Python 3.12+ only
        ('f"{x # c\n}"', False),  # a comment inside a field: 3.12+ only
        ("f\"{'a\\'b'}\"", False),  # a backslash inside a field: 3.12+ only
        ('f"{x\n}"', False),
        ('f"{x!r}"', False),
        ('f"{x:>5}"', False),
        ('f"{\uff46}"', False),
    ],
)
def test_fstring_fields_of_the_language(text, ok):
    assert (check_fstring_source(text) is None) is ok


def test_python_312_only_fstring_forms_are_rejected_here_too():
    # Python 3.11 cannot parse these; 3.12 can, and the validator must still reject them there.
    # On 3.11 they are syntax errors: either way, no program with them validates.
    for src in ('x = "a"\nfinal_answer = answer(f"{x # c\n}")\n', 'final_answer = answer(f"{"k"}")\n'):
        assert not validate(src).ok


# -- every error is reported ---------------------------------------------------------------------------


def test_arguments_of_an_unknown_tool_are_still_checked():
    kinds = [e.kind for e in validate('final_answer = answr(f"{undefined_name}", other)\n').errors]
    assert kinds == ["UnknownTool", "UndefinedName", "UndefinedName"]


def test_surplus_and_unknown_keyword_arguments_are_checked():
    src = 'd = retrieve("q")\nfinal_answer = answer("q", d, f"{nope}", extra=f"{gone}")\n'
    kinds = [e.kind for e in validate(src).errors]
    assert kinds == ["ArityError", "UndefinedName", "UnknownKeyword", "UndefinedName"]


def test_calling_an_attribute_still_checks_arguments():
    kinds = [e.kind for e in validate("final_answer = x.y(undefined)\n").errors]
    assert kinds == ["DisallowedConstruct", "UndefinedName"]


def test_a_huge_program_is_refused_before_it_is_split_into_lines():
    """20 MB of line breaks: refused on its size without a line table (which cost ~190 MB of memory)."""
    from pyrag_dsl.grammar.source import parse_source

    tree, smap, errors = parse_source("\r" * 20_000_000, Limits())
    assert tree is None and smap.source == "" and len(errors) == 1
    assert isinstance(errors[0], LimitExceeded) and errors[0].details["limit"] == "max_source_bytes"
    # just over the limit, CRLF line ends count one byte each (as before): a 40 kB CRLF program is fine
    src = 'a = "x"\r\n' * 4_000
    assert len(src) < 2 * Limits().max_source_bytes and parse_source(src, Limits())[0] is not None
