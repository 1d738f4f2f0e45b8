import pytest
from corpus import VALID_PROGRAMS, chain_program

from pyrag_dsl import Limits, ValidationFailed, parse_program, validate
from pyrag_dsl.grammar import ValueType

pytestmark = pytest.mark.network_free


@pytest.mark.parametrize("name", sorted(VALID_PROGRAMS))
def test_valid_programs_validate(name):
    result = validate(VALID_PROGRAMS[name])
    assert result.errors == []
    assert result.ok


def test_dataflow_of_reference_example():
    prog = parse_program(VALID_PROGRAMS["jed_hoyer"])
    assert [s.target for s in prog.statements] == ["docs1", "jed_birth", "docs2", "john_birth", "final_answer"]
    assert [s.type for s in prog.statements] == [
        ValueType.DOCS,
        ValueType.TEXT,
        ValueType.DOCS,
        ValueType.TEXT,
        ValueType.TEXT,
    ]
    assert [s.deps for s in prog.statements] == [(), (0,), (), (2,), (1, 3)]
    assert prog.call_count == 5
    assert prog.dependents(0) == [1, 4]
    assert prog.statements[4].span.line == 7 and prog.statements[4].span.end_line == 11


def test_reassignment_deps_point_at_latest_definition():
    prog = parse_program(VALID_PROGRAMS["reassign"])
    assert prog.statements[3].deps == (1, 2)  # founder (1) and the second docs (2)
    assert prog.statements[4].deps == (3,)


def kinds(source, **kw):
    return [e.kind for e in validate(source, **kw).errors]


def test_reports_all_errors_in_one_pass_with_spans():
    src = (
        'docs = retrieve("q")\n'
        'a = answer("q", docs.__class__)\n'
        'b = answer(f"{directr}", docs)\n'
        'retrieve = "x"\n'
        'c = answr("q")\n'
        'd = answer("q", docs, extra=1)\n'
    )
    errors = validate(src).errors
    assert [e.kind for e in errors] == [
        "DisallowedConstruct",
        "UndefinedName",
        "AssignToTool",
        "UnknownTool",
        "UnknownKeyword",
        "MissingFinalAnswer",
    ]
    attr = errors[0]
    assert (attr.span.line, attr.span.col, attr.span.end_col) == (2, 17, 31)
    assert src.splitlines()[1][attr.span.col - 1 : attr.span.end_col - 1] == "docs.__class__"
    undefined = errors[1]
    assert (undefined.span.line, undefined.span.col, undefined.span.end_col) == (3, 15, 22)
    assert undefined.source_line == 'b = answer(f"{directr}", docs)'
    assert errors[3].hint == "Did you mean 'answer'?"


def test_did_you_mean_never_substitutes():
    err = validate('jed_birth = "x"\nfinal_answer = answer(f"{jed_brith}")\n').errors[0]
    assert err.kind == "UndefinedName"
    assert err.hint == "Did you mean 'jed_birth'?"


def test_use_before_assignment():
    errors = validate('final_answer = answer(f"{x}")\nx = "late"\n').errors
    assert [e.kind for e in errors] == ["UseBeforeAssignment"]
    assert "line 2" in errors[0].message


def test_arity_and_keywords():
    assert kinds("final_answer = answer()\n") == ["ArityError"]
    assert kinds('d = retrieve("q")\nfinal_answer = answer("q", d, d)\n') == ["ArityError"]
    assert kinds('final_answer = answer("q", query="q")\n') == ["ArityError"]
    assert kinds('final_answer = answer("q", dosc="q")\n') == ["UnknownKeyword"]
    err = validate('final_answer = answer("q", dosc="q")\n').errors[0]
    assert err.hint == "Did you mean 'docs'?"


def test_type_mismatches():
    assert kinds('final_answer = answer("q", "text")\n') == ["TypeMismatch"]
    assert kinds('final_answer = answer(retrieve("q"))\n') == ["TypeMismatch"]
    assert kinds('d = retrieve("q", topk="5")\nfinal_answer = "x"\n') == ["TypeMismatch"]
    assert kinds('d = retrieve(5)\nfinal_answer = "x"\n') == ["TypeMismatch"]
    assert kinds('d = retrieve("q")\nfinal_answer = f"{d}"\n') == ["TypeMismatch"]
    assert kinds('final_answer = retrieve("q")\n') == ["TypeMismatch"]


def test_errors_do_not_cascade():
    # the bad statement's variable is unknown, not reported again where it is used
    assert kinds('a = answer(f"{x!r}")\nfinal_answer = answer(f"{a}")\n') == ["DisallowedConstruct"]


def test_missing_final_answer():
    assert kinds('a = "x"\n') == ["MissingFinalAnswer"]
    assert kinds("") == ["MissingFinalAnswer"]


def test_syntax_error_has_span():
    errors = validate('final_answer = answer("q"\n').errors
    assert len(errors) == 1 and errors[0].kind == "SyntaxError"
    assert errors[0].span.line == 1


def test_static_call_budget():
    src = chain_program(10)
    assert validate(src, limits=Limits(max_tool_calls=10)).ok
    errors = validate(src, limits=Limits(max_tool_calls=9)).errors
    assert [e.kind for e in errors] == ["LimitExceeded"]
    assert errors[0].details["limit"] == "max_tool_calls"


def test_static_string_length():
    src = 'a = "0123456789"\nb = f"{a}{a}{a}"\nfinal_answer = b\n'
    assert validate(src, limits=Limits(max_string_length=30)).ok
    errors = validate(src, limits=Limits(max_string_length=29)).errors
    assert [e.kind for e in errors] == ["LimitExceeded"]
    assert errors[0].span.line == 2


def test_int_rendered_into_fstring_counts_towards_length():
    assert validate('final_answer = f"{12345}"\n', limits=Limits(max_string_length=5)).ok
    assert not validate('final_answer = f"{123456}"\n', limits=Limits(max_string_length=5)).ok


def test_parse_program_raises_with_all_errors():
    with pytest.raises(ValidationFailed) as info:
        parse_program("import os\nx = y\n")
    assert [e.kind for e in info.value.errors] == ["DisallowedConstruct", "UndefinedName", "MissingFinalAnswer"]


def test_error_render_and_dict():
    err = validate('d = retrieve("q")\nfinal_answer = answer("q", d.x)\n').errors[0]
    text = err.render()
    assert "line 2, col 28: DisallowedConstruct" in text
    assert text.splitlines()[-1].strip() == "^^^"
    d = err.to_dict()
    assert {k: d[k] for k in ("type", "line", "col", "end_line", "end_col")} == {
        "type": "DisallowedConstruct",
        "line": 2,
        "col": 28,
        "end_line": 2,
        "end_col": 31,
    }
    from pyrag_dsl.grammar.errors import DslError

    again = DslError.from_dict(d)
    assert type(again) is type(err) and again.to_dict() == d


def test_non_text_source_is_a_typed_error():
    errors = validate(b"final_answer = 'x'").errors  # type: ignore[arg-type]
    assert [e.kind for e in errors] == ["SyntaxError"]


def test_unicode_in_strings_is_fine():
    assert validate('final_answer = answer("Wer ist Björk Guðmundsdóttir? 東京")\n').ok


def test_columns_are_characters_not_bytes():
    err = validate('final_answer = answer("Björk é",  x)\n').errors[0]
    assert err.kind == "UndefinedName"
    assert err.source_line[err.span.col - 1 : err.span.end_col - 1] == "x"


def test_span_inside_fstring_after_non_ascii():
    err = validate('final_answer = f"Björk {nme}"\n').errors[0]
    assert err.source_line[err.span.col - 1 : err.span.end_col - 1] == "nme"


def test_many_unknown_keywords_are_checked_without_a_scan_per_keyword(monkeypatch):
    """A 64 kB program of thousands of unknown keywords: the validator looked each keyword up in the list of
    unknown ones (quadratic: 5.6 s for 16,000). Counted, not timed: no membership test on that list."""
    import importlib

    validate_module = importlib.import_module("pyrag_dsl.grammar.validate")

    scans = []

    class CountingList(list):
        def __contains__(self, item):
            scans.append(1)
            return super().__contains__(item)

    real_bind = validate_module.bind

    def bind(spec, node):
        b = real_bind(spec, node)
        b.unknown = CountingList(b.unknown)
        return b

    monkeypatch.setattr(validate_module, "bind", bind)
    src = 'q = "x"\nfinal_answer = answer("q", ' + "z=q," * 15_900 + ")\n"
    result = validate(src)
    assert not result.ok and len(src.encode()) <= Limits().max_source_bytes
    assert len(scans) < 10
