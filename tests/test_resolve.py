"""The resolve step: every read is bound to the statement that defined the name at that point, so
reassigned names give the same results in sequential mode, dataflow mode, replay and incremental re-runs."""

import threading

import pytest
from conftest import RecordingTools
from hypothesis import given, settings
from hypothesis import strategies as st
from test_dataflow import BatchingTools

from pyrag_dsl import CallCache, Limits, execute, parse_program
from pyrag_dsl.grammar import FINAL_ANSWER, TypeMismatch
from pyrag_dsl.interpreter import CallEvent, Run, supervise

pytestmark = pytest.mark.network_free

FAST = Limits(tool_timeout_s=None, run_timeout_s=None)


def both(source, tools_factory=BatchingTools, **kw):
    prog = parse_program(source, limits=FAST)
    return (
        execute(prog, tools_factory().as_dict(), **kw),
        execute(prog, tools_factory().as_dict(), mode="dataflow", **kw),
    )


def test_reads_bind_to_the_definition_in_force():
    prog = parse_program(
        'docs = retrieve("A")\nx = answer("q1", docs)\ndocs = retrieve("B")\nfinal_answer = answer(f"q2 {x}", docs)\n'
    )
    assert [dict(s.binds) for s in prog.statements] == [{}, {"docs": 0}, {}, {"x": 1, "docs": 2}]
    assert prog.statements[3].deps == (1, 2)
    assert prog.dependents(0) == [1, 3] and prog.ancestors(3) == [0, 1, 2]


def test_issue_example_docs_reassigned():
    src = 'docs = retrieve("A")\nx = answer("q1", docs)\ndocs = retrieve("B")\nfinal_answer = answer(f"q2 {x}", docs)\n'
    seq, par = both(src)
    assert seq.ok and par.ok
    assert seq.variables == par.variables
    # x was answered from A's documents in both modes
    answer_x = [e for e in par.trace if isinstance(e, CallEvent) and e.statement == 1][0]
    assert answer_x.inputs["docs"][0]["id"].startswith("A#")


def test_issue_example_name_reassigned_after_its_reader():
    seq, par = both('q = "first"\nfinal_answer = answer(q)\nq = "second"\n')
    assert seq.final_answer == par.final_answer == "A(first)"
    assert seq.variables["q"] == par.variables["q"] == "second"


def test_issue_example_type_changes_after_a_reader():
    seq, par = both('q = "text"\nfinal_answer = f"{q}"\nq = retrieve("x")\n')
    assert seq.ok and par.ok and seq.final_answer == par.final_answer == "text"
    assert seq.variables.keys() == par.variables.keys() == {"q", FINAL_ANSWER}


def test_docs_into_text_is_still_a_static_error():
    from pyrag_dsl import validate

    errors = validate('q = retrieve("x")\nfinal_answer = f"{q}"\n').errors
    assert [type(e) for e in errors] == [TypeMismatch]


def test_adaptive_rerun_uses_the_bindings_not_the_last_value():
    """Re-running a retrieve and its dependents after `q` was reassigned asks the original question."""
    src = (
        'q = "When was A born?"\ndocs = retrieve(q)\nans = answer(q, docs)\nq = "Something later?"\n'
        'final_answer = answer(f"Given {ans}. {q}")\n'
    )
    prog = parse_program(src, limits=FAST)
    tools = RecordingTools()
    run = Run(prog, tools.as_dict(), cache=CallCache())
    supervise(run, run.run_all)
    retrieve_node = prog.statements[1].node.value
    run.force_argument(retrieve_node, "topk", 10)
    rerun = sorted({1, *prog.dependents(1)})
    supervise(run, lambda: run.run_statements(rerun))
    boosted = [c for c in tools.calls if c[0] == "retrieve" and c[1]["topk"] == 10]
    assert boosted == [("retrieve", {"query": "When was A born?", "topk": 10})]
    assert run.value(2) == "A(When was A born?)"
    assert run.variables["q"] == "Something later?"


# -- property: programs that reassign names --------------------------------------------------------

NAMES = ["a", "b", "c", "d"]


@st.composite
def reassigning_programs(draw):
    """Valid programs over a few names, reassigned often (also with a change of type)."""
    types: dict[str, str] = {}
    lines = []
    for _ in range(draw(st.integers(1, 10))):
        name = draw(st.sampled_from(NAMES))
        texts = [n for n, t in types.items() if t == "text"]
        docs = [n for n, t in types.items() if t == "docs"]
        kind = draw(st.sampled_from(["retrieve", "answer", "fstring", "const", "alias"]))
        query = draw(st.sampled_from(texts + ['"seed"', '"other"']))
        if kind == "retrieve":
            topk = draw(st.sampled_from(["", ", 3", ", topk=2"]))
            lines.append(f"{name} = retrieve({query}{topk})")
            types[name] = "docs"
        elif kind == "answer":
            d = draw(st.sampled_from(["", *(f", {x}" for x in docs)]))
            lines.append(f"{name} = answer({query}{d})")
            types[name] = "text"
        elif kind == "fstring":
            parts = draw(st.lists(st.sampled_from(texts + ["7"]), max_size=3))
            lines.append(f'{name} = f"<{" ".join("{" + p + "}" for p in parts)}>"')
            types[name] = "text"
        elif kind == "alias" and (texts or docs):
            src = draw(st.sampled_from(texts + docs))
            lines.append(f"{name} = {src}")
            types[name] = types[src]
        else:
            lines.append(f"{name} = {draw(st.sampled_from(['x', 'yy', 'zzz']))!r}")
            types[name] = "text"
    texts = [n for n, t in types.items() if t == "text"]
    lines.append(f"final_answer = answer({draw(st.sampled_from(texts + ['seed']))!s})".replace("(seed)", '("seed")'))
    if draw(st.booleans()) and texts:  # reassign after the final answer was computed
        lines.append(f'{draw(st.sampled_from(texts))} = "late"')
    return "\n".join(lines) + "\n"


def _calls(trace):
    return [(e.statement, e.kind, e.tool, e.inputs, e.output) for e in trace if isinstance(e, CallEvent)]


def _recorded(trace):
    """Tools answering from a recorded trace (an engine-level replay)."""
    import json

    table = {e.tool + json.dumps(e.inputs, sort_keys=True): e.output_value() for e in trace if isinstance(e, CallEvent)}

    def tool(name):
        def call(**kw):
            from pyrag_dsl.interpreter.trace import value_to_json

            return table[name + json.dumps({k: value_to_json(v) for k, v in kw.items()}, sort_keys=True)]

        return call

    return {"retrieve": tool("retrieve"), "answer": tool("answer")}


@settings(max_examples=150, deadline=None)
@given(reassigning_programs())
def test_sequential_dataflow_replay_agree(source):
    prog = parse_program(source, limits=FAST)
    seq = execute(prog, RecordingTools().as_dict())
    par = execute(prog, BatchingTools().as_dict(), mode="dataflow")
    assert seq.ok and par.ok, (seq.error, par.error)
    assert seq.variables == par.variables
    assert [(e.kind, e.statement) for e in seq.trace] == [(e.kind, e.statement) for e in par.trace]
    assert _calls(seq.trace) == _calls(par.trace)
    replayed = execute(prog, _recorded(seq.trace), cache=None)
    assert replayed.ok and replayed.variables == seq.variables


@settings(max_examples=100, deadline=None)
@given(reassigning_programs(), st.data())
def test_incremental_rerun_equals_a_fresh_run(source, data):
    """Boosting one retrieve and re-running it and its dependents gives what a run with the boost
    from the start gives, for every statement (values are per statement, reads follow bindings)."""
    prog = parse_program(source, limits=FAST)
    retrieves = [s.index for s in prog.statements if prog.calls(s, "retrieve")]
    if not retrieves:
        return
    i = data.draw(st.sampled_from(retrieves))
    node = prog.calls(prog.statements[i], "retrieve")[0]
    mode = data.draw(st.sampled_from(["sequential", "dataflow"]))

    tools = BatchingTools()
    run = Run(prog, tools.as_dict(), cache=CallCache(), mode=mode)
    supervise(run, run.run_all)
    run.force_argument(node, "topk", 9)
    supervise(run, lambda: run.run_statements(sorted({i, *prog.dependents(i)})))

    fresh = Run(prog, BatchingTools().as_dict(), cache=CallCache())
    fresh.force_argument(node, "topk", 9)
    supervise(fresh, fresh.run_all)
    assert run.error is None and fresh.error is None
    assert [run.value(k) for k in range(len(prog.statements))] == [fresh.value(k) for k in range(len(prog.statements))]
    assert run.variables == fresh.variables


def test_dataflow_starts_a_statement_as_soon_as_its_inputs_are_ready():
    """Uneven branches: the short branch's answer does not wait for the long branch's (no waves). The long
    retrieval returns only once answer("one") has started: waves (or sequential calls) would wait for it
    until the guard's timeout, and the run would fail."""
    one_started = threading.Event()

    def retrieve(query, topk):
        if query == "long" and not one_started.wait(10):
            raise RuntimeError('answer("one") did not start while retrieve("long") was running')
        return [{"id": query, "title": query, "text": query}]

    def answer(query, docs=None):
        if query == "one":
            one_started.set()
        return query

    src = (
        'd1 = retrieve("short")\nd2 = retrieve("long")\na1 = answer("one", d1)\na2 = answer("two", d2)\n'
        'final_answer = answer(f"{a1} {a2}")\n'
    )
    result = execute(parse_program(src, limits=FAST), {"retrieve": retrieve, "answer": answer}, mode="dataflow")
    assert result.ok, result.error
    assert [e.statement for e in result.trace] == [0, 1, 2, 3, 4]


class _HeldAnswers:
    """An answer tool whose calls are held until `release`; `active` and `peak` count the calls in flight."""

    def __init__(self):
        self.active = self.peak = 0
        self.changed = threading.Condition()
        self.released = threading.Event()

    def __call__(self, query, docs=None):
        with self.changed:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.changed.notify_all()
        self.released.wait(30)
        with self.changed:
            self.active -= 1
        return query

    def peak_while_held(self, prog, max_workers):
        """Runs `prog` with the calls held until `max_workers` of them are in flight at once (a hang guard
        bounds the wait: fewer workers fail the test), then gives a third of a second to any call beyond them
        before letting all go; the most calls in flight at once."""
        run = threading.Thread(
            target=execute, args=(prog, {"answer": self}), kwargs={"mode": "dataflow", "max_workers": max_workers}
        )
        run.start()
        try:
            with self.changed:
                assert self.changed.wait_for(lambda: self.active >= max_workers, timeout=60), self.active
                self.changed.wait_for(lambda: self.active > max_workers, timeout=0.3)  # detects extra workers
        finally:
            self.released.set()
            run.join(60)
        return self.peak


def test_max_workers_is_honoured():
    """Eight independent answers, held until the test lets them go: with 8 workers all eight are in flight at
    once; with 2 exactly two are, and no third starts."""
    src = "".join(f'a{i} = answer("q{i}")\n' for i in range(8)) + 'final_answer = "x"\n'
    prog = parse_program(src, limits=FAST)
    assert _HeldAnswers().peak_while_held(prog, max_workers=8) == 8
    assert _HeldAnswers().peak_while_held(prog, max_workers=2) == 2
