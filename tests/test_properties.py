"""Property tests: whatever the input, the engine answers with its typed errors or a valid result."""

import ast

import pytest
from conftest import RecordingTools
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pyrag_dsl import Limits, execute, validate
from pyrag_dsl.grammar import DslError
from pyrag_dsl.interpreter import dumps_jsonl, loads_jsonl

pytestmark = pytest.mark.network_free

FAST = Limits(tool_timeout_s=None, run_timeout_s=None)


def check_source(source: str) -> None:
    result = validate(source, limits=FAST)
    assert all(isinstance(e, DslError) for e in result.errors)
    if not result.ok:
        assert result.errors
        for e in result.errors:
            e.render()
            e.to_dict()
        return
    tools = RecordingTools()
    run = execute(result.program, tools.as_dict())
    assert run.error is None or isinstance(run.error, DslError)
    assert loads_jsonl(dumps_jsonl(run.trace))[1] == run.trace
    if run.ok:
        assert isinstance(run.final_answer, str)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text(source):
    check_source(source)


FRAGMENTS = [
    "x",
    "y",
    "docs",
    "final_answer",
    "retrieve",
    "answer",
    "topk",
    "query",
    "_",
    "__class__",
    "ｆ",
    "open",
    "=",
    "(",
    ")",
    ",",
    ".",
    "[",
    "]",
    "{",
    "}",
    ":",
    "+",
    "*",
    "!r",
    "\n",
    " ",
    "    ",
    "#",
    "\\",
    "'",
    '"',
    '"q"',
    "'q'",
    'f"',
    "f'",
    '"""',
    "1",
    "0",
    "-1",
    "10**9",
    "lambda",
    "import",
    "for",
    "in",
    "if",
    "def",
    "None",
    "True",
    "yield",
    "await",
    ":=",
    "**",
    "*",
    "\u202e",
    "\x00",
    "é",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40))
def test_token_soup(parts):
    check_source("".join(parts))


def _names():
    return st.sampled_from(["a", "b", "docs", "final_answer", "retrieve", "answer", "x_1", "__class__"])


def _exprs():
    leaf = st.one_of(
        _names().map(lambda n: ast.Name(id=n, ctx=ast.Load())),
        st.one_of(st.text(max_size=12), st.integers(-5, 10**7), st.none(), st.booleans(), st.floats(0, 1)).map(
            lambda v: ast.Constant(value=v)
        ),
    )

    def extend(children):
        fv = st.tuples(children, st.sampled_from([-1, -1, 114]), st.booleans()).map(
            lambda t: ast.FormattedValue(
                value=t[0],
                conversion=t[1],
                format_spec=ast.JoinedStr(values=[ast.Constant(value="<5")]) if t[2] else None,
            )
        )
        return st.one_of(
            st.tuples(
                st.sampled_from(["retrieve", "answer", "open", "year"]),
                st.lists(children, max_size=3),
                st.lists(st.tuples(st.sampled_from(["query", "docs", "topk", "k"]), children), max_size=2),
            ).map(
                lambda t: ast.Call(
                    func=ast.Name(id=t[0], ctx=ast.Load()),
                    args=t[1],
                    keywords=[ast.keyword(arg=k, value=v) for k, v in t[2]],
                )
            ),
            st.lists(st.one_of(fv, st.text(max_size=5).map(lambda s: ast.Constant(value=s))), max_size=3).map(
                lambda vs: ast.JoinedStr(values=vs)
            ),
            st.tuples(children, _names()).map(lambda t: ast.Attribute(value=t[0], attr=t[1], ctx=ast.Load())),
            st.tuples(children, children).map(lambda t: ast.BinOp(left=t[0], op=ast.Add(), right=t[1])),
            st.tuples(children, children).map(lambda t: ast.Subscript(value=t[0], slice=t[1], ctx=ast.Load())),
            st.lists(children, max_size=2).map(lambda xs: ast.List(elts=xs, ctx=ast.Load())),
        )

    return st.recursive(leaf, extend, max_leaves=12)


def _stmts():
    assign = st.tuples(_names(), _exprs()).map(
        lambda t: ast.Assign(targets=[ast.Name(id=t[0], ctx=ast.Store())], value=t[1])
    )
    other = st.one_of(
        _exprs().map(lambda e: ast.Expr(value=e)),
        st.just(ast.Import(names=[ast.alias(name="os")])),
        st.tuples(_names(), _exprs()).map(
            lambda t: ast.AugAssign(target=ast.Name(id=t[0], ctx=ast.Store()), op=ast.Add(), value=t[1])
        ),
    )
    return st.one_of(assign, assign, assign, other)


@pytest.mark.slow(seconds=10)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_stmts(), min_size=0, max_size=8))
def test_random_asts(body):
    module = ast.fix_missing_locations(ast.Module(body=body, type_ignores=[]))
    try:
        source = ast.unparse(module)
    except Exception:
        assume(False)
    check_source(source)


@st.composite
def well_typed_programs(draw):
    """Programs built to be valid: every one must validate and run to a final answer."""
    texts, docs, lines = ['"seed"'], [], []
    for i in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["retrieve", "answer", "fstring", "const"]))
        name = f"v{i}"
        query = draw(st.sampled_from(texts))
        if kind == "retrieve":
            topk = draw(st.sampled_from(["", ", topk=3", ", 7"]))
            lines.append(f"{name} = retrieve({query}{topk})")
            docs.append(name)
            continue
        if kind == "answer":
            d = draw(st.sampled_from(["", *(f", {x}" for x in docs), *(f", docs={x}" for x in docs)]))
            lines.append(f"{name} = answer({query}{d})")
        elif kind == "fstring":
            parts = draw(
                st.lists(st.sampled_from([t for t in texts if not t.startswith('"')] + ["42", "'k'"]), max_size=3)
            )
            lines.append(f'{name} = f"q {" ".join("{" + p + "}" for p in parts)}"')
        else:
            lines.append(f"{name} = {draw(st.text(alphabet='abc xyz?', max_size=10))!r}")
        texts.append(name)
    lines.append(f"final_answer = answer({draw(st.sampled_from(texts))})")
    return "\n".join(lines) + "\n"


@settings(max_examples=200, deadline=None)
@given(well_typed_programs())
def test_well_typed_programs_run(source):
    result = validate(source, limits=FAST)
    assert result.ok, [e.render() for e in result.errors]
    run = execute(result.program, RecordingTools().as_dict())
    assert run.ok and isinstance(run.final_answer, str)
    assert loads_jsonl(dumps_jsonl(run.trace))[1] == run.trace


@settings(max_examples=300, deadline=None)
@given(well_typed_programs(), st.data())
def test_mutated_programs(source, data):
    pos = data.draw(st.integers(0, len(source)))
    insert = data.draw(st.sampled_from(FRAGMENTS))
    cut = data.draw(st.integers(0, 3))
    check_source(source[:pos] + insert + source[pos + cut :])
