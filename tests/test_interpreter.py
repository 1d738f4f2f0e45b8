import threading
import time

import pytest
from conftest import RecordingTools
from corpus import VALID_PROGRAMS

from pyrag_dsl import CallCache, Doc, Docs, Limits, execute, parse_program
from pyrag_dsl.grammar import LimitExceeded, ToolError
from pyrag_dsl.interpreter import AnswerEvent, AssignEvent, ErrorEvent, RetrieveEvent, Run

pytestmark = pytest.mark.network_free


def test_reference_example_trace():
    tools = RecordingTools(
        {
            "Jed Hoyer born": "December 7, 1973",
            "John William Henry II born": "September 13, 1949",
            "Who is older": "John William Henry II",
        }
    )
    result = execute(parse_program(VALID_PROGRAMS["jed_hoyer"]), tools.as_dict(), settings={"topk": 5})
    assert result.ok and result.error is None
    assert result.final_answer == "John William Henry II"
    assert [type(e) for e in result.trace] == [RetrieveEvent, AnswerEvent, RetrieveEvent, AnswerEvent, AnswerEvent]
    assert [e.step for e in result.trace] == [1, 2, 3, 4, 5]
    first = result.trace[0]
    assert first.inputs == {"query": "When was Jed Hoyer born?", "topk": 5}
    assert first.target == "docs1" and first.line == 1 and first.statement == 0
    assert len(first.output) == 5 and first.output[0]["title"] == "T0"
    last = result.trace[4]
    assert last.inputs["docs"] is None
    assert last.inputs["query"] == (
        "Given: Jed Hoyer was born December 7, 1973, John William Henry II was born September 13, 1949. "
        "Answer the question: Who is older, Jed Hoyer or John William Henry II?"
    )
    assert last.output == "John William Henry II"
    assert last.line == 7 and last.end_line == 11 and last.source.startswith("final_answer = answer(")
    assert all(e.start <= e.end for e in result.trace)
    assert [c[0] for c in tools.calls] == ["retrieve", "answer", "retrieve", "answer", "answer"]
    assert isinstance(result.variables["docs1"], Docs)
    assert result.variables["jed_birth"] == "December 7, 1973"


def test_topk_run_default_and_explicit():
    tools = RecordingTools()
    execute(parse_program(VALID_PROGRAMS["virginia_bruce"]), tools.as_dict(), settings={"topk": 3})
    assert [c[1]["topk"] for c in tools.calls if c[0] == "retrieve"] == [3, 10]
    tools = RecordingTools()
    execute(parse_program(VALID_PROGRAMS["virginia_bruce"]), tools.as_dict())
    assert [c[1]["topk"] for c in tools.calls if c[0] == "retrieve"] == [5, 10]  # signature fallback


def test_nested_calls_and_assign_events():
    tools = RecordingTools({"Eiffel": "France", "capital of France": "Paris"})
    result = execute(parse_program(VALID_PROGRAMS["nested_and_keywords"]), tools.as_dict())
    assert result.ok
    kinds = [e.kind for e in result.trace]
    assert kinds == ["assign", "retrieve", "answer", "assign", "retrieve", "answer", "answer"]
    assert result.trace[1].target is None  # nested call: the statement's value is the answer
    assert result.trace[2].target == "country"
    assert isinstance(result.trace[3], AssignEvent) and result.trace[3].output == "What is the capital of France?"
    assert result.final_answer.startswith("A(Given: the capital")


def test_memo_within_run_and_across_runs():
    src = 'a = answer("same")\nb = answer("same")\nfinal_answer = answer(f"{a}{b}")\n'
    tools = RecordingTools()
    cache = CallCache()
    result = execute(parse_program(src), tools.as_dict(), cache=cache)
    assert len(tools.calls) == 2 and result.cache_hits == 1
    assert [e.cached for e in result.trace] == [False, True, False]
    again = execute(parse_program(src), tools.as_dict(), cache=cache)
    assert len(tools.calls) == 2 and again.cache_hits == 3 and again.final_answer == result.final_answer


def test_tool_exception_becomes_tool_error_without_host_objects():
    class Secret:
        pass

    secret = Secret()

    def retrieve(query, topk):
        raise RuntimeError("backend down") from ValueError(secret)

    tools = {"retrieve": retrieve, "answer": lambda query, docs: "x"}
    result = execute(parse_program(VALID_PROGRAMS["jed_hoyer"]), tools)
    err = result.error
    assert isinstance(err, ToolError)
    assert err.message == "retrieve() failed: RuntimeError: backend down"
    assert err.__cause__ is None and err.__context__ is None and err.__traceback__ is None
    assert all(isinstance(v, (str, int, float, bool, type(None))) for v in err.details.values())
    assert isinstance(result.trace[-1], ErrorEvent) and result.trace[-1].error["type"] == "ToolError"


@pytest.mark.parametrize("exc", [KeyboardInterrupt("ctrl-c"), SystemExit(3), GeneratorExit(), MemoryError()])
def test_base_exceptions_from_tools_are_contained(exc):
    def answer(query, docs):
        raise exc

    result = execute(parse_program('final_answer = answer("q")\n'), {"answer": answer})
    assert isinstance(result.error, ToolError)
    assert type(exc).__name__ in result.error.message


def test_ctrl_c_during_an_inline_tool_call_is_the_users():
    """Without timeouts the walk runs in the caller's thread: Ctrl-C there stops the run (it is not a tool
    failure that the repair loop would go on from)."""
    from pyrag_dsl import Limits

    def answer(query, docs):
        raise KeyboardInterrupt

    program = parse_program('final_answer = answer("q")\n', limits=Limits(tool_timeout_s=None, run_timeout_s=None))
    with pytest.raises(KeyboardInterrupt):
        execute(program, {"answer": answer})
    with pytest.raises(KeyboardInterrupt):
        execute(program, {"answer": answer}, mode="dataflow")


def test_hostile_str_in_tool_exception():
    class Nasty(Exception):
        def __str__(self):
            raise RuntimeError("boom")

    def answer(query, docs):
        raise Nasty()

    result = execute(parse_program('final_answer = answer("q")\n'), {"answer": answer})
    assert result.error.message == "answer() failed: Nasty"


def test_error_keeps_earlier_results():
    calls = []

    def answer(query, docs):
        calls.append(query)
        if query == "second":
            raise ValueError("nope")
        return "first answer"

    result = execute(parse_program('a = answer("first")\nb = answer("second")\nfinal_answer = b\n'), {"answer": answer})
    assert result.variables == {"a": "first answer"}
    assert [e.kind for e in result.trace] == ["answer", "error"]
    assert result.trace[1].statement == 1
    assert result.final_answer is None


@pytest.mark.parametrize(
    "bad, kind", [(5, ToolError), (None, ToolError), (b"bytes", ToolError), ("x" * 101, LimitExceeded)]
)
def test_bad_text_results(bad, kind):
    result = execute(
        parse_program('final_answer = answer("q")\n', limits=Limits(max_string_length=100)),
        {"answer": lambda query, docs: bad},
    )
    assert isinstance(result.error, kind)


def test_str_subclass_result_becomes_plain_str():
    class Sneaky(str):
        def __str__(self):
            return "sneaky"

    result = execute(parse_program('final_answer = answer("q")\n'), {"answer": lambda query, docs: Sneaky("plain")})
    assert type(result.variables["final_answer"]) is str and result.final_answer == "plain"


def test_docs_conversion_from_search_r1_rows():
    rows = [
        {"document": {"id": "4664484", "contents": '"Jed Hoyer"\nJed Hoyer (born December 7, 1973)'}, "score": 0.82},
        {"id": 7, "contents": "no title line"},
    ]
    result = execute(
        parse_program('d = retrieve("q")\nfinal_answer = answer("q", d)\n'),
        {"retrieve": lambda query, topk: rows, "answer": lambda query, docs: docs[0].title},
    )
    docs = result.variables["d"]
    assert docs[0] == Doc(id="4664484", title="Jed Hoyer", text="Jed Hoyer (born December 7, 1973)", score=0.82)
    assert docs[1] == Doc(id="7", title="", text="no title line", score=None)
    assert result.final_answer == "Jed Hoyer"


@pytest.mark.parametrize("bad", ["a string", {"id": 1}, 5, [object()], [{"id": "1", "score": "high"}]])
def test_bad_docs_results(bad):
    result = execute(parse_program('d = retrieve("q")\nfinal_answer = "x"\n'), {"retrieve": lambda query, topk: bad})
    assert isinstance(result.error, ToolError)


def test_too_many_docs():
    docs = [{"id": str(i), "text": "t"} for i in range(11)]
    result = execute(
        parse_program('d = retrieve("q")\nfinal_answer = "x"\n', limits=Limits(max_docs=10)),
        {"retrieve": lambda query, topk: docs},
    )
    assert isinstance(result.error, LimitExceeded) and result.error.details["limit"] == "max_docs"


def test_runtime_fstring_doubling_is_stopped_before_building():
    src = 'a = answer("q")\nb = f"{a}{a}"\nc = f"{b}{b}"\nfinal_answer = c\n'
    result = execute(
        parse_program(src, limits=Limits(max_string_length=1000)), {"answer": lambda query, docs: "x" * 300}
    )
    assert isinstance(result.error, LimitExceeded)
    assert result.error.span.line == 3
    assert set(result.variables) == {"a", "b"}


def test_trace_size_limit():
    src = 'a = answer("q")\nb = answer("r")\nfinal_answer = "x"\n'
    result = execute(parse_program(src, limits=Limits(max_trace_bytes=800)), {"answer": lambda query, docs: "y" * 100})
    assert isinstance(result.error, LimitExceeded) and result.error.details["limit"] == "max_trace_bytes"
    assert "a" in result.variables and "b" not in result.variables


def test_runtime_call_budget_counts_reexecution():
    prog = parse_program('d = retrieve("q")\nfinal_answer = "x"\n', limits=Limits(max_tool_calls=2))
    tools = RecordingTools()
    run = Run(prog, tools.as_dict(), cache=None)
    run.run_statements([0, 0, 0])
    assert len(tools.calls) == 2
    assert isinstance(run.error, LimitExceeded) and run.error.details["limit"] == "max_tool_calls"


def test_tool_timeout_abandons_the_call_and_keeps_earlier_results():
    release, returned = threading.Event(), threading.Event()

    def answer(query, docs):
        if query == "slow":
            try:
                release.wait(30)  # held until the test lets it go, after execute() has returned
            finally:
                returned.set()
        return "ok"

    prog = parse_program(
        'a = answer("fast")\nb = answer("slow")\nfinal_answer = b\n', limits=Limits(tool_timeout_s=0.2)
    )
    try:
        result = execute(prog, {"answer": answer})
        assert not returned.is_set()  # execute() returned while the slow call was still held: abandoned
    finally:
        release.set()
    assert isinstance(result.error, LimitExceeded) and result.error.details["limit"] == "tool_timeout_s"
    assert result.error.span.line == 2
    assert result.variables == {"a": "ok"}
    assert returned.wait(10)  # the abandoned call returns late; nothing of it lands in the result
    assert "b" not in result.variables and [e.kind for e in result.trace] == ["answer", "error"]


def test_run_timeout():
    def answer(query, docs):
        time.sleep(0.15)
        return "ok"

    src = "".join(f'a{i} = answer("q{i}")\n' for i in range(10)) + 'final_answer = "x"\n'
    prog = parse_program(src, limits=Limits(tool_timeout_s=5, run_timeout_s=0.4))
    result = execute(prog, {"answer": answer})
    assert isinstance(result.error, LimitExceeded) and result.error.details["limit"] == "run_timeout_s"
    assert 1 <= len(result.variables) <= 4


def test_without_timeouts_runs_inline():
    seen = []
    prog = parse_program('final_answer = answer("q")\n', limits=Limits(tool_timeout_s=None, run_timeout_s=None))
    execute(prog, {"answer": lambda query, docs: seen.append(threading.current_thread()) or "x"})
    assert seen == [threading.current_thread()]


def test_missing_tool_implementation_is_reported_before_running():
    tools = RecordingTools()
    with pytest.raises(ValueError, match="answer"):
        execute(parse_program(VALID_PROGRAMS["jed_hoyer"]), {"retrieve": tools.retrieve})
    assert tools.calls == []


def test_execute_requires_validated_program():
    with pytest.raises(TypeError):
        execute('final_answer = "x"\n', {})  # type: ignore[arg-type]


def test_on_event_streams_events():
    seen = []
    tools = RecordingTools()
    result = execute(parse_program(VALID_PROGRAMS["jed_hoyer"]), tools.as_dict(), on_event=seen.append)
    assert seen == result.trace


def test_package_never_calls_exec_eval_or_compile():
    import ast
    import pathlib

    import pyrag_dsl

    banned = {"exec", "eval", "compile", "__import__"}
    root = pathlib.Path(pyrag_dsl.__file__).parent
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                f = node.func
                name = (
                    f.id
                    if isinstance(f, ast.Name)
                    else f.attr
                    if (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "builtins")
                    else None
                )
                assert name not in banned, f"{name}() called in {path}:{node.lineno}"


def test_one_max_workers_default_for_the_library_and_the_pipeline():
    """execute(), Run, the pipeline's config, the prefetcher and the settings read one default (config.limits)."""
    import inspect

    from pyrag_dsl.config.limits import DEFAULT_MAX_WORKERS
    from pyrag_dsl.config.settings import PipelineSettings
    from pyrag_dsl.interpreter import execute
    from pyrag_dsl.pipeline.prefetch import Prefetcher
    from pyrag_dsl.pipeline.runner import PipelineConfig

    defaults = [inspect.signature(f).parameters["max_workers"].default for f in (execute, Run, Prefetcher)]
    assert defaults == [DEFAULT_MAX_WORKERS] * 3
    assert PipelineConfig().max_workers == PipelineSettings().max_workers == DEFAULT_MAX_WORKERS == 8
