"""The tool boundary is closed: whatever a tool returns or raises, the run ends with a typed error
(or a clean value), never a host exception out of execute()."""

import math
import threading
import time
from collections.abc import Mapping

import pytest
from gate import Gate

import pyrag_dsl.interpreter.supervisor as sv
from pyrag_dsl import Doc, Docs, Limits, ToolSpec, ValueType, execute, parse_program
from pyrag_dsl.grammar import DEFAULT_LANGUAGE, ArgumentOutOfRange, LimitExceeded, Param, ToolError, validate

pytestmark = pytest.mark.network_free

PROG = 'd = retrieve("q")\nfinal_answer = answer("a", d)\n'


class RaisingMapping(Mapping):
    def __getitem__(self, k):
        raise RuntimeError("boom")

    def __iter__(self):
        return iter(["id", "text"])

    def __len__(self):
        return 2

    def __contains__(self, k):
        return True

    def get(self, k, default=None):
        raise RuntimeError("get boom")


def _self_ref():
    d = {"score": 1.0}
    d["document"] = d
    return [d]


class EvilStr(str):
    def replace(self, *a):
        raise RuntimeError("hostile replace")

    def __getitem__(self, i):
        raise RuntimeError("hostile slice")


class HostileStrError(Exception):
    def __str__(self):
        return EvilStr("hostile message")


class RaisingStrError(Exception):
    def __str__(self):
        raise RuntimeError("no str for you")


class EndlessList(list):
    def __iter__(self):
        while True:
            yield {"id": "x", "text": "y"}


BAD_RESULTS = {
    "id None": [{"id": None, "text": "t"}],
    "id inf": [{"id": math.inf, "text": "t"}],
    "id huge int": [{"id": 10**40, "text": "t"}],
    "score 10**400": [{"id": "1", "text": "t", "score": 10**400}],
    "score nan": [{"id": "1", "text": "t", "score": math.nan}],
    "score text": [{"id": "1", "text": "t", "score": "high"}],
    "self-referencing document": _self_ref(),
    "mapping whose get raises": [RaisingMapping()],
    "Doc with non-text fields": [Doc(id=None, title=1, text=b"x")],  # type: ignore[arg-type]
    "Docs holding junk": Docs(("not a doc",)),  # type: ignore[arg-type]
    "not a list": "just text",
    "endless list": EndlessList(),
    "document without text": [{"id": "1", "title": "only a title"}],
}


@pytest.mark.parametrize("name", sorted(BAD_RESULTS))
def test_bad_retrieve_results_are_typed_errors(name):
    result = execute(
        parse_program(PROG), {"retrieve": lambda query, topk: BAD_RESULTS[name], "answer": lambda query, docs: "x"}
    )
    assert isinstance(result.error, (ToolError, LimitExceeded)), name
    assert result.error.span.line == 1
    assert "final_answer" not in result.variables


@pytest.mark.parametrize(
    "exc",
    [HostileStrError(), RaisingStrError(), RuntimeError("a\ud800b" * 500), SystemExit(3)],
    ids=["hostile-str", "raising-str", "surrogates", "SystemExit"],
)
def test_any_exception_from_a_tool_becomes_a_plain_tool_error(exc):
    def answer(query, docs):
        raise exc

    result = execute(parse_program('final_answer = answer("q")\n'), {"answer": answer})
    assert isinstance(result.error, ToolError)
    message = result.error.message
    assert type(message) is str and len(message) < 400 and "\ud800" not in message
    assert result.error.to_dict()["cause"]


def _int_tool_language():
    return DEFAULT_LANGUAGE.with_tool(ToolSpec("count", (Param("query", ValueType.TEXT),), ValueType.INT, "Count."))


@pytest.mark.parametrize("value", [10**20, -(10**5000), True, 2.5], ids=["1e20", "-1e5000", "bool", "float"])
def test_int_results_out_of_range_or_of_the_wrong_type(value):
    prog = parse_program('n = count("q")\nfinal_answer = f"{n}"\n', _int_tool_language())
    result = execute(prog, {"count": lambda query: value})
    assert isinstance(result.error, ToolError)


def test_an_int_in_range_is_a_value():
    prog = parse_program('n = count("q")\nfinal_answer = f"{n}"\n', _int_tool_language())
    assert execute(prog, {"count": lambda query: 42}).final_answer == "42"


def test_result_conversion_runs_inside_the_tool_time_limit():
    """Reading the result is held: execute() still returns, with the tool timeout, while the read is held."""
    gate = Gate()

    class HeldMapping(dict):
        def __getitem__(self, k):
            gate.hold()
            return "x"

        def __contains__(self, k):
            return True

    try:
        result = execute(
            parse_program(PROG, limits=Limits(tool_timeout_s=0.3)),
            {"retrieve": lambda query, topk: [HeldMapping()], "answer": lambda query, docs: "x"},
        )
        assert gate.entered.is_set() and not gate.left.is_set()  # returned while the conversion was held
    finally:
        gate.release()
    assert isinstance(result.error, LimitExceeded) and result.error.details["limit"] == "tool_timeout_s"


def test_abandoned_calls_are_capped(monkeypatch):
    """Calls abandoned by earlier tests may return at any time (the count goes down), so the cap is set only
    once this test's own three calls are abandoned and held: the count is then at least 3 whatever the others do."""
    already = sv.ABANDONED.count  # calls abandoned by earlier tests that have not returned yet
    monkeypatch.setattr(sv, "MAX_ABANDONED_CALLS", already + 1000)  # no cap while this test's calls are abandoned
    release = threading.Event()
    calls = []

    def answer(query, docs):
        calls.append(query)
        release.wait(20)
        return "late"

    prog = parse_program('final_answer = answer("q")\n', limits=Limits(tool_timeout_s=0.1))
    try:
        for _ in range(3):
            r = execute(prog, {"answer": answer})
            assert r.error.details["limit"] == "tool_timeout_s"
        assert sv.ABANDONED.count >= 3
        monkeypatch.setattr(sv, "MAX_ABANDONED_CALLS", 3)  # reached by this test's held calls alone
        refused = execute(prog, {"answer": answer})
        assert refused.error.details["limit"] == "abandoned_calls"
        assert len(calls) == 3  # no fourth thread was started
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while sv.ABANDONED.count > already and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sv.ABANDONED.count <= already
    assert execute(prog, {"answer": lambda query, docs: "ok"}).final_answer == "ok"


# -- argument ranges ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("topk", ["0", "1001", "-3"])
def test_topk_out_of_range_is_a_static_error(topk):
    src = f'd = retrieve("q", topk={topk})\nfinal_answer = answer("a", d)\n'
    if topk.startswith("-"):
        assert not validate(src).ok  # a unary minus is not in the language at all
        return
    errors = validate(src).errors
    assert [type(e) for e in errors] == [ArgumentOutOfRange]
    assert "from 1 to 1000" in errors[0].message


def test_topk_bound_follows_the_limits():
    src = 'd = retrieve("q", 60)\nfinal_answer = answer("a", d)\n'
    assert validate(src).ok
    assert [e.kind for e in validate(src, limits=Limits(max_topk=50)).errors] == ["ArgumentOutOfRange"]


def test_topk_from_the_run_settings_is_checked_before_the_call():
    calls = []
    prog = parse_program(PROG)
    result = execute(
        prog,
        {"retrieve": lambda query, topk: calls.append(topk) or [], "answer": lambda query, docs: "x"},
        settings={"topk": 0},
    )
    assert isinstance(result.error, ArgumentOutOfRange) and calls == []


# -- a Docs value's memo (cached JSON form, size, hash) is the engine's, never the tool's -------------------


def test_a_docs_memo_cannot_be_given_to_the_constructor():
    with pytest.raises(TypeError):
        Docs((Doc("1", "t", "x"),), _memo={"hash": "x"})  # type: ignore[call-arg]


FORGED_MEMOS = {
    "hash not an int": {"hash": "x"},
    "size not an int": {"size": "big"},
    "negative size": {"size": -(10**12)},
    "forged json": {"json": [{"id": "fake", "title": "", "text": "innocent", "score": None}]},
}


@pytest.mark.parametrize("name", sorted(FORGED_MEMOS))
@pytest.mark.parametrize("mode", ["sequential", "dataflow"])
def test_a_memo_set_by_the_tool_is_ignored(name, mode):
    """A tool that plants a memo (object.__setattr__ gets past frozen) gets neither a crash, nor a trace
    with other documents than the ones passed on, nor a way around the trace budget."""
    real = Docs(tuple(Doc(str(i), "t", "x" * 1000) for i in range(20)))
    seen = []

    def retrieve(query, topk):
        object.__setattr__(real, "_memo", dict(FORGED_MEMOS[name]))
        return real

    def answer(query, docs=None):
        seen.append(docs)
        return "ok"

    result = execute(parse_program(PROG), {"retrieve": retrieve, "answer": answer}, mode=mode)
    assert result.error is None and result.final_answer == "ok"
    assert seen[0] == real
    retrieved = next(e for e in result.trace if e.kind == "retrieve")
    assert [d["id"] for d in retrieved.output] == [str(i) for i in range(20)]
    # the budget counts the real size: 20 kB of documents in a trace allowed 10 kB stops the run
    small = execute(
        parse_program(PROG, limits=Limits(max_trace_bytes=10_000)), {"retrieve": retrieve, "answer": answer}, mode=mode
    )
    assert isinstance(small.error, LimitExceeded) and small.error.details["limit"] == "max_trace_bytes"


def test_a_memo_changed_after_the_call_does_not_reach_the_trace():
    """A tool that keeps the object it returned and rewrites its memo before returning it again."""
    real = Docs((Doc("1", "t", "real text"),))

    def retrieve(query, topk):
        if query == "b":
            real._memo.update(json=[{"id": "fake", "title": "", "text": "fake", "score": None}], size=1, hash=0)
        return real

    src = 'd = retrieve("a")\ne = retrieve("b")\nfinal_answer = answer("q", e)\n'
    result = execute(parse_program(src), {"retrieve": retrieve, "answer": lambda query, docs: "ok"})
    assert result.error is None
    outputs = [e.output for e in result.trace if e.kind == "retrieve"]
    assert [rows[0]["text"] for rows in outputs] == ["real text", "real text"]


# -- batched retrieval: a hostile batch() result ---------------------------------------------------------


class _ShortList(list):
    """A list whose len() says 3 but whose iteration yields one item."""

    def __iter__(self):
        yield list.__getitem__(self, 0)


class _HostileBatchRetriever:
    def __init__(self, batch_result):
        self.batch_result = batch_result

    def __call__(self, query, topk):
        return [Doc("1", "t", query)]

    def batch(self, calls):
        return self.batch_result(calls)


class _HeldStrError(Exception):
    """An exception whose description (its str) is held at a Gate."""

    def __init__(self, gate):
        super().__init__()
        self.gate = gate

    def __str__(self):
        self.gate.hold()
        return "slow"


def _raise_held(calls, gate):
    raise _HeldStrError(gate)


BAD_BATCHES = {
    "len and iteration disagree": lambda calls: _ShortList([[Doc("1", "t", c["query"])] for c in calls]),
    "too few results": lambda calls: [[Doc("1", "t", "x")]],
    "not a list": lambda calls: "nope",
}


@pytest.mark.parametrize("name", sorted(BAD_BATCHES))
def test_a_bad_batch_result_is_a_typed_error(name):
    src = 'd1 = retrieve("a")\nd2 = retrieve("b")\nd3 = retrieve("c")\nfinal_answer = answer("q", d1)\n'
    result = execute(
        parse_program(src),
        {"retrieve": _HostileBatchRetriever(BAD_BATCHES[name]), "answer": lambda query, docs: "x"},
        mode="dataflow",
    )
    assert isinstance(result.error, ToolError)
    assert "final_answer" not in result.variables


class _RaisingList(list):
    def __init__(self, items, gate):
        super().__init__(items)
        self.gate = gate

    def __iter__(self):
        raise _HeldStrError(self.gate)


@pytest.mark.parametrize(
    "batch",
    [_raise_held, lambda calls, gate: _RaisingList([[], []], gate)],
    ids=["batch raises", "iterating the result raises"],
)
def test_a_batch_exception_is_described_inside_the_time_limit(batch):
    """Describing the batch's exception is held: execute() still returns, with the tool timeout, meanwhile."""
    gate = Gate()
    src = 'd1 = retrieve("a")\nd2 = retrieve("b")\nfinal_answer = answer("q", d1)\n'
    try:
        result = execute(
            parse_program(src, limits=Limits(tool_timeout_s=0.3)),
            {"retrieve": _HostileBatchRetriever(lambda calls: batch(calls, gate)), "answer": lambda query, docs: "x"},
            mode="dataflow",
        )
        assert gate.entered.is_set() and not gate.left.is_set()  # returned while the description was held
    finally:
        gate.release()
    assert isinstance(result.error, LimitExceeded) and result.error.details["limit"] == "tool_timeout_s"


# -- limits that would switch themselves off -------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value",
    [
        ("max_string_length", math.nan),
        ("max_string_length", math.inf),
        ("max_string_length", True),
        ("max_trace_bytes", 1e9),
        ("max_depth", "12"),
        ("tool_timeout_s", math.nan),
        ("run_timeout_s", math.inf),
        ("tool_timeout_s", True),
        ("run_timeout_s", -1),
        ("max_tool_calls", 0),
    ],
)
def test_limits_refuse_values_that_disable_them(field, value):
    with pytest.raises(ValueError, match=field):
        Limits(**{field: value})


def test_a_trace_header_with_nan_limits_is_refused():
    from pyrag_dsl.pipeline.recorded_config import RecordedConfigError, limits_from_json

    with pytest.raises(RecordedConfigError, match="max_string_length"):
        limits_from_json({"max_string_length": math.nan})
    assert limits_from_json({"tool_timeout_s": 5, "run_timeout_s": None}).tool_timeout_s == 5
