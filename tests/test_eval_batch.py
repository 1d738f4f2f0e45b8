"""The batch module: concurrent map with per-endpoint caps on requests in flight."""

import threading
import time

import pytest

from pyrag_dsl.pipeline.batch import EndpointLimits, MeteredLLM, concurrent_map, ordered_map

pytestmark = pytest.mark.network_free


def test_ordered_map_keeps_input_order_and_runs_concurrently():
    active, peak, lock = [0], [0], threading.Lock()

    def slow(x):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05 * (5 - x % 5))
        with lock:
            active[0] -= 1
        return x * x

    assert ordered_map(slow, list(range(10)), concurrency=4) == [x * x for x in range(10)]
    assert peak[0] == 4


def test_endpoint_cap_holds_whatever_the_concurrency():
    limits = EndpointLimits(2, {"b": 1})

    def work(i):
        with limits.slot("a"):
            time.sleep(0.02)
        with limits.slot("b"):
            time.sleep(0.01)
        return i

    ordered_map(work, list(range(12)), concurrency=6)
    assert limits.peak == {"a": 2, "b": 1}
    assert limits.in_flight == {"a": 0, "b": 0}


def test_errors_go_to_on_done_and_the_map_goes_on():
    seen = []

    def fn(x):
        if x == 2:
            raise ValueError("bad item")
        return x

    concurrent_map(
        fn, range(5), 2, lambda i, item, res, err: seen.append((i, res, type(err).__name__ if err else None))
    )
    assert sorted(seen) == [(0, 0, None), (1, 1, None), (2, None, "ValueError"), (3, 3, None), (4, 4, None)]
    with pytest.raises(ValueError, match="bad item"):
        ordered_map(fn, list(range(5)), 2)
    with pytest.raises(ValueError):
        concurrent_map(fn, [], 0)


def test_stop_event_ends_after_items_in_flight():
    stop = threading.Event()
    done = []

    def on_done(i, item, res, err):
        done.append(i)
        if i == 1:
            stop.set()

    concurrent_map(lambda x: x, range(100), 2, on_done, stop=stop)
    assert len(done) < 10 and {0, 1} <= set(done)


class FakeUsage:
    prompt_tokens = 7
    completion_tokens = 3


class FakeClient:
    class config:  # noqa: N801 - mimics LLMClient.config
        base_url = "http://x/v1"

    def chat(self, messages, on_usage=None, **kw):
        if on_usage:
            on_usage(FakeUsage())
        return "ok"

    def grammar_body(self, lark, gbnf):
        return {"grammar": gbnf}


def test_metered_llm_counts_calls_and_tokens_and_delegates():
    m = MeteredLLM(FakeClient(), EndpointLimits(1))
    assert m.chat([{"role": "user", "content": "hi"}], max_tokens=5) == "ok"
    m.chat([])
    assert (m.calls, m.prompt_tokens, m.completion_tokens, m.usage_reported) == (2, 14, 6, True)
    assert m.grammar_body("l", "g") == {"grammar": "g"}
