"""Plan and decompose rewards against real local endpoints: the embedded llama.cpp server (SmolLM2-135M)
as the frozen agents and our retrieval server over a real Lucene index. Kept small: one question."""

import pytest
from corpus import JED_HOYER

from pyrag_dsl.agents.local_server import LocalLLMServer, smollm2_path
from pyrag_dsl.rl.endpoints import shared_cache
from pyrag_dsl.rl.rewards import answer_score, compute_score
from pyrag_dsl.rl.settings import RewardSettings

pytestmark = pytest.mark.model

QUESTION = "Who is older, Jed Hoyer or John William Henry II?"
GOLD = ["John William Henry II"]


@pytest.fixture(scope="module")
def llama():
    server = LocalLLMServer(smollm2_path(), n_ctx=2048)
    with server:
        yield server


def _kwargs(llama, retrieval_server, **extra):
    return {
        "answer_url": llama.base_url,
        "answer_model": "local",
        "plan_url": llama.base_url,
        "plan_model": "local",
        "retriever_url": retrieval_server.url,
        "tool_timeout_s": 120,
        "run_timeout_s": 240,
        "cache_size": 4321,
        **extra,
    }


def _consistent(out):
    """The score is the metric of the prediction when the run succeeded, 0 with a kind otherwise."""
    if out["error_kind"]:
        return out["score"] == 0.0
    return out["score"] == pytest.approx(answer_score(out["pred"], GOLD)[0])


def test_plan_reward_on_the_embedded_model_and_cached_second_rollout(llama, retrieval_server):
    kw = _kwargs(llama, retrieval_server)
    cache = shared_cache(RewardSettings.resolve(kw, environ={}))
    first = compute_score(
        "pyrag_plan", "```python\n" + JED_HOYER + "```", GOLD, {"question": QUESTION, "topk": 3}, **kw
    )
    misses = cache.misses
    second = compute_score("pyrag_plan", JED_HOYER, GOLD, {"question": QUESTION, "topk": 3}, **kw)
    assert first["error_kind"] == "" and first["calls"] >= 5 and _consistent(first)
    assert second == first  # same program: same calls, all answered from the cache (no model call: no miss)
    assert cache.misses == misses and cache.hits >= first["calls"]


def test_decompose_reward_on_the_embedded_model(llama, retrieval_server):
    kw = _kwargs(llama, retrieval_server, plan_grammar="skeleton", max_repairs=1)
    out = compute_score(
        "pyrag_decompose",
        '["When was Jed Hoyer born?", "When was John William Henry II born?"]',
        GOLD,
        {"question": QUESTION, "topk": 3},
        **kw,
    )
    assert out["num_sub_queries"] == 2
    assert out["error_kind"] == "" and out["calls"] >= 2 and _consistent(out)


def test_hostile_program_never_reaches_the_endpoints(llama, retrieval_server):
    kw = _kwargs(llama, retrieval_server, cache_size=4322)
    cache = shared_cache(RewardSettings.resolve(kw, environ={}))
    out = compute_score(
        "pyrag_plan", 'x = __import__("os").system("id")\nfinal_answer = "x"\n', GOLD, {"question": QUESTION}, **kw
    )
    assert out["score"] == 0.0 and out["error_kind"] == "DisallowedConstruct" and out["calls"] == 0
    assert cache.misses == 0
