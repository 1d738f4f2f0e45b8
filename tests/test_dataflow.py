"""Dataflow mode: independent statements run concurrently, retrieves are batched, results equal sequential."""

import threading

import pytest
from conftest import RecordingTools
from corpus import JED_HOYER
from hypothesis import given, settings
from test_properties import well_typed_programs

from pyrag_dsl import CallCache, Limits, execute, parse_program
from pyrag_dsl.grammar import LimitExceeded, ToolError
from pyrag_dsl.interpreter import dumps_jsonl, loads_jsonl

pytestmark = pytest.mark.network_free


class BatchingTools(RecordingTools):
    """Recording tools whose retrieve also takes batches. `meet`: answers whose query contains one of these
    texts wait for each other at a barrier, so they pass only when they run at the same time (sequential
    calls break the barrier after `timeout_s` and the answer raises)."""

    def __init__(self, meet: tuple[str, ...] = (), timeout_s: float = 10.0, **kw):
        super().__init__(**kw)
        self.batches: list[list[str]] = []
        self.meet = meet
        self.barrier = threading.Barrier(len(meet), timeout=timeout_s) if meet else None
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()
        self.retrieve_tool = _WithBatch(self)

    def answer(self, query, docs):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            if self.barrier is not None and any(text in query for text in self.meet):
                self.barrier.wait()  # BrokenBarrierError (a ToolError) unless the others came meanwhile
        finally:
            with self.lock:
                self.active -= 1
        return super().answer(query, docs)

    def as_dict(self):
        return {"retrieve": self.retrieve_tool, "answer": self.answer}


class _WithBatch:
    def __init__(self, tools):
        self.tools = tools

    def __call__(self, query, topk):
        return self.tools.retrieve(query, topk)

    def batch(self, calls):
        self.tools.batches.append([c["query"] for c in calls])
        return [self.tools.retrieve(**c) for c in calls]


def test_reference_example_batches_retrievals_and_overlaps_answers():
    tools = BatchingTools(meet=("Jed Hoyer born", "John William Henry II born"))
    result = execute(parse_program(JED_HOYER), tools.as_dict(), mode="dataflow")
    assert result.ok, result.error  # the two lookups met at the barrier: they were answered at the same time
    assert tools.batches == [["When was Jed Hoyer born?", "When was John William Henry II born?"]]
    assert tools.peak == 2
    # the trace is in statement order, as in sequential mode, whatever order the calls finished in
    assert [(e.kind, e.statement) for e in result.trace] == [
        ("retrieve", 0),
        ("answer", 1),
        ("retrieve", 2),
        ("answer", 3),
        ("answer", 4),
    ]
    assert [e.step for e in result.trace] == [1, 2, 3, 4, 5]


def test_dataflow_equals_sequential_on_the_reference_example():
    seq = execute(parse_program(JED_HOYER), RecordingTools().as_dict())
    par = execute(parse_program(JED_HOYER), BatchingTools().as_dict(), mode="dataflow")
    assert seq.variables == par.variables and seq.final_answer == par.final_answer


@settings(max_examples=60, deadline=None)
@given(well_typed_programs())
def test_dataflow_equals_sequential(source):
    fast = Limits(tool_timeout_s=None, run_timeout_s=None)
    seq = execute(parse_program(source, limits=fast), RecordingTools().as_dict())
    par = execute(parse_program(source, limits=fast), BatchingTools().as_dict(), mode="dataflow")
    assert seq.ok and par.ok
    assert seq.variables == par.variables
    key = lambda e: (e.statement, e.kind, getattr(e, "tool", None), str(getattr(e, "inputs", None)))  # noqa: E731
    assert sorted(map(key, seq.trace)) == sorted(map(key, par.trace))
    assert loads_jsonl(dumps_jsonl(par.trace))[1] == par.trace


def test_an_error_gives_the_sequential_result_and_keeps_calls_in_the_cache():
    def answer(query, docs):
        if "Jed" in query:
            raise RuntimeError("model down")
        return "1949"

    tools = BatchingTools()
    cache = CallCache()
    result = execute(
        parse_program(JED_HOYER), {"retrieve": tools.retrieve_tool, "answer": answer}, mode="dataflow", cache=cache
    )
    seq = execute(parse_program(JED_HOYER), {"retrieve": tools.retrieve_tool, "answer": answer})
    assert isinstance(result.error, ToolError) and result.error.span.line == 2
    assert result.error.to_dict() == seq.error.to_dict()
    assert result.variables == seq.variables  # statement 3 ran concurrently, but is not part of the result
    assert [(e.kind, e.statement) for e in result.trace] == [(e.kind, e.statement) for e in seq.trace]
    # what ran concurrently is not lost: a repaired program reuses it from the call cache
    asked = []
    again = execute(
        parse_program(JED_HOYER),
        {"retrieve": tools.retrieve_tool, "answer": lambda query, docs: asked.append(query) or "1949"},
        cache=cache,
    )
    john = [e for e in again.trace if e.kind == "answer" and e.inputs["query"].startswith("When was John")]
    assert john and all(e.cached for e in john) and not any(q.startswith("When was John") for q in asked)


def test_batch_budget_and_timeout_in_dataflow_mode():
    src = 'a = retrieve("x")\nb = retrieve("y")\nc = retrieve("z")\nfinal_answer = "done"\n'
    limits = Limits(max_tool_calls=3)
    ok = execute(parse_program(src, limits=limits), BatchingTools().as_dict(), mode="dataflow")
    assert ok.ok and ok.tool_calls == 3

    release = threading.Event()

    def slow(query, docs):
        release.wait(5)
        return "late"

    prog = parse_program(
        'x = answer("a")\ny = answer("b")\nfinal_answer = f"{x}{y}"\n', limits=Limits(tool_timeout_s=0.2)
    )
    result = execute(prog, {"answer": slow}, mode="dataflow")
    release.set()
    assert isinstance(result.error, LimitExceeded) and result.error.details["limit"] == "tool_timeout_s"
