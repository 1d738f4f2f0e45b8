"""Programs shared by the tests and benchmarks/engine_overhead.py: valid ones and hostile ones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The reference README's running example, as shipped in examples/ (without its comment line).
JED_HOYER = (Path(__file__).parent.parent / "examples" / "jed_hoyer.py").read_text().split("\n", 1)[1]

VIRGINIA_BRUCE = """# How old was Virginia Bruce when she starred in Let Freedom Ring?
docs_film = retrieve("When was Let Freedom Ring released?")
film_year = answer("When was Let Freedom Ring released?", docs_film)
docs_born = retrieve("When was Virginia Bruce born?", topk=10)
birth = answer(query="When was Virginia Bruce born?", docs=docs_born)
final_answer = answer(f"Given: Let Freedom Ring was released in {film_year}. Virginia Bruce was born {birth}. "
                      f"Answer the question: How old was Virginia Bruce when she starred in Let Freedom Ring?")
"""

NESTED_AND_KEYWORDS = """"A bare string is a comment."
q = 'Which country is the Eiffel Tower in?'
country = answer(q, retrieve(q, topk=3))
capital_q = f"What is the capital of {country}?"
capital = answer(capital_q, docs=retrieve(query=capital_q,))
final_answer = answer(f'Given: the capital is {capital} ({country}, {3}). Answer the question: {"x"}?')
"""

REASSIGN = """docs = retrieve("Who founded Acme?")
founder = answer("Who founded Acme?", docs)
docs = retrieve(f"Where was {founder} born?")
place = answer(f"Where was {founder} born?", docs)
final_answer = place
"""

CONSTANT_ONLY = """final_answer = "no tools needed"
"""

VALID_PROGRAMS = {
    "jed_hoyer": JED_HOYER,
    "virginia_bruce": VIRGINIA_BRUCE,
    "nested_and_keywords": NESTED_AND_KEYWORDS,
    "reassign": REASSIGN,
    "constant_only": CONSTANT_ONLY,
}


def chain_program(n_statements: int) -> str:
    """A valid straight-line program of exactly n statements and n tool calls (retrieve/answer pairs)."""
    lines = []
    for i in range(n_statements - 1):
        if i % 2 == 0:
            lines.append(f'd{i} = retrieve("question number {i}")')
        else:
            lines.append(f'a{i} = answer(f"question number {i}", d{i - 1})')
    lines.append('final_answer = answer("Given the above. Answer the question: done?")')
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Hostile:
    name: str
    category: str
    source: str
    expect: tuple[str, ...]  # acceptable error kinds; at least one reported error must be one of them
    grammar_rejects: bool = True  # the exported grammar also refuses it


def _h(name: str, category: str, source: str, *expect: str, grammar_rejects: bool = True) -> Hostile:
    return Hostile(name, category, source, expect, grammar_rejects)


_FIN = '\nfinal_answer = "x"\n'
_DOUBLING = 'a0 = "xxxxxxxxxx"\n' + "".join(f'a{i} = f"{{a{i - 1}}}{{a{i - 1}}}"\n' for i in range(1, 21)) + _FIN
_WIDE_FIELDS = 'a = "' + "x" * 1000 + '"\nb = f"' + "{a}" * 300 + '"' + _FIN
_DEEP_CALLS = "final_answer = " + "answer(" * 40 + '"q"' + ")" * 40 + "\n"
_DEEP_PARENS = "final_answer = " + "(" * 300 + '"q"' + ")" * 300 + "\n"
_MANY_STATEMENTS = "".join(f'v{i} = "x"\n' for i in range(300)) + _FIN
_MANY_CALLS = "".join(f'd{i} = retrieve("q{i}")\n' for i in range(120)) + _FIN
_LONG_PLUS = "final_answer = " + " + ".join(['"a"'] * 20000) + "\n"
_HUGE_SOURCE = 'final_answer = "' + "A" * 70000 + '"\n'

HOSTILE: list[Hostile] = [
    # dunder climbs
    _h("class_of_tuple", "dunder", "x = ().__class__.__bases__[0].__subclasses__()" + _FIN, "DisallowedConstruct"),
    _h("str_class", "dunder", 'x = "".__class__' + _FIN, "DisallowedConstruct"),
    _h("tool_globals", "dunder", "x = retrieve.__globals__" + _FIN, "DisallowedConstruct"),
    _h("tool_code", "dunder", "x = answer.__code__.co_consts" + _FIN, "DisallowedConstruct"),
    _h(
        "getattr_call",
        "dunder",
        'final_answer = getattr(retrieve, "__globals__")\n',
        "UnknownTool",
        grammar_rejects=False,
    ),
    _h("builtins_name", "dunder", "x = __builtins__" + _FIN, "DisallowedConstruct"),
    _h("import_dunder", "dunder", 'x = __import__("os")' + _FIN, "DisallowedConstruct"),
    _h("assign_dunder", "dunder", '__class__ = "x"' + _FIN, "DisallowedConstruct"),
    _h("docs_mro", "dunder", 'd = retrieve("q")\nx = d.__class__.__mro__[1]' + _FIN, "DisallowedConstruct"),
    _h("type_call", "dunder", 'd = retrieve("q")\nfinal_answer = type(d)\n', "UnknownTool", grammar_rejects=False),
    _h("globals_subscript", "dunder", 'x = globals()["__builtins__"]' + _FIN, "DisallowedConstruct"),
    _h("vars_call", "dunder", "final_answer = vars()\n", "UnknownTool", grammar_rejects=False),
    # str.format, format specs, conversions
    _h("str_format_attr", "format", 'q = "a"\nx = "{0.__class__}".format(q)' + _FIN, "DisallowedConstruct"),
    _h("conversion_r", "format", 'q = "a"\nfinal_answer = f"{q!r}"\n', "DisallowedConstruct"),
    _h("conversion_a", "format", 'q = "a"\nfinal_answer = f"{q!a}"\n', "DisallowedConstruct"),
    _h("conversion_s", "format", 'q = "a"\nfinal_answer = f"{q!s}"\n', "DisallowedConstruct"),
    _h("nested_spec", "format", 'q = "a"\nfinal_answer = f"{q:{q}}"\n', "DisallowedConstruct"),
    _h("width_spec_bomb", "format", 'q = "a"\nfinal_answer = f"{q:>999999999}"\n', "DisallowedConstruct"),
    _h(
        "fstring_attr",
        "format",
        'q = "a"\nfinal_answer = f"{q.__class__.__init__.__globals__}"\n',
        "DisallowedConstruct",
    ),
    _h("fstring_debug", "format", 'q = "a"\nfinal_answer = f"{q=}"\n', "DisallowedConstruct"),
    _h("percent_format", "format", 'q = "a"\nfinal_answer = "%s" % q\n', "DisallowedConstruct"),
    _h("format_builtin", "format", 'final_answer = format("a", "x")\n', "UnknownTool", grammar_rejects=False),
    _h("fstring_tool", "format", 'final_answer = f"{retrieve}"\n', "DisallowedConstruct", grammar_rejects=False),
    _h("fstring_lambda", "format", 'final_answer = f"{(lambda: 1)()}"\n', "DisallowedConstruct"),
    _h("fstring_docs", "format", 'd = retrieve("q")\nfinal_answer = f"{d}"\n', "TypeMismatch", grammar_rejects=False),
    _h("fstring_call", "format", "final_answer = f\"{answer('q')}\"\n", "DisallowedConstruct"),
    # unicode look-alikes
    _h(
        "fullwidth_import",
        "unicode",
        'x = \uff3f\uff3fimport\uff3f\uff3f("os")' + _FIN,
        "SyntaxError",
        "DisallowedCharacter",
    ),
    _h("fullwidth_eval", "unicode", 'final_answer = \uff45\uff56\uff41\uff4c("1")\n', "DisallowedCharacter"),
    _h("fullwidth_trailing_dunder", "unicode", 'q\uff3f\uff3f = "a"' + _FIN, "DisallowedCharacter"),
    _h("fullwidth_tool_assign", "unicode", '\uff52etrieve = "x"' + _FIN, "DisallowedCharacter"),
    _h(
        "fullwidth_tool_call",
        "unicode",
        'x = \uff52\uff45\uff54\uff52\uff49\uff45\uff56\uff45("q")' + _FIN,
        "DisallowedCharacter",
    ),
    _h("fullwidth_keyword", "unicode", 'final_answer = answer(\uff51uery="x")\n', "DisallowedCharacter"),
    _h("fullwidth_in_fstring", "unicode", 'q = "a"\nfinal_answer = f"{\uff51}"\n', "DisallowedCharacter"),
    _h("fullwidth_final", "unicode", '\uff46inal_answer = "x"\n', "DisallowedCharacter"),
    _h("math_bold", "unicode", '\U0001d431 = "a"' + _FIN, "DisallowedCharacter"),
    _h("cyrillic_homoglyph", "unicode", '\u0430 = "x"' + _FIN, "DisallowedCharacter"),
    _h(
        "fullwidth_dunder_attr",
        "unicode",
        'q = "a"\nx = q.\uff3f\uff3fclass\uff3f\uff3f' + _FIN,
        "DisallowedConstruct",
        "DisallowedCharacter",
        "SyntaxError",
    ),
    _h("bidi_override", "unicode", 'final_answer = "abc\u202e"\n', "DisallowedCharacter"),
    _h("bidi_isolate_comment", "unicode", '# \u2066 hidden\nfinal_answer = "x"\n', "DisallowedCharacter"),
    _h("nul_byte", "unicode", 'final_answer = "a\x00b"\n', "DisallowedCharacter"),
    _h("zero_width_joiner", "unicode", 'x\u200d = "a"' + _FIN, "SyntaxError", "DisallowedCharacter"),
    # frame and exception walks
    _h(
        "try_traceback",
        "frames",
        "try:\n    x = 1\nexcept Exception as e:\n    y = e.__traceback__.tb_frame\n" + _FIN,
        "DisallowedConstruct",
    ),
    _h("lambda_code", "frames", "x = (lambda: 0).__code__" + _FIN, "DisallowedConstruct"),
    _h("generator_frame", "frames", "x = (i for i in ()).gi_frame.f_back" + _FIN, "DisallowedConstruct"),
    _h("raise", "frames", "raise Exception()" + _FIN, "DisallowedConstruct"),
    _h("def", "frames", "def f():\n    return 1\n" + _FIN, "DisallowedConstruct"),
    _h("class", "frames", "class A:\n    pass\n" + _FIN, "DisallowedConstruct"),
    _h("with_open", "frames", 'with open("x") as f:\n    pass\n' + _FIN, "DisallowedConstruct"),
    _h("sys_getframe", "frames", "x = sys._getframe()" + _FIN, "DisallowedConstruct"),
    _h("answer_frame", "frames", 'x = answer("q").gi_frame' + _FIN, "DisallowedConstruct"),
    _h("assert", "frames", "assert False" + _FIN, "DisallowedConstruct"),
    _h("await", "frames", 'x = await retrieve("q")' + _FIN, "DisallowedConstruct"),
    _h("yield", "frames", "x = yield" + _FIN, "DisallowedConstruct", grammar_rejects=False),
    # smuggled constructs
    _h("import", "smuggle", "import os" + _FIN, "DisallowedConstruct"),
    _h("from_import", "smuggle", "from os import system" + _FIN, "DisallowedConstruct"),
    _h("list_comp", "smuggle", 'x = [retrieve(q) for q in ["a"]]' + _FIN, "DisallowedConstruct"),
    _h("for_loop", "smuggle", 'for i in "ab":\n    x = retrieve(i)\n' + _FIN, "DisallowedConstruct"),
    _h("while_loop", "smuggle", "while True:\n    x = 1\n" + _FIN, "DisallowedConstruct"),
    _h("if_stmt", "smuggle", 'if True:\n    final_answer = "x"\n', "DisallowedConstruct"),
    _h("walrus", "smuggle", 'x = (y := "a")' + _FIN, "DisallowedConstruct"),
    _h("augassign", "smuggle", 'x = "a"\nx += "b"' + _FIN, "DisallowedConstruct"),
    _h("starred", "smuggle", 'x = retrieve(*["q"])' + _FIN, "DisallowedConstruct"),
    _h("kwargs_unpack", "smuggle", 'x = retrieve(**{"query": "q"})' + _FIN, "DisallowedConstruct"),
    _h("decorator", "smuggle", "@retrieve\ndef f():\n    pass\n" + _FIN, "DisallowedConstruct"),
    _h("global", "smuggle", "global x" + _FIN, "DisallowedConstruct"),
    _h("annotated", "smuggle", 'x: str = "a"' + _FIN, "DisallowedConstruct"),
    _h("tuple_unpack", "smuggle", 'x, y = "a", "b"' + _FIN, "DisallowedConstruct"),
    _h("chained_assign", "smuggle", 'x = y = "a"' + _FIN, "DisallowedConstruct"),
    _h("expression_statement", "smuggle", 'answer("q")' + _FIN, "DisallowedConstruct"),
    _h("ifexp", "smuggle", 'final_answer = "a" if True else "b"\n', "DisallowedConstruct"),
    _h("list_literal", "smuggle", 'x = ["a"]' + _FIN, "DisallowedConstruct"),
    _h("dict_literal", "smuggle", 'x = {"a": 1}' + _FIN, "DisallowedConstruct"),
    _h("delete", "smuggle", 'x = "a"\ndel x' + _FIN, "DisallowedConstruct"),
    _h("match", "smuggle", 'x = "a"\nmatch x:\n    case _:\n        pass\n' + _FIN, "DisallowedConstruct"),
    _h("none_constant", "smuggle", "final_answer = None\n", "DisallowedConstruct", grammar_rejects=False),
    _h("bool_constant", "smuggle", "final_answer = True\n", "DisallowedConstruct", grammar_rejects=False),
    _h("float_constant", "smuggle", "final_answer = 1.5\n", "DisallowedConstruct"),
    _h("bytes_constant", "smuggle", 'final_answer = b"x"\n', "DisallowedConstruct"),
    _h("ellipsis", "smuggle", "final_answer = ...\n", "DisallowedConstruct"),
    _h("negative_topk", "smuggle", 'd = retrieve("q", topk=-1)' + _FIN, "DisallowedConstruct"),
    _h("exec_call", "smuggle", 'final_answer = exec("import os")\n', "UnknownTool", grammar_rejects=False),
    _h("eval_call", "smuggle", 'final_answer = eval("1")\n', "UnknownTool", grammar_rejects=False),
    _h("open_call", "smuggle", 'final_answer = open("/etc/passwd")\n', "UnknownTool", grammar_rejects=False),
    _h("underscore_name", "smuggle", '_ = "x"' + _FIN, "DisallowedConstruct"),
    # tool aliasing and shadowing
    _h(
        "alias_tool",
        "aliasing",
        'r = retrieve\nx = r("q")' + _FIN,
        "DisallowedConstruct",
        "UnknownTool",
        grammar_rejects=False,
    ),
    _h("assign_tool_to_tool", "aliasing", "retrieve = answer" + _FIN, "AssignToTool", grammar_rejects=False),
    _h("shadow_answer", "aliasing", 'answer = "x"' + _FIN, "AssignToTool", grammar_rejects=False),
    _h("final_is_tool", "aliasing", "final_answer = retrieve\n", "DisallowedConstruct", grammar_rejects=False),
    _h("call_variable", "aliasing", 'x = retrieve("q")\ny = x("q")' + _FIN, "UnknownTool", grammar_rejects=False),
    _h(
        "tool_as_argument",
        "aliasing",
        'final_answer = answer("q", retrieve)\n',
        "DisallowedConstruct",
        grammar_rejects=False,
    ),
    _h("docs_as_query", "aliasing", 'final_answer = answer(retrieve("q"))\n', "TypeMismatch", grammar_rejects=False),
    _h("text_as_docs", "aliasing", 'final_answer = answer("q", "not docs")\n', "TypeMismatch", grammar_rejects=False),
    _h("final_is_docs", "aliasing", 'final_answer = retrieve("q")\n', "TypeMismatch", grammar_rejects=False),
    # resource bombs
    _h("fstring_doubling", "bomb", _DOUBLING, "LimitExceeded", grammar_rejects=False),
    _h("wide_fstring", "bomb", _WIDE_FIELDS, "LimitExceeded", grammar_rejects=False),
    _h(
        "huge_int",
        "bomb",
        'd = retrieve("q", topk=99999999999999999999999)' + _FIN,
        "LimitExceeded",
        grammar_rejects=False,
    ),
    _h("power_tower", "bomb", "x = 10**10**10" + _FIN, "DisallowedConstruct"),
    _h("string_repeat", "bomb", 'x = "a" * 10**9' + _FIN, "DisallowedConstruct"),
    _h("deep_calls", "bomb", _DEEP_CALLS, "LimitExceeded", grammar_rejects=False),
    _h("deep_parens", "bomb", _DEEP_PARENS, "LimitExceeded", "SyntaxError", grammar_rejects=False),
    _h("many_statements", "bomb", _MANY_STATEMENTS, "LimitExceeded", grammar_rejects=False),
    _h("many_calls", "bomb", _MANY_CALLS, "LimitExceeded", grammar_rejects=False),
    _h("long_plus_chain", "bomb", _LONG_PLUS, "DisallowedConstruct", "LimitExceeded"),
    _h("huge_source", "bomb", _HUGE_SOURCE, "LimitExceeded", grammar_rejects=False),
]
