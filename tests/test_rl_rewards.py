"""verl rewards on hand-made rollouts: every case gives a score and an error kind, never an exception.

The plan and decompose rewards run against a scripted OpenAI-compatible server on loopback (the frozen
agents; a fake of the LLM layer only) and our retrieval server over a real Lucene index."""

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from corpus import HOSTILE, JED_HOYER
from scripted_llm import ScriptedLLM, doc_titles

from pyrag_dsl.config.deadline import DeadlineExceeded
from pyrag_dsl.grammar import validate
from pyrag_dsl.interpreter.supervisor import ABANDONED
from pyrag_dsl.rl.cache import SharedCache
from pyrag_dsl.rl.endpoints import llm_client
from pyrag_dsl.rl.program_rewards import grounding
from pyrag_dsl.rl.rewards import MAX_ROLLOUT_CHARS, compute_score, golds_of, has_answer_span, run_guarded
from pyrag_dsl.rl.settings import RewardSettings, SettingsError

QUESTION = "Who is older, Jed Hoyer or John William Henry II?"
GOLD = ["John William Henry II"]
BIRTHS = {"Jed Hoyer": "December 7, 1973", "John W. Henry": "September 13, 1949"}
KEYS = {"score", "f1", "em", "pred", "error_kind", "calls", "retried", "num_sub_queries"}


def frozen_agents(program=JED_HOYER, plan_replies=None):
    """The frozen Answer agent (and Plan agent for decompose): answers from the documents' titles."""
    replies = list(plan_replies or [])

    def handler(role, prompt, body):
        if role == "answer_docs":
            titles = doc_titles(prompt)
            return f"<answer>{BIRTHS.get(titles[0], 'unknown')}</answer>" if titles else "<answer>unknown</answer>"
        if role == "answer_synth":
            older = "John William Henry II" if "1949" in prompt and "1973" in prompt else "unknown"
            return f"<answer>{older}</answer>"
        if role in ("plan", "repair"):
            return replies.pop(0) if replies else "```python\n" + program + "```"
        raise AssertionError(role)

    return handler


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def kwargs(llm, retrieval_server, **extra):
    out = {
        "answer_url": llm.url,
        "answer_model": "scripted",
        "plan_url": llm.url,
        "plan_model": "scripted",
        "retriever_url": retrieval_server.url,
        "tool_timeout_s": 10,
        "run_timeout_s": 20,
        "use_grammar": False,
        "llm_retries": 0,
        "retriever_retries": 0,
    }
    out.update(extra)
    return out


def warm_client(llm, kw):
    """Make the reward's LLM client (and learn its server's kind) before the reward's clock runs: the first one
    in a process can take a second on a loaded machine, which a test with a sub-second run_timeout_s cannot
    spend inside the rollout's guard (2 x run_timeout_s)."""
    llm_client(llm.url, "scripted", RewardSettings.resolve(kw, environ={})).server_kind()


def plan(solution, **kw):
    return compute_score("pyrag_plan", solution, GOLD, {"question": QUESTION, "topk": 5}, **kw)


def wait_until(condition, cap_s=30.0):
    """Polls `condition` until it holds or `cap_s` passes; its last value."""
    end = time.monotonic() + cap_s
    while not condition() and time.monotonic() < end:
        time.sleep(0.05)
    return condition()


# -- answer -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["pyrag_answer_with_docs", "pyrag_answer_no_docs"])
def test_answer_reward_correct_wrong_partial_missing_tag(source):
    right = compute_score(source, "<answer>John William Henry II</answer>", GOLD)
    assert set(right) == KEYS and right["score"] == pytest.approx(1.0) and right["em"] == 1.0
    assert right["pred"] == "John William Henry II" and right["error_kind"] == ""
    wrong = compute_score(source, "<answer>Jed Hoyer</answer>", GOLD)
    assert wrong["score"] == 0.0 and wrong["error_kind"] == ""
    partial = compute_score(source, "<answer>John Henry</answer>", GOLD)
    f1 = 2 * 1.0 * 0.5 / 1.5  # 2 of 2 predicted tokens right, 2 of 4 gold tokens found
    assert partial["f1"] == pytest.approx(f1) and partial["score"] == pytest.approx(0.7 * f1)
    missing = compute_score(source, "John William Henry II", GOLD)
    assert missing["score"] == 0.0 and missing["error_kind"] == "no_answer_tag"
    unclosed = compute_score(source, "<answer>John William Henry II", GOLD)
    assert unclosed["score"] == 0.0 and unclosed["error_kind"] == "no_answer_tag"


def test_answer_reward_reads_golds_the_way_parquet_gives_them():
    assert compute_score("pyrag_answer_no_docs", "<answer>Paris</answer>", np.array(["paris", "Paris, France"]))[
        "score"
    ] == pytest.approx(1.0)
    assert compute_score("pyrag_answer_no_docs", "<answer>the Paris</answer>", {"target": ["Paris"]})["em"] == 1.0
    assert golds_of("Paris") == ["Paris"] and golds_of([b"x", None, " "]) == ["x"]
    assert compute_score("pyrag_answer_no_docs", "<answer>x</answer>", [])["error_kind"] == "no_gold"
    assert compute_score("nq", "<answer>x</answer>", ["x"])["error_kind"] == "unknown_data_source"
    # the first span, first line, as the Answer agent reads it at inference
    assert (
        compute_score("pyrag_answer_with_docs", "<answer>Paris\nbecause</answer><answer>Rome</answer>", ["Paris"])["em"]
        == 1.0
    )


def test_hostile_golds_are_flattened_and_non_finite_numbers_are_no_gold():
    assert golds_of([["Paris", "paris"]]) == ["Paris", "paris"]
    assert golds_of(np.array([["Paris", "paris"]])) == ["Paris", "paris"]
    nested = compute_score("pyrag_answer_no_docs", "<answer>Paris</answer>", [["Paris", "paris"]])
    assert nested["score"] == pytest.approx(1.0)  # was 0.47: the list became the one gold "['Paris', 'paris']"
    assert golds_of([float("nan"), float("inf"), np.float32("-inf"), np.nan, 1984, 2.5]) == ["1984", "2.5"]
    for gold in ([float("nan")], float("inf"), np.array([np.nan])):
        assert compute_score("pyrag_answer_no_docs", "<answer>nan</answer>", gold)["error_kind"] == "no_gold"
    assert compute_score("pyrag_answer_no_docs", "<answer>nan</answer>", ["Paris", float("nan")])["score"] == 0.0
    deep = "Paris"
    for _ in range(100_000):
        deep = [deep]
    assert compute_score("pyrag_answer_no_docs", "<answer>Paris</answer>", deep)["error_kind"] == "no_gold"


def test_answer_tag_scan_is_linear_and_rollouts_are_capped():
    """Repeated unclosed tags made the old span regex quadratic (1 MB: about 15 min); the result is asserted
    here, the time in benchmarks/rl_rewards.py."""
    huge = "<answer>" * (1_000_000 // 8)
    for source in ("pyrag_answer_with_docs", "pyrag_plan", "pyrag_decompose"):
        out = compute_score(source, huge, GOLD, {"question": QUESTION})
        assert out["score"] == 0.0 and out["error_kind"] == "rollout_too_long"
    under = "<answer>" * (MAX_ROLLOUT_CHARS // 8)
    assert len(under) == MAX_ROLLOUT_CHARS and not has_answer_span(under)
    assert compute_score("pyrag_answer_with_docs", under, GOLD)["error_kind"] == "no_answer_tag"
    assert has_answer_span("x <ANSWER><answer>a</Answer>") and not has_answer_span("</answer><answer>a")
    closed_late = "<answer>" * 1000 + "John William Henry II</answer>"
    assert compute_score("pyrag_answer_with_docs", closed_late, GOLD)["error_kind"] == ""


# -- plan -------------------------------------------------------------------------------------------


def test_plan_reward_correct_and_wrong_program(retrieval_server):
    with ScriptedLLM(frozen_agents()) as llm:
        ok = plan("```python\n" + JED_HOYER + "```", **kwargs(llm, retrieval_server))
        wrong = plan(
            'x = retrieve("When was Jed Hoyer born?")\nfinal_answer = answer("Who?", x)\n',
            **kwargs(llm, retrieval_server),
        )
    assert set(ok) == KEYS
    assert ok["error_kind"] == "" and ok["pred"] == "John William Henry II" and ok["score"] == pytest.approx(1.0)
    assert ok["calls"] == 5 and ok["retried"] == 0
    assert wrong["error_kind"] == "" and wrong["score"] == 0.0 and wrong["pred"] == "December 7, 1973"


@pytest.mark.parametrize("owned_by", ["vllm", "llama.cpp", "scripted"])
def test_plan_reward_is_the_same_whatever_the_server(owned_by, retrieval_server):
    """A vLLM server turns streamed plans on by default; the plan reward's program is given: it never streams."""
    with ScriptedLLM(frozen_agents(), owned_by=owned_by) as llm:
        out = plan("```python\n" + JED_HOYER + "```", **kwargs(llm, retrieval_server))
        streamed = [r for r in llm.requests if r.get("stream")]
    assert out["error_kind"] == "" and out["score"] == pytest.approx(1.0) and out["calls"] == 5
    assert streamed == []


def test_plan_reward_unfenced_program_followed_by_prose(retrieval_server):
    """The extraction drops a closing sentence after an unfenced program (agents.plan.extract_program)."""
    with ScriptedLLM(frozen_agents()) as llm:
        out = plan("Here is the program:\n" + JED_HOYER + "\nHope this helps!\n", **kwargs(llm, retrieval_server))
    assert out["error_kind"] == "" and out["score"] == pytest.approx(1.0)


GROUNDED = [
    JED_HOYER,
    'd1 = retrieve("When was Jed Hoyer born?")\nd2 = d1\na = answer(query="When?", docs=d2)\nfinal_answer = a\n',
    'd = retrieve("q")\na = answer("q", d)\nb = a\nfinal_answer = answer(f"Given: {b}. Answer the question: Q")\n',
]
UNGROUNDED = [
    ('final_answer = "John William Henry II"\n', "no_answer_call"),
    ('d = retrieve("q")\na = answer("q", d)\nfinal_answer = "John William Henry II"\n', "no_answer_call"),
    ('d = retrieve("q")\na = answer("q", d)\nfinal_answer = f"{a}"\n', "no_answer_call"),
    ('x = "John William Henry II"\ny = x\nfinal_answer = y\n', "no_answer_call"),
    ('final_answer = answer("Who is older, Jed Hoyer or John William Henry II?")\n', "no_retrieval"),
    (
        'q = "Who is older?"\na = answer(q)\nfinal_answer = answer(f"Given: {a}. Answer the question: {q}")\n',
        "no_retrieval",
    ),
    # a retrieval that feeds nothing, and a reassigned name: the final answer reads the unfed answer
    ('d = retrieve("q")\na = answer("q")\nfinal_answer = a\na = answer("q", d)\n', "no_retrieval"),
]


@pytest.mark.parametrize("source", GROUNDED)
def test_grounding_accepts_answers_fed_by_retrieval(source):
    checked = validate(source)
    assert checked.ok and grounding(checked.program) == ""


@pytest.mark.parametrize("source, why", UNGROUNDED)
def test_grounding_names_what_is_missing(source, why):
    checked = validate(source)
    assert checked.ok and grounding(checked.program) == why


@pytest.mark.parametrize("source, why", UNGROUNDED[:1] + UNGROUNDED[4:5])
def test_plan_reward_does_not_pay_a_guess(source, why, retrieval_server):
    """`final_answer = "<the gold>"` scored 1.0, like a real plan; now 0 with the reason, and no call is made."""
    with ScriptedLLM(frozen_agents()) as llm:
        out = plan(source, **kwargs(llm, retrieval_server))
        assert llm.requests == []
    assert out["score"] == 0.0 and out["error_kind"] == f"UngroundedAnswer:{why}" and out["pred"] == ""


@pytest.mark.parametrize(
    "hostile", [h for h in HOSTILE if h.category in ("dunder", "frames")][:8], ids=lambda h: h.name
)
def test_plan_reward_hostile_program_scores_zero_with_its_kind(hostile, retrieval_server):
    with ScriptedLLM(frozen_agents()) as llm:
        # a first ordinary statement, so the Plan agent's extraction keeps every line (it drops leading prose)
        out = plan('```python\nq = "a"\n' + hostile.source + "```", **kwargs(llm, retrieval_server))
        assert llm.count("answer_docs") == 0  # nothing ran
    assert out["score"] == 0.0 and out["error_kind"] in hostile.expect


def test_plan_reward_over_the_call_budget(retrieval_server):
    with ScriptedLLM(frozen_agents()) as llm:
        out = plan(JED_HOYER, **kwargs(llm, retrieval_server, max_tool_calls=3))
    assert out["score"] == 0.0 and out["error_kind"] == "LimitExceeded:max_tool_calls"


def test_plan_reward_program_that_times_out_returns_in_time(retrieval_server):
    """The Answer agent's replies are held until the reward has returned: the reward did not wait for them."""
    held = threading.Event()
    with ScriptedLLM(frozen_agents(), hold=held) as llm:
        try:
            out = plan(JED_HOYER, **kwargs(llm, retrieval_server, tool_timeout_s=0.5, run_timeout_s=5, cache_size=11))
            assert llm.requests and llm.answered == 0  # returned while its request was held, unanswered
        finally:
            held.set()
    assert out["score"] == 0.0 and out["error_kind"] == "LimitExceeded:tool_timeout_s"


def test_plan_reward_run_timeout(retrieval_server):
    with ScriptedLLM(frozen_agents(), delay=0.4) as llm:
        kw = kwargs(llm, retrieval_server, tool_timeout_s=5, run_timeout_s=0.6, cache_size=12)
        warm_client(llm, kw)
        out = plan(JED_HOYER, **kw)
    assert out["score"] == 0.0 and out["error_kind"] == "LimitExceeded:run_timeout_s"


def test_plan_reward_endpoints_down(retrieval_server):
    with ScriptedLLM(frozen_agents()) as llm:
        no_retriever = plan(JED_HOYER, **kwargs(llm, retrieval_server, retriever_url=closed_port_url(), cache_size=13))
    no_answer = compute_score(
        "pyrag_plan",
        JED_HOYER,
        GOLD,
        {"question": QUESTION},
        answer_url=closed_port_url() + "/v1",
        retriever_url=retrieval_server.url,
        llm_retries=0,
        use_grammar=False,
        cache_size=14,
    )
    assert no_retriever["score"] == 0.0 and no_retriever["error_kind"] == "ToolError:RetrievalError"
    assert no_answer["score"] == 0.0 and no_answer["error_kind"] == "ToolError:LLMError"


def test_plan_reward_no_program_and_bad_settings(retrieval_server):
    assert plan("   ")["error_kind"] == "no_program"
    assert plan("I cannot write this.")["error_kind"] == "SyntaxError"
    bad = plan(JED_HOYER, run_timeout_s="soon")
    assert bad["score"] == 0.0 and bad["error_kind"].startswith("SettingsError")
    for value in ("inf", "nan"):  # would switch the engine's time limit off
        bad = plan(JED_HOYER, tool_timeout_s=value)
        assert bad["score"] == 0.0 and bad["error_kind"].startswith("SettingsError"), bad


@pytest.mark.parametrize(
    "where, key, value",
    [
        ("extra_info", "topk", float("inf")),
        ("extra_info", "topk", float("nan")),
        ("extra_info", "topk", 2.5),
        ("extra_info", "topk", True),
        ("extra_info", "topk", 5000),
        ("extra_info", "topk", np.float32("inf")),
        ("kwargs", "run_timeout_s", 5e9),
        ("kwargs", "tool_timeout_s", 1e4),
        ("kwargs", "max_tool_calls", "inf"),
        ("kwargs", "boosted_topk", 10**400),
    ],
)
def test_out_of_range_settings_are_settings_errors(where, key, value):
    """topk=inf was InternalError:OverflowError; run_timeout_s=5e9 overflowed the guard's wait, which returned
    at once while the rollout ran on."""
    info = {"question": QUESTION, "topk": value} if where == "extra_info" else {"question": QUESTION}
    kw = {key: value} if where == "kwargs" else {}
    out = compute_score("pyrag_plan", JED_HOYER, GOLD, info, **kw)
    assert out["score"] == 0.0 and out["error_kind"].startswith(f"SettingsError: reward setting {key}"), out
    with pytest.raises(SettingsError, match=key):
        RewardSettings.resolve(kw, info, environ={})


def test_plan_reward_caches_tool_calls_across_rollouts_and_threads(retrieval_server):
    with ScriptedLLM(frozen_agents()) as llm:
        kw = kwargs(llm, retrieval_server, cache_size=1000)
        with ThreadPoolExecutor(8) as pool:
            outs = list(pool.map(lambda _: plan(JED_HOYER, **kw), range(8)))
        answers = llm.count("answer_docs") + llm.count("answer_synth")
    assert all(o["score"] == pytest.approx(1.0) and o["error_kind"] == "" for o in outs)
    assert answers == 3  # 8 rollouts of the same program: each distinct call once


def test_plan_reward_adaptive_retrieval(retrieval_server):
    def handler(role, prompt, body):
        titles = doc_titles(prompt)
        if role == "answer_docs":  # the birth date is found only with more than 5 documents
            return "<answer>September 13, 1949</answer>" if len(titles) > 5 else "<answer>unknown</answer>"
        return "<answer>John William Henry II</answer>" if "1949" in prompt else "<answer>unknown</answer>"

    program = (
        'd = retrieve("When was John William Henry II born?")\n'
        'b = answer("When was John William Henry II born?", d)\n'
        'final_answer = answer(f"Given: he was born {b}. Answer the question: Who is older?")\n'
    )
    with ScriptedLLM(handler) as llm:
        out = plan(program, **kwargs(llm, retrieval_server, cache_size=15))
    assert out["retried"] == 1 and out["score"] == pytest.approx(1.0)


# -- decompose --------------------------------------------------------------------------------------


def test_decompose_reward_with_repair_rounds(retrieval_server):
    broken = '```python\ndocs1 = retrieve("When was Jed Hoyer born?"\n```'
    with ScriptedLLM(frozen_agents(plan_replies=[broken])) as llm:
        out = compute_score(
            "pyrag_decompose",
            '["When was Jed Hoyer born?", "When was John William Henry II born?"]',
            GOLD,
            {"question": QUESTION},
            **kwargs(llm, retrieval_server, cache_size=16),
        )
        plans = [r for r in llm.requests if r["role"] in ("plan", "repair")]
    assert out["score"] == pytest.approx(1.0) and out["error_kind"] == "" and out["num_sub_queries"] == 2
    assert [r["role"] for r in plans] == ["plan", "repair"]
    assert "When was John William Henry II born?" in plans[0]["messages"][-1]["content"]


def test_decompose_reward_failures(retrieval_server):
    assert (
        compute_score("pyrag_decompose", "Jed, then John", GOLD, {"question": QUESTION})["error_kind"]
        == "no_sub_queries"
    )
    assert compute_score("pyrag_decompose", '["a?"]', GOLD, {})["error_kind"] == "no_question"
    never_valid = "```python\nx = (\n```"
    with ScriptedLLM(frozen_agents(plan_replies=[never_valid] * 5)) as llm:
        out = compute_score(
            "pyrag_decompose",
            '["When was Jed Hoyer born?"]',
            GOLD,
            {"question": QUESTION},
            **kwargs(llm, retrieval_server, max_repairs=1, cache_size=17),
        )
    assert out["score"] == 0.0 and out["error_kind"] == "SyntaxError" and out["num_sub_queries"] == 1
    down = compute_score(
        "pyrag_decompose",
        '["When was Jed Hoyer born?"]',
        GOLD,
        {"question": QUESTION},
        plan_url=closed_port_url() + "/v1",
        llm_retries=0,
        use_grammar=False,
    )
    assert down["score"] == 0.0 and down["error_kind"] == "LLMError"


# -- building blocks --------------------------------------------------------------------------------


def test_rollout_guard_never_hangs_or_raises():
    released, returned = threading.Event(), threading.Event()

    def held(deadline):
        released.wait(30)
        returned.set()
        return {}

    try:
        assert run_guarded(held, 0.2)["error_kind"] == "RolloutTimeout"
        assert not returned.is_set()  # the guard gave up while the rollout was still held
    finally:
        released.set()

    def boom(deadline):
        raise RuntimeError("bug")

    assert run_guarded(boom, 1)["error_kind"] == "InternalError:RuntimeError"


def test_rollout_guard_cancels_its_deadline_when_it_returns():
    seen = []
    assert run_guarded(lambda deadline: seen.append(deadline) or {"score": 1.0}, 60) == {"score": 1.0}
    assert (
        run_guarded(lambda deadline: seen.append(deadline) or time.sleep(1) or {}, 0.1)["error_kind"]
        == "RolloutTimeout"
    )
    for deadline in seen:  # a request made under it now fails before it is sent
        assert deadline.remaining() == 0.0
        with pytest.raises(DeadlineExceeded):
            deadline.bound(5.0)


def test_no_request_after_the_plan_reward_returned(retrieval_server):
    """The engine abandons a tool call past tool_timeout_s and the reward returns; the call's client then timed
    out and retried: a request reached the Answer endpoint after the reward had returned."""
    program = (
        'born = answer("When was Jed Hoyer born?")\nd = retrieve(f"born {born}")\n'
        'final_answer = answer("Who is older?", d)\n'
    )  # the first call is the slow one
    with ScriptedLLM(frozen_agents(), delay=2.0) as llm:
        kw = kwargs(llm, retrieval_server, tool_timeout_s=0.5, run_timeout_s=5, llm_retries=1, cache_size=21)
        warm_client(llm, kw)
        out = plan(program, **kw)
        assert wait_until(lambda: ABANDONED.count == 0)  # the abandoned call has ended
        assert len(llm.requests) <= 1  # at most the call in flight when the reward returned; never its retry
    assert out["error_kind"] == "LimitExceeded:tool_timeout_s"


def test_no_request_after_a_rollout_timeout(retrieval_server):
    """The frozen Plan agent replies after the rollout's guard has given up: the program it wrote used to run
    behind the returned reward (retrieval, then the Answer agent)."""
    with ScriptedLLM(frozen_agents(), delay=4.0) as llm:  # the guard gives up at 2 x run_timeout_s = 3 s
        kw = kwargs(llm, retrieval_server, run_timeout_s=1.5, tool_timeout_s=5, cache_size=22)
        warm_client(llm, kw)
        out = compute_score("pyrag_decompose", '["When was Jed Hoyer born?"]', GOLD, {"question": QUESTION}, **kw)
        assert out["error_kind"] == "RolloutTimeout"
        assert wait_until(lambda: not any(t.name == "pyrag-reward" for t in threading.enumerate()))
        assert [r["role"] for r in llm.requests] == ["plan"]


def test_shared_cache_single_flight_bounded_and_failures_not_cached():
    cache = SharedCache(2)
    calls = []
    gate = threading.Event()

    def slow():
        calls.append(1)
        gate.wait(2)
        return "v"

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(cache.get_or_compute, "k", slow, 5) for _ in range(4)]
        time.sleep(0.2)
        gate.set()
        assert [f.result() for f in futures] == ["v"] * 4
    assert len(calls) == 1 and cache.misses == 1 and cache.hits == 3
    cache.get_or_compute("a", lambda: 1)
    cache.get_or_compute("b", lambda: 2)
    assert len(cache) == 2 and cache.get_or_compute("k", lambda: "new") == "new"  # "k" was evicted
    with pytest.raises(ZeroDivisionError):
        cache.get_or_compute("z", lambda: 1 / 0)
    assert cache.get_or_compute("z", lambda: 3) == 3


def test_settings_sources_and_precedence():
    env = {"LLM_BASE_URL": "http://a/v1", "PYRAG_RL_ANSWER_URL": "http://b/v1", "PYRAG_RL_RUN_TIMEOUT_S": "9"}
    s = RewardSettings.resolve(
        {"answer_model": "m", "topk": "3"}, {"topk": np.int64(7), "reward": {"max_repairs": 1}}, environ=env
    )
    assert (s.answer_url, s.answer_model, s.topk, s.run_timeout_s, s.max_repairs) == ("http://b/v1", "m", 7, 9.0, 1)
    assert RewardSettings.resolve({"reward_router_address": "x"}, environ={}).answer_url == RewardSettings().answer_url
    with pytest.raises(ValueError):
        RewardSettings.resolve({}, {"reward": {"nope": 1}}, environ={})


def test_rewards_run_in_spawned_worker_processes():
    """verl's `remote` reward manager scores in a process pool: the function imports and runs there."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    calls = [
        ("pyrag_answer_with_docs", "<answer>Paris</answer>", ["Paris"], None, {}),
        (
            "pyrag_plan",
            JED_HOYER,
            GOLD,
            {"question": QUESTION},
            {
                "answer_url": closed_port_url() + "/v1",
                "retriever_url": closed_port_url(),
                "llm_retries": 0,
                "retriever_retries": 0,
                "use_grammar": False,
            },
        ),
    ]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        outs = list(pool.map(_score_in_worker, calls))
    assert outs[0]["score"] == pytest.approx(1.0)
    assert outs[1]["score"] == 0.0 and outs[1]["error_kind"] == "ToolError:RetrievalError"


def _score_in_worker(call):
    source, solution, gold, info, kw = call
    return compute_score(source, solution, gold, info, **kw)
