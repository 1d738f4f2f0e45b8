"""Streamed plan execution: statements run while the Plan reply is still streaming; the finished program
then answers those calls from the call cache, with the same result as a non-streamed run."""

import time

import pytest
from corpus import JED_HOYER
from gate import Gate
from scripted_llm import ScriptedLLM
from test_pipeline import QUESTION, default_handler, make_pipeline

from pyrag_dsl.agents.llm import LLMClient, LLMConfig
from pyrag_dsl.grammar import DEFAULT_LANGUAGE, Limits, Param, ToolSpec, ValueType, validate
from pyrag_dsl.interpreter import CallCache
from pyrag_dsl.pipeline import Pipeline, PipelineConfig
from pyrag_dsl.pipeline.prefetch import Prefetcher


def test_streamed_run_starts_statements_before_the_plan_is_complete(bm25):
    with ScriptedLLM(default_handler(), line_delay=0.15) as llm:
        plain = make_pipeline(llm.url, bm25, parallel=True, stream_plan=False).run(QUESTION)
    with ScriptedLLM(default_handler(), line_delay=0.15) as llm:
        streamed = make_pipeline(llm.url, bm25, parallel=True, stream_plan=True).run(QUESTION)
        plan_request = next(i for i, r in enumerate(llm.requests) if r["role"] == "plan")
        assert llm.requests[plan_request].get("stream") is True
        answer_requests = [r for r in llm.requests if r["role"] == "answer_docs"]
    assert streamed.ok and plain.ok
    assert streamed.final_answer == plain.final_answer and streamed.variables == plain.variables
    assert streamed.generated_code == plain.generated_code
    event = next(e for e in streamed.trace if e.kind == "plan_stream")
    early = [d for d in event.dispatched if d["at_s"] < event.plan_done_s]
    assert {d["statement"] for d in early} >= {0, 1, 2}  # both retrievals and the first answer started early
    assert answer_requests  # the answers were asked while the plan streamed, and not asked again:
    assert streamed.llm_calls["answer"] == plain.llm_calls["answer"]
    assert streamed.retrieval_calls == plain.retrieval_calls
    calls = [e for e in streamed.trace if e.kind in ("retrieve", "answer")]
    assert any(e.cached for e in calls)  # the program's own run found them in the cache


def _tools(calls):
    def retrieve(query, topk):
        calls.append(("retrieve", query))
        return [{"id": query, "title": query, "text": query}]

    def answer(query, docs=None):
        calls.append(("answer", query))
        return "A:" + query

    return {"retrieve": retrieve, "answer": answer}


def _settle(pre, cap_s=30.0):
    """Wait until every dispatched statement is done, those dispatched when others finished included (a
    statement's end and the dispatch of what it unblocks happen under the prefetcher's lock)."""
    end = time.monotonic() + cap_s  # a hang guard only
    while True:
        with pre.lock:
            if all(d.done_s is not None for d in pre.report.dispatched):
                return
        assert time.monotonic() < end, "dispatched statements still running"
        time.sleep(0.005)


def test_prefetcher_dispatches_only_valid_prefixes_and_respects_dependencies():
    calls = []
    pre = Prefetcher(DEFAULT_LANGUAGE, Limits(), _tools(calls), CallCache(), {"topk": 5})
    pre.feed('d1 = retrieve("one")\nx = undefined_thing\n')  # an invalid prefix: nothing starts
    assert pre.report.dispatched == []
    pre2 = Prefetcher(DEFAULT_LANGUAGE, Limits(), _tools(calls), CallCache(), {"topk": 5})
    pre2.feed('d1 = retrieve("one")\n')  # the last statement may still be continued: it waits
    assert pre2.report.dispatched == []
    pre2.feed('d1 = retrieve("one")\na1 = answer("q", d1)\n')
    assert [d.statement for d in pre2.report.dispatched] == [0]
    pre2.feed('d1 = retrieve("one")\na1 = answer("q", d1)\nfinal_answer = answer(f"{a1}")\n')
    _settle(pre2)
    report = pre2.finish()
    assert [d.statement for d in report.dispatched] == [0, 1]  # a1 once d1 was done; never final_answer
    assert calls == [("retrieve", "one"), ("answer", "q")]


def test_a_continued_statement_is_dispatched_only_with_its_whole_text():
    calls = []
    pre = Prefetcher(DEFAULT_LANGUAGE, Limits(), _tools(calls), CallCache(), {"topk": 5})
    text = ""
    for line in ['q = "Who is the president " \\\n', '    "of France?"\n', "d = retrieve(q)\n", "a = answer(q, d)\n"]:
        text += line
        pre.feed(text)
    _settle(pre)
    pre.finish()
    assert calls == [("retrieve", "Who is the president of France?")]
    assert pre.report.dispatched[0].source == 'q = "Who is the president " \\\n    "of France?"'


def test_streamed_calls_stay_within_max_tool_calls_over_retries_of_the_reply():
    calls = []
    pre = Prefetcher(DEFAULT_LANGUAGE, Limits(max_tool_calls=2), _tools(calls), CallCache(), {"topk": 5})
    pre.feed('d1 = retrieve("a")\nd2 = retrieve("b")\nx = "c"\n')
    pre.feed('e1 = retrieve("c")\ne2 = retrieve("d")\ny = "e"\n')  # the reply started again (a retry)
    _settle(pre)
    pre.finish()
    assert sorted(calls) == [("retrieve", "a"), ("retrieve", "b")]


def test_calls_of_tools_that_do_not_memoize_are_not_streamed():
    calls = []
    lookup = ToolSpec("lookup", (Param("query", ValueType.TEXT),), ValueType.TEXT, "a fact", memoize=False)
    tools = {**_tools(calls), "lookup": lambda query: calls.append(("lookup", query)) or "fact"}
    pre = Prefetcher(DEFAULT_LANGUAGE.with_tool(lookup), Limits(), tools, CallCache(), {"topk": 5})
    pre.feed('f = lookup("x")\nd = retrieve(f)\ng = retrieve("y")\nz = "z"\n')
    _settle(pre)
    pre.finish()
    assert calls == [("retrieve", "y")]  # not lookup, nor what reads its value


def test_streaming_client_returns_the_whole_reply(bm25):
    seen = []
    with ScriptedLLM(lambda role, prompt, body: "line one\nline two\n", line_delay=0.01) as llm:
        client = LLMClient(LLMConfig(base_url=llm.url, model="scripted", retries=0))
        text = client.chat([{"role": "user", "content": "hi"}], on_text=seen.append)
    assert text == "line one\nline two"
    assert seen == ["line one\n", "line one\nline two\n"]


class HeldRetrieve(Gate):
    """A retrieve tool held at its gate until `release()` (or for `seconds`): `entered` once a call started,
    `left` once it returned."""

    def __call__(self, query, topk):
        self.hold()
        return [{"id": query, "title": query, "text": query}]

    def tools(self):
        return {"retrieve": self, "answer": lambda query, docs=None: "A"}


@pytest.mark.parametrize(
    "limits",
    [Limits(tool_timeout_s=0.3, run_timeout_s=60), Limits(tool_timeout_s=60, run_timeout_s=0.4)],
    ids=["tool_timeout_s", "run_timeout_s"],
)
def test_prefetch_waits_no_longer_than_the_limits(limits):
    """A prefetched call past tool_timeout_s (or the stream past run_timeout_s) is abandoned when the plan is
    done: finish() returns while the call is still held, and its late result never reaches the call cache."""
    cache = CallCache()
    held = HeldRetrieve()
    pre = Prefetcher(DEFAULT_LANGUAGE, limits, held.tools(), cache, {"topk": 5})
    try:
        pre.feed('d1 = retrieve("one")\nx = "two"\n')
        assert held.entered.wait(10)
        pre.finish()
        assert not held.left.is_set()  # finish() did not wait for the held call
    finally:
        held.release()
    _settle(pre)  # the abandoned call has returned and its statement ended
    assert held.left.is_set() and len(cache) == 0


def test_prefetch_still_waits_for_a_call_within_the_limits():
    cache = CallCache()
    held = HeldRetrieve(seconds=0.5)
    pre = Prefetcher(DEFAULT_LANGUAGE, Limits(tool_timeout_s=5), held.tools(), cache, {"topk": 5})
    pre.feed('d1 = retrieve("one")\nx = "two"\n')
    assert held.entered.wait(10)
    pre.finish()
    assert held.left.is_set() and len(cache) == 1  # its result is there for the program that now runs


# -- streamed and non-streamed runs make the same tool calls ------------------------------------------------
FENCED = "```python\n" + JED_HOYER + "```\n"
DRAFTS = (
    'd1 = retrieve("Who owns the Boston Red Sox?")\na1 = answer("Who owns the Boston Red Sox?", d1)\n'
    'd2 = retrieve("When was Fenway Park built?")\n'
)
NO_FINAL = JED_HOYER[: JED_HOYER.index("final_answer")]
FOUR_CALLS = (
    NO_FINAL.rsplit("john_birth", 1)[0].rstrip()
    + "\n"
    + 'final_answer = answer(f"Given: Jed Hoyer was born {jed_birth}. Answer the question: '
    + QUESTION
    + '", docs2)\n'
)
LOOKUP = ToolSpec("lookup", (Param("query", ValueType.TEXT),), ValueType.TEXT, "a fact, fresh each call", memoize=False)


def _fence(program):
    return "```python\n" + program + "```\n"


# name: (the Plan reply, the repair reply (None: none asked), config)
HOSTILE = {
    "think drafts": ("<think>\nLet me draft:\n" + DRAFTS + "</think>\n" + FENCED, None, {}),
    "think drafts, max_tool_calls=5": (
        "<think>\n" + DRAFTS + "</think>\n" + FENCED,
        None,
        {"limits": Limits(max_tool_calls=5)},
    ),
    "prose and drafts before the fence": (
        "A sketch first:\n" + DRAFTS + "Now the program:\n" + FENCED + "Done.",
        None,
        {},
    ),
    "over max_tool_calls": (FENCED, _fence(FOUR_CALLS), {"limits": Limits(max_tool_calls=4)}),
    "no final_answer": (_fence(NO_FINAL), FENCED, {}),
    "unterminated string": ("```python\n" + NO_FINAL + 'final_answer = answer("Given: Jed Hoyer was born', FENCED, {}),
    "backslash continuation": (
        _fence(
            'q = "When was Jed Hoyer " \\\n    "born?"\n'
            + JED_HOYER.replace('retrieve("When was Jed Hoyer born?")', "retrieve(q)")
        ),
        None,
        {},
    ),
    "parenthesised multi-line call": (
        _fence(
            JED_HOYER.replace('retrieve("When was Jed Hoyer born?")', 'retrieve(\n    "When was Jed Hoyer born?",\n)')
        ),
        None,
        {},
    ),
    "policy reference": (FENCED, None, {"policy": "reference"}),
    "memoize=False tool": (
        _fence('fact = lookup("Jed Hoyer")\nnote = answer(f"Who is {fact}?")\n' + JED_HOYER),
        None,
        {"language": DEFAULT_LANGUAGE.with_tool(LOOKUP)},
    ),
}


class _Recording:
    """The retriever, recording each query."""

    def __init__(self, retriever, calls):
        self.retriever, self.calls = retriever, calls

    def search(self, queries, topk):
        self.calls.extend(("retrieve", q, topk) for q in queries)
        return self.retriever.search(queries, topk)

    def close(self):
        pass


def _run_recorded(bm25, reply, repair, cfg, stream):
    calls = []
    replies = [reply] + ([repair] if repair is not None else [])

    def lookup(query):
        calls.append(("lookup", query))
        return "the general manager of the Chicago Cubs"

    with ScriptedLLM(default_handler(replies)) as llm:
        client = LLMClient(LLMConfig(base_url=llm.url, model="scripted", timeout_s=10, retries=0))
        pipeline = Pipeline(
            client,
            _Recording(bm25, calls),
            config=PipelineConfig(stream_plan=stream, **cfg),
            extra_tools={"lookup": lookup},
        )
        result = pipeline.run(QUESTION)
        calls += [("answer", r["messages"][-1]["content"]) for r in llm.requests if r["role"].startswith("answer")]
    return result, sorted(calls, key=repr)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_streamed_and_plain_runs_make_the_same_tool_calls(bm25, name):
    reply, repair, cfg = HOSTILE[name]
    plain, plain_calls = _run_recorded(bm25, reply, repair, cfg, stream=False)
    streamed, streamed_calls = _run_recorded(bm25, reply, repair, cfg, stream=True)
    assert plain.ok and streamed.ok, (plain.error, streamed.error)
    assert streamed.final_answer == plain.final_answer and streamed.repair_rounds == plain.repair_rounds
    assert streamed_calls == plain_calls
    assert streamed.retrieval_calls == plain.retrieval_calls and streamed.llm_calls == plain.llm_calls
    stream = [e for e in streamed.trace if e.kind == "plan_stream"]
    if cfg.get("policy") == "reference":
        assert stream == []  # the reference runs programs without the cache: nothing would be reused
        return
    ran = validate(streamed.generated_code, cfg.get("language", DEFAULT_LANGUAGE), cfg.get("limits", Limits()))
    assert stream[0].dispatched  # streaming still started statements while the reply was written...
    assert {d["source"] for d in stream[0].dispatched} <= {s.source for s in ran.program.statements}  # ...its own


def test_a_reply_that_never_validates_streams_only_its_final_statements(bm25):
    """What streaming cannot know: a reply with no final_answer, never repaired, makes no call unstreamed; streamed,
    the statements of it that another statement followed were dispatched, and nothing else."""
    reply = _fence(NO_FINAL)
    plain, plain_calls = _run_recorded(bm25, reply, None, {"max_repairs": 0}, stream=False)
    streamed, streamed_calls = _run_recorded(bm25, reply, None, {"max_repairs": 0}, stream=True)
    assert plain.error["type"] == streamed.error["type"] == "NoValidProgram"
    assert plain_calls == []
    event = next(e for e in streamed.trace if e.kind == "plan_stream")
    assert {d["statement"] for d in event.dispatched} <= {0, 1, 2}  # never john_birth: nothing followed it
    assert ("retrieve", "When was Jed Hoyer born?", 5) in streamed_calls
    assert not any("John William Henry II born?" in c[1] and c[0] == "answer" for c in streamed_calls)


@pytest.mark.parametrize("owned_by, dispatched", [("vllm", True), ("other", False)])
def test_an_unfenced_reply_streams_only_when_decoded_to_the_language(bm25, owned_by, dispatched):
    """vLLM decodes the plan to the language's grammar (no fence, no prose): its reply streams from the start.
    Unconstrained, a fence may still come, so an unfenced reply settles nothing until it is finished."""
    with ScriptedLLM(default_handler([JED_HOYER]), owned_by=owned_by) as llm:
        result = make_pipeline(llm.url, bm25, stream_plan=True, plan_grammar="language").run(QUESTION)
    assert result.ok and result.generated_code == JED_HOYER
    event = next(e for e in result.trace if e.kind == "plan_stream")
    assert bool(event.dispatched) is dispatched
    assert result.retrieval_calls == 2 and result.llm_calls["answer"] == 3
