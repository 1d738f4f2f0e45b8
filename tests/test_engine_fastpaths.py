"""The engine's per-call shortcuts give what the long way gives: the one-pass document check, the
memoised JSON size and hash of a Docs value, and trace events built from precomputed field sets."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import orjson
import pytest

from pyrag_dsl import Doc, Docs, Limits, execute, parse_program
from pyrag_dsl.grammar.language import DEFAULT_LANGUAGE
from pyrag_dsl.grammar.tools import ValueType
from pyrag_dsl.interpreter.trace import build_event, event_defaults, event_json
from pyrag_dsl.interpreter.values import BadToolResult, TooLarge, _clean_docs, _doc, _items, to_value, value_size
from pyrag_dsl.interpreter.walker import convert

pytestmark = pytest.mark.network_free


class Text(str):
    pass


class SubDoc(Doc):
    __slots__ = ()


def _slow(v, limits):
    """to_value's general path (without the shortcut): the reference the shortcut must agree with."""
    return Docs(tuple(_doc(d, limits) for d in _items(v, limits)))


def _doc1(**kw):
    base = dict(id="1", title="T", text="some text", score=1.5)
    base.update(kw)
    return Doc(**base)


LIMITS = Limits(max_docs=3, max_string_length=40)
CASES = {
    "clean": Docs((_doc1(), _doc1(id="2", score=None))),
    "empty": Docs(()),
    "non-ascii": Docs((_doc1(text="caf\u00e9 \u4e2d\u6587"),)),
    "surrogate in title": Docs((_doc1(title="a\ud800b"),)),
    "surrogate in id": Docs((_doc1(id="\udfff"),)),
    "nan score": Docs((_doc1(score=math.nan),)),
    "inf score": Docs((_doc1(score=math.inf),)),
    "int score": Docs((_doc1(score=3),)),
    "huge scores": Docs((_doc1(score=1e308), _doc1(score=1e308))),
    "str subclass": Docs((_doc1(text=Text("x")),)),
    "Doc subclass": Docs((SubDoc("1", "T", "x", None),)),
    "too long": Docs((_doc1(text="x" * 40),)),
    "long in total only": Docs((_doc1(text="x" * 25), _doc1(text="y" * 25))),
    "too many": Docs(tuple(_doc1(id=str(i)) for i in range(4))),
    "list items": Docs([_doc1()]),  # type: ignore[arg-type]
    "int id": Docs((Doc(7, "T", "x", None),)),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_docs_shortcut_agrees_with_the_per_document_path(name):
    v = CASES[name]
    try:
        want = _slow(v, LIMITS)
    except (BadToolResult, TooLarge) as e:
        with pytest.raises(type(e)) as got:
            to_value(ValueType.DOCS, v, LIMITS)
        assert str(got.value) == str(e)
        return
    got = to_value(ValueType.DOCS, v, LIMITS)
    assert got == want and type(got) is Docs and got is not v  # never the tool's object (its memo is the tool's)
    if _clean_docs(v.items, LIMITS):  # the shortcut never keeps what the long way would change
        assert all(a is b for a, b in zip(want.items, v.items)) and len(want) == len(v)


@pytest.mark.parametrize("name", sorted(CASES))
def test_convert_shortcut_agrees_with_to_value(name):
    """convert() gives what to_value gives (a clean Docs kept as it is) and that value's size."""
    v = CASES[name]
    run = SimpleNamespace(limits=LIMITS)
    spec = DEFAULT_LANGUAGE.tools["retrieve"]
    try:
        want = to_value(ValueType.DOCS, v, LIMITS)
    except (BadToolResult, TooLarge) as e:
        with pytest.raises(type(e)):
            convert(spec, v, run)
        return
    value, size = convert(spec, v, run)
    assert value == want and value is not v and size == value_size(want)


def test_docs_shortcut_keeps_the_documents_of_a_clean_result():
    v = CASES["clean"]
    assert _clean_docs(v.items, LIMITS) and to_value(ValueType.DOCS, v, LIMITS).items is v.items
    for name in (
        "surrogate in title",
        "nan score",
        "int score",
        "str subclass",
        "Doc subclass",
        "too long",
        "too many",
        "list items",
    ):
        assert not _clean_docs(CASES[name].items, LIMITS), name


@pytest.mark.parametrize("name", ["clean", "empty", "non-ascii", "surrogate in title", "long in total only"])
def test_json_size_is_the_old_per_document_sum(name):
    v = CASES[name]
    rows = [d.to_json() for d in v.items]
    try:
        want = 2 + sum(len(orjson.dumps(r)) + 1 for r in rows)
    except TypeError:
        want = len(json.dumps(rows))
    assert v.json_size() == want
    fresh = Docs(tuple(Doc(d.id, d.title, d.text, d.score) for d in v.items))
    assert fresh.json_size() == want and fresh.to_json() == rows


def test_docs_hash_is_memoised_and_agrees_with_equality():
    a = CASES["clean"]
    b = Docs(tuple(Doc(d.id, d.title, d.text, d.score) for d in a.items))
    assert a == b and hash(a) == hash(b) == hash((a.items,))
    assert a._memo["hash"] == hash((a.items,))
    c = Docs((_doc1(text="other"),))
    assert c != a
    assert {a: 1}[b] == 1


def test_events_equal_the_ones_build_event_makes():
    """Every event of a run (calls, nested calls, assignments) equals build_event over the same explicit fields:
    same values, same explicitly-set fields, same field order, same JSON."""
    src = 'd = retrieve("q")\na = answer(answer("inner"), d)\ns = f"{a}!"\nfinal_answer = answer("q", d)\n'
    docs = Docs((_doc1(), _doc1(id="2")))
    result = execute(
        parse_program(src), {"retrieve": lambda query, topk=5: docs, "answer": lambda query, docs=None: "ans"}
    )
    assert result.ok and [e.kind for e in result.trace] == ["retrieve", "answer", "answer", "assign", "answer"]
    for e in result.trace:
        cls = type(e)
        explicit = {k: e.__dict__[k] for k in e.__dict__ if k in e.model_fields_set}
        ref = build_event(cls, explicit)
        assert e == ref
        assert e.model_fields_set == ref.model_fields_set == set(e.__dict__) - {"kind"}
        assert list(e.__dict__) == list({**event_defaults(cls), **{k: None for k in e.__dict__ if k != "kind"}})
        assert event_json(e) == event_json(ref)
        assert cls.model_validate(json.loads(event_json(e))) == e


def _reference_arguments(run, stmt, node):
    """The argument values computed from the tool's signature and the call's argument nodes (the engine's way
    before call plans), from the values of the statements it reads: the oracle for what a tool receives."""
    import ast

    from pyrag_dsl.grammar.tools import RunDefault

    spec = run.language.tools[node.func.id]
    given = run.program.arguments(node)
    forced = run.forced.get(id(node))
    kwargs = {}
    for p in spec.params:
        if forced and p.name in forced:
            v = forced[p.name]
        elif p.name in given:
            a = given[p.name]
            if type(a) is ast.Constant:
                v = a.value
            elif type(a) is ast.Name:
                v = run.values[stmt.binds[a.id]]
            elif type(a) is ast.JoinedStr:  # of constants and names here
                v = "".join(
                    part.value if type(part) is ast.Constant else run.values[stmt.binds[part.value.id]]
                    for part in a.values
                )
            else:
                v = NESTED_CALL  # evaluating it here would call the tool again
        else:
            v = p.default
            if isinstance(v, RunDefault):
                v = run.settings.get(v.key, v.fallback)
        if type(v) is int and p.out_of_range(v, run.limits):
            return ("out of range", p.name)
        kwargs[p.name] = v
    return kwargs


NESTED_CALL = object()
PLAN_PROGRAMS = {
    "constants, names, f-strings, nested call, cache hit": (
        'd = retrieve("q")\n'
        'e = retrieve("q", 2)\n'
        'x = answer("first", d)\n'
        'a = answer(answer(f"inner {x}"), d)\n'
        'b = answer("q", d)\n'
        'c = answer("q", d)\n'
        'final_answer = answer(f"{a} and {b}", e)\n',
        {"topk": 3},
        False,
    ),
    "topk from the settings out of range": (
        'd = retrieve("q")\nfinal_answer = answer("q", d)\n',
        {"topk": 10**6},
        False,
    ),
    "topk from the settings in range": ('d = retrieve("q")\nfinal_answer = answer("q", d)\n', {"topk": 1}, False),
    "forced topk (adaptive retrieval)": ('d = retrieve("q", 2)\nfinal_answer = answer("q", d)\n', {}, True),
}


def _calls_in_evaluation_order(node):
    """The call nodes under `node`, each after the calls in its arguments (the order the engine makes them)."""
    import ast

    calls = [c for child in ast.iter_child_nodes(node) for c in _calls_in_evaluation_order(child)]
    return calls + [node] if isinstance(node, ast.Call) else calls


def _expected_calls(program, run):
    """Per call of the statements whose inputs were computed, in order: (tool, reference arguments)."""
    from pyrag_dsl.interpreter.state import UNSET

    expected = []
    for stmt in program.statements:
        if any(run.values[i] is UNSET for i in stmt.binds.values()):
            break  # an input was never computed: nothing from here on ran
        for node in _calls_in_evaluation_order(stmt.node.value):
            expected.append((node.func.id, _reference_arguments(run, stmt, node)))
    return expected


def _same_call(call, want):
    (tool, got), (want_tool, want_args) = call, want
    return (
        tool == want_tool
        and got.keys() == want_args.keys()
        and all(got[k] == v and type(got[k]) is type(v) for k, v in want_args.items() if v is not NESTED_CALL)
    )


def _assert_received_as_expected(received, expected, finished):
    """Every call a tool received is the next expected one, in order; an expected call equal to one made before
    is a cache hit (no tool call); a finished run made every expected call."""
    made = []
    for want in expected:
        if NESTED_CALL not in want[1].values() and any(_same_call(call, want) for call in made):
            continue  # answered from the call cache
        if len(made) == len(received):
            assert not finished, f"expected, never made: {want}"
            break
        assert _same_call(received[len(made)], want), (received[len(made)], want)
        made.append(received[len(made)])
    assert made == received


@pytest.mark.parametrize("name", list(PLAN_PROGRAMS))
@pytest.mark.parametrize("result", ["clean Docs", "dicts", "bad", "non-ascii text"])
def test_call_plan_arguments_equal_the_signature_walk(name, result):
    """A call's arguments come from its CallPlan, built once per node with the program: every call a tool
    receives equals what walking the tool's signature and the call's argument nodes gives (constants, bound
    names, f-strings, a nested call, run settings, forced overrides, out-of-range values), and the run's events
    equal build_event's."""
    from pyrag_dsl.grammar.errors import ArgumentOutOfRange
    from pyrag_dsl.interpreter import CallCache
    from pyrag_dsl.interpreter.run import Run

    src, settings, force = PLAN_PROGRAMS[name]
    docs = Docs((_doc1(), _doc1(id="2", text="caf\u00e9")))
    received = []

    def retrieve(query, topk=5):
        received.append(("retrieve", {"query": query, "topk": topk}))
        if result == "dicts":
            return [{"id": 1, "title": "T", "text": f"{query} {topk}"}]
        return 42 if result == "bad" else docs

    def answer(query, docs=None):
        received.append(("answer", {"query": query, "docs": docs}))
        return f"r\u00e9ponse {len(query)}" if result == "non-ascii text" else f"ans {len(query)}"

    program = parse_program(src, limits=Limits(tool_timeout_s=None, run_timeout_s=None))
    run = Run(program, {"retrieve": retrieve, "answer": answer}, settings=settings, cache=CallCache())
    if force:
        run.force_argument(program.statements[0].node.value, "topk", 7)
    run.run_all()
    expected = _expected_calls(program, run)
    if "out of range" in name:
        assert expected[0][1] == ("out of range", "topk") and received == []
        assert isinstance(run.error, ArgumentOutOfRange) and run.error.details["param"] == "topk"
    else:
        assert received and all(type(args) is dict for _, args in expected)
        _assert_received_as_expected(received, expected, finished=run.error is None)
    if force:
        assert received[0] == ("retrieve", {"query": "q", "topk": 7})
    for e in run.events:
        if e.kind != "error":
            explicit = {k: e.__dict__[k] for k in e.__dict__ if k in e.model_fields_set}
            assert event_json(e) == event_json(build_event(type(e), explicit))
    if name.startswith("constants") and result != "bad":
        assert run.error is None and run.cache_hits == 1 and len(program.plans) == 8


def test_call_plans_are_per_node_and_per_program():
    """A plan is built for every call node when the program is resolved, before any run, and is read-only;
    runs neither add nor rebuild plans; another program of the same text has plans of its own nodes."""
    src = 'd = retrieve("q")\na = answer(answer("a"), d)\nfinal_answer = answer(f"x {a}", d)\n'
    tools = {"retrieve": lambda query, topk=5: Docs((_doc1(),)), "answer": lambda query, docs=None: query[:10]}
    program, twin = parse_program(src), parse_program(src)
    plans = dict(program.plans)
    assert len(plans) == 4 and {id(n) for n in plans} == set(program.bound)
    with pytest.raises(TypeError):
        program.plans[program.statements[0].node.value] = None
    with pytest.raises(AttributeError):
        plans[program.statements[0].node.value].target = "x"
    first = execute(program, tools)
    execute(program, tools)
    assert dict(program.plans) == plans and all(program.plans[n] is p for n, p in plans.items())  # not rebuilt
    assert execute(twin, tools).final_answer == first.final_answer
    assert {id(n) for n in twin.plans} == set(twin.bound) and not {id(n) for n in twin.plans} & set(program.bound)


def test_call_plan_event_fields_equal_the_statement_and_its_charge():
    """A plan's `where` and `source_size` are what the trace gives a call event of its statement and what the
    budget charges for its source (value_size), for text with quotes, escapes and non-ASCII characters."""
    from pyrag_dsl.interpreter.values import value_size

    src = 'd = retrieve("caf\u00e9 \\"q\\" \\\\ \\t \U0001f600")\nfinal_answer = answer("\u00fc\\n\u2028", d)\n'
    program = parse_program(src)
    for node, plan in program.plans.items():
        stmt = plan.statement
        assert plan.source_size == value_size(stmt.source)
        assert plan.where == {
            "statement": stmt.index,
            "line": stmt.span.line,
            "col": stmt.span.col,
            "end_line": stmt.span.end_line,
            "end_col": stmt.span.end_col,
            "source": stmt.source,
        }
        assert plan.kind == program.tool_kind(node)
