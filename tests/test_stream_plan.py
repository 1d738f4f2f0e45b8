"""Streamed plan execution: statements run while the Plan reply is still streaming; the finished program
then answers those calls from the call cache, with the same result as a non-streamed run."""

import time

import pytest

from scripted_llm import ScriptedLLM
from test_pipeline import QUESTION, default_handler, make_pipeline

from pyrag_dsl.agents.llm import LLMClient, LLMConfig
from pyrag_dsl.grammar import DEFAULT_LANGUAGE, Limits
from pyrag_dsl.interpreter import CallCache
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


def test_prefetcher_dispatches_only_valid_prefixes_and_respects_dependencies():
    calls = []

    def retrieve(query, topk):
        calls.append(("retrieve", query))
        return [{"id": query, "title": query, "text": query}]

    def answer(query, docs=None):
        calls.append(("answer", query))
        return "A:" + query

    pre = Prefetcher(DEFAULT_LANGUAGE, Limits(), {"retrieve": retrieve, "answer": answer}, CallCache(), {"topk": 5})
    pre.feed('d1 = retrieve("one")\nx = undefined_thing\n')  # an invalid prefix: nothing starts
    time.sleep(0.2)
    assert calls == []
    pre2 = Prefetcher(DEFAULT_LANGUAGE, Limits(), {"retrieve": retrieve, "answer": answer}, CallCache(), {"topk": 5})
    pre2.feed('d1 = retrieve("one")\na1 = answ')  # the second line is not complete yet
    deadline = time.monotonic() + 5
    while not (pre2.report.dispatched and pre2.report.dispatched[0].ok) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls == [("retrieve", "one")]  # the incomplete line did not start anything
    pre2.feed('d1 = retrieve("one")\na1 = answer("q", d1)\nfinal_answer = answer(f"{a1}")\n')
    while ("answer", "q") not in calls and time.monotonic() < deadline:
        time.sleep(0.01)
    report = pre2.finish()
    assert ("retrieve", "one") in calls and ("answer", "q") in calls
    assert [d.statement for d in report.dispatched][:2] == [0, 1]
    assert calls.index(("retrieve", "one")) < calls.index(("answer", "q"))


def test_streaming_client_returns_the_whole_reply(bm25):
    seen = []
    with ScriptedLLM(lambda role, prompt, body: "line one\nline two\n", line_delay=0.01) as llm:
        client = LLMClient(LLMConfig(base_url=llm.url, model="scripted", retries=0))
        text = client.chat([{"role": "user", "content": "hi"}], on_text=seen.append)
    assert text == "line one\nline two"
    assert seen == ["line one\n", "line one\nline two\n"]


def _slow_tools(seconds):
    def retrieve(query, topk):
        time.sleep(seconds)
        return [{"id": query, "title": query, "text": query}]

    return {"retrieve": retrieve, "answer": lambda query, docs=None: "A"}


def _started(pre):
    deadline = time.monotonic() + 5
    while not pre.report.dispatched and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("limits", [Limits(tool_timeout_s=0.3, run_timeout_s=60), Limits(tool_timeout_s=60,
                                                                                          run_timeout_s=0.4)],
                         ids=["tool_timeout_s", "run_timeout_s"])
def test_prefetch_waits_no_longer_than_the_limits(limits):
    """A prefetched call past tool_timeout_s (or the stream past run_timeout_s) is abandoned when the plan is
    done: finish() does not hang on it, and its late result never reaches the call cache."""
    cache = CallCache()
    pre = Prefetcher(DEFAULT_LANGUAGE, limits, _slow_tools(3), cache, {"topk": 5})
    pre.feed('d1 = retrieve("one")\n')
    _started(pre)
    t0 = time.monotonic()
    pre.finish()
    assert time.monotonic() - t0 < 2
    time.sleep(3.2)  # the abandoned call returns now
    assert len(cache) == 0


def test_prefetch_still_waits_for_a_call_within_the_limits():
    cache = CallCache()
    pre = Prefetcher(DEFAULT_LANGUAGE, Limits(tool_timeout_s=5), _slow_tools(0.5), cache, {"topk": 5})
    pre.feed('d1 = retrieve("one")\n')
    _started(pre)
    pre.finish()
    assert len(cache) == 1  # its result is there for the program that now runs
