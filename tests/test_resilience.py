"""One retry policy, fail-fast breakers and the per-question deadline (pyrag_dsl.config.retry / .deadline),
against real loopback servers that fail then recover, or accept connections and never answer. Every wait is
bounded by small timeouts."""

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from loopback import DripServer, FlakyServer, HangServer

from pyrag_dsl.agents import LLMClient, LLMConfig, LLMError
from pyrag_dsl.config import deadline
from pyrag_dsl.config.retry import (
    CircuitBreaker,
    EndpointUnavailable,
    RetriesExhausted,
    RetryPolicy,
    TransientError,
    breaker_for,
    configure_breakers,
)
from pyrag_dsl.retrievers.base import RetrievalError
from pyrag_dsl.retrievers.http_client import HttpRetriever

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def default_breakers():
    configure_breakers(3, 30.0)
    yield
    configure_breakers(3, 30.0)


# -- the policy and the breaker, alone -----------------------------------------------------------------------
def test_policy_retries_transient_failures_with_backoff_then_gives_up():
    pauses, timeouts = [], []

    def send(timeout):
        timeouts.append(timeout)
        raise TransientError("503")

    with pytest.raises(RetriesExhausted, match=r"^503 \(after 4 attempts\)$") as info:
        RetryPolicy(retries=3, backoff_s=0.5, max_backoff_s=1.5).call(send, timeout_s=7, sleep=pauses.append)
    assert pauses == [0.5, 1.0, 1.5] and timeouts == [7, 7, 7, 7] and info.value.attempts == 4

    def refused(timeout):
        raise ValueError("400 bad request")

    with pytest.raises(ValueError):  # not transient: no retry
        RetryPolicy(retries=3).call(refused, timeout_s=1, sleep=pauses.append)
    assert len(pauses) == 3


def test_breaker_opens_after_n_failures_then_lets_one_call_try():
    now = [0.0]
    breaker = CircuitBreaker("http://x", failures=2, cooldown_s=10, clock=lambda: now[0])
    breaker.record_failure("call 1")
    breaker.before_call()  # one failure: still closed
    breaker.record_failure("call 2")
    with pytest.raises(EndpointUnavailable, match="failed 2 times in a row; failing fast for the next 10 s"):
        breaker.before_call()
    now[0] = 11.0
    breaker.before_call()  # half-open: this call may try
    with pytest.raises(EndpointUnavailable):
        breaker.before_call()  # ... and only this one
    breaker.record_success()
    breaker.before_call()
    assert not breaker.is_open


def test_one_calls_own_retries_never_open_the_breaker():
    """Failures of a single call (the server refuses one request) do not open it, whatever their number;
    the next call's failure does, once the streak is long enough."""
    breaker = CircuitBreaker("http://x", failures=2, cooldown_s=10)
    for _ in range(5):
        breaker.before_call()
        breaker.record_failure("call 1")
    assert not breaker.is_open
    breaker.record_success()
    breaker.record_failure("call 2")
    assert not breaker.is_open  # a new streak of one
    breaker.record_failure("call 3")
    assert breaker.is_open


def test_a_call_gets_all_its_retries_and_a_refused_question_does_not_fail_the_next():
    """retries 5 with fail-after 2: the call makes its 6 attempts (the breaker cut it at 2 before); the next
    call, to a server that works again, is sent (before: failed fast for 30 s)."""
    configure_breakers(2, 60)
    with FlakyServer(failures=6) as server:
        retriever = HttpRetriever(server.url, retries=5, backoff=0.01)
        with pytest.raises(RetrievalError, match=r"after 6 attempts"):
            retriever.search(["q"], 1)
        assert retriever.search(["jed hoyer"], 1)[0][0].id == "jed hoyer-1"
        retriever.close()
    assert server.posts == 7


# -- real servers that fail, then recover -----------------------------------------------------------------------
def test_retriever_recovers_after_server_errors():
    with FlakyServer(failures=2) as server:
        retriever = HttpRetriever(server.url, retries=3, backoff=0.01)
        docs = retriever.search(["jed hoyer"], 1)
        retriever.close()
    assert docs[0][0].id == "jed hoyer-1" and server.posts == 3 and retriever.requests == 3
    assert not breaker_for(retriever.endpoint).is_open


def test_llm_recovers_after_server_errors():
    with FlakyServer(failures=2) as server:
        client = LLMClient(LLMConfig(base_url=server.url + "/v1", model="m", retries=2, backoff_s=0.01))
        assert client.chat(HI) == "ok"
        client.close()
    assert server.posts == 3 and client.calls == 3 and client.failures == 2


def test_exhausted_retries_are_typed_and_name_the_endpoint():
    with FlakyServer(failures=100) as server:
        retriever = HttpRetriever(server.url, retries=1, backoff=0.01)
        with pytest.raises(RetrievalError) as info:
            retriever.search(["q"], 1)
        client = LLMClient(LLMConfig(base_url=server.url + "/v1", model="m", retries=1, backoff_s=0.01))
        with pytest.raises(LLMError) as llm_info:
            client.chat(HI)
    assert info.value.source == server.url + "/retrieve"
    assert "server error 503" in info.value.cause and "(after 2 attempts)" in info.value.cause
    assert llm_info.value.where.startswith(server.url + "/v1") and "(after 2 attempts)" in llm_info.value.cause


# -- real servers that never answer: fail fast after N timeouts --------------------------------------------------
def test_hung_retriever_fails_fast_after_n_timeouts():
    configure_breakers(2, 60)
    with HangServer() as server:
        retriever = HttpRetriever(server.url, timeout=0.3, retries=2, backoff=0.01)
        with pytest.raises(RetrievalError, match=r"after 3 attempts") as info:  # its own retries, all of them
            retriever.search(["q"], 1)
        assert info.value.source == server.url + "/retrieve"
        with pytest.raises(RetrievalError, match="failed 4 times in a row"):  # a second call: one more timeout
            retriever.search(["q"], 1)
        other = HttpRetriever(server.url, timeout=30)  # another client of the same server: the same breaker
        with pytest.raises(RetrievalError, match="failing fast"):  # not after its 30 s timeout: nothing was sent
            other.search(["q"], 1)
        posts = [r for r in server.requests if r.startswith("POST")]
        retriever.close()
        other.close()
    assert len(posts) == 4  # 3 + 1 timed-out attempts; the third call sent nothing


def test_hung_llm_fails_fast_after_n_timeouts():
    configure_breakers(2, 60)
    with HangServer() as server:
        client = LLMClient(LLMConfig(base_url=server.url + "/v1", model="m", timeout_s=0.3, retries=1, backoff_s=0.01))
        with pytest.raises(LLMError, match=r"after 2 attempts"):
            client.chat(HI)
        with pytest.raises(LLMError, match="failed 3 times in a row"):
            client.chat(HI)
        with pytest.raises(LLMError, match="failing fast") as info:
            client.chat(HI)
        posts = [r for r in server.requests if r.startswith("POST")]
        client.close()
    assert len(posts) == 3 and info.value.where == f"{server.url}/v1 (m)"


def test_start_up_checks_fail_on_a_hung_server_in_one_line():
    with HangServer() as server:
        retriever = HttpRetriever(server.url, timeout=0.4)
        with pytest.raises(RetrievalError, match=r"not answering \(no reply in 2 s\)"):  # at least 2 s
            retriever.check()
        client = LLMClient(LLMConfig(base_url=server.url + "/v1", model="m", timeout_s=0.4))
        with pytest.raises(LLMError, match="timed out after 2 s"):
            client.check()
    with HangServer(healthy=True) as server:
        HttpRetriever(server.url, timeout=0.4).check()  # answers /health: alive


# -- the per-question deadline ------------------------------------------------------------------------------------
def test_deadline_cuts_a_hung_call_without_blaming_the_endpoint():
    with HangServer() as server:
        retriever = HttpRetriever(server.url, timeout=30, retries=3, backoff=0.01)
        # the deadline, not the 30 s timeout, ended the call (the message names it) and nothing was retried
        with deadline.active(deadline.Deadline.after(0.5)):
            with pytest.raises(RetrievalError, match="the question's deadline of 0.5 s passed"):
                retriever.search(["q"], 1)
        with deadline.active(deadline.Deadline(0.5, time.monotonic() - 0.1)):  # passed 0.1 s ago
            with pytest.raises(RetrievalError, match="deadline"):  # already passed: no request at all
                retriever.search(["q"], 1)
        posts = [r for r in server.requests if r.startswith("POST")]
        retriever.close()
    assert len(posts) == 1
    assert not breaker_for(retriever.endpoint).is_open


def test_deadline_reaches_the_threads_tools_run_in():
    seen = []

    def tool(**kw):
        seen.append(deadline.current())
        return kw

    with deadline.active(deadline.Deadline.after(30)) as d:
        tools = deadline.carry({"t": tool})
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(lambda: tools["t"](x=1)).result() == {"x": 1}
    assert seen == [d] and deadline.current() is None
    assert deadline.carry({"t": tool})["t"] is tool  # no deadline: tools unchanged


# -- through the CLI ---------------------------------------------------------------------------------------------
def cli(*args, stdin=None, timeout=120):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LLM_MODEL", "LLM_BASE_URL", "PLAN_LLM_MODEL", "PLAN_LLM_BASE_URL", "OUTPUT_DIR")
    }
    return subprocess.run(
        [sys.executable, "-m", "pyrag_dsl.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
        env=env,
    )


def test_run_checks_the_retriever_at_start(tmp_path):
    from scripted_llm import ScriptedLLM
    from test_pipeline import QUESTION, default_handler

    with HangServer() as server, ScriptedLLM(default_handler()) as llm:
        r = cli(
            "run",
            "-",
            "--llm-url",
            llm.url,
            "--retriever-url",
            server.url,
            "--retriever-timeout",
            "0.5",
            "--output-dir",
            str(tmp_path),
            stdin=QUESTION + "\n",
        )
        asked = list(llm.requests)
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: RetrievalError: {server.url}/retrieve: not answering (no reply in 2 s)"
    ]
    assert asked == [] and not list(tmp_path.iterdir())


@pytest.mark.slow(seconds=22)
def test_run_checks_the_llm_at_start(tmp_path, bm25_index):
    with HangServer() as server:
        r = cli(
            "run",
            "-",
            "--llm-url",
            server.url + "/v1",
            "--timeout",
            "0.5",
            "--index",
            str(bm25_index),
            "--output-dir",
            str(tmp_path),
            stdin="Who?\n",
        )
    assert r.returncode == 3, r.stdout + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "timed out after 2 s" in r.stderr


@pytest.mark.slow(seconds=23)
def test_a_hung_retriever_fails_the_rest_of_the_batch_at_once(tmp_path):
    from scripted_llm import ScriptedLLM
    from test_pipeline import QUESTION, default_handler

    with HangServer(healthy=True) as server, ScriptedLLM(default_handler()) as llm:
        r = cli(
            "run",
            "-",
            "--json",
            "--llm-url",
            llm.url,
            "--retriever-url",
            server.url,
            "--retriever-timeout",
            "0.5",
            "--retriever-retries",
            "5",
            "--fail-after",
            "2",
            "--output-dir",
            str(tmp_path),
            stdin=f"{QUESTION}\n{QUESTION}\n{QUESTION}\n",
        )
        posts = [x for x in server.requests if x.startswith("POST")]
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 1 and len(rows) == 3, r.stderr  # every question answered with its typed error
    assert all(row["error"]["type"] == "ToolError" and server.url in row["error"]["message"] for row in rows)
    assert "after 6 attempts" in rows[0]["error"]["message"]
    assert "failed 7 times in a row" in rows[1]["error"]["message"]
    assert all("failing fast" in row["error"]["message"] for row in rows[2:])
    assert len(posts) == 7  # the first question's 6 attempts, one of the second's, none of the third's


@pytest.mark.slow(seconds=60)
def test_deadline_ends_a_slow_question_and_keeps_what_it_had(tmp_path, bm25_index):
    from scripted_llm import ScriptedLLM
    from test_pipeline import QUESTION, default_handler

    inner = default_handler()

    def slow_answers(role, prompt, body):
        if role == "answer_docs":
            time.sleep(6)
        return inner(role, prompt, body)

    with ScriptedLLM(slow_answers) as llm:
        r = cli(
            "run",
            "-",
            "--json",
            "--llm-url",
            llm.url,
            "--index",
            str(bm25_index),
            "--deadline",
            "8",
            "--output-dir",
            str(tmp_path),
            stdin=QUESTION + "\n",
        )
    (row,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 1, r.stderr
    assert row["error"]["type"] == "ToolError" and "the question's deadline of 8 s passed" in row["error"]["message"]
    assert row["sub_queries"] and row["generated_code"] and row["variables"].get("docs1")  # kept
    assert row["settings"]["deadline_s"] == 8


# -- a server that answers, slowly: each wait short, the whole reply long ---------------------------------------
@pytest.mark.slow(seconds=10)
def test_a_slow_drip_is_cut_at_the_timeout_on_the_wall_clock():
    """100 pieces, one per 0.1 s (10 s in all) under a 0.5 s timeout: httpx alone waited all 10 s (each wait
    is short); every client now ends the request early: the server could send only a few pieces."""
    with DripServer(pieces=100, every_s=0.1) as server:
        retriever = HttpRetriever(server.url, timeout=0.5, retries=0)
        client = LLMClient(LLMConfig(base_url=server.url + "/v1", model="m", timeout_s=0.5, retries=0))
        seen = []
        for ask in (
            lambda: retriever.search(["q"], 1),
            lambda: client.chat(HI),
            lambda: client.chat(HI, on_text=seen.append),
        ):
            with pytest.raises((RetrievalError, LLMError), match="timed out"):
                ask()
            # (the retriever's and the LLM's endpoints have breakers of their own: 2 failures open neither)
        retriever.close()
        client.close()
        sent = server.wait_for_replies(3)
    assert seen and len(seen) < 50  # the streamed reply was read until the time was up, not to its end
    assert len(sent) == 3 and all(n < 50 for n in sent), sent  # each reply was cut long before its end


def test_a_drip_that_ends_in_time_is_read_whole():
    with DripServer(pieces=3, every_s=0.05) as server:
        retriever = HttpRetriever(server.url, timeout=5, retries=0)
        client = LLMClient(LLMConfig(base_url=server.url + "/v1", model="m", timeout_s=5, retries=0))
        assert retriever.search(["q"], 1)[0][0].id == "d"
        assert client.chat(HI) == "ok"
        assert client.chat(HI, on_text=lambda t: None) == "w0 w1 w2"
        retriever.close()
        client.close()


def test_waiting_for_the_retrievers_connection_does_not_count_against_the_timeout():
    """The HTTP retriever has one connection: three searches at once queue for it. Each takes the server
    0.5 s; under a 1.5 s timeout all three must succeed (the clock starts when a request is sent)."""
    from concurrent.futures import ThreadPoolExecutor
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Slow(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(0.5)
            body = json.dumps(
                {"result": [[{"document": {"id": q, "contents": '"T"\nx'}, "score": 1.0}] for q in request["queries"]]}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        retriever = HttpRetriever(f"http://127.0.0.1:{server.server_address[1]}", timeout=1.5, retries=0)
        with ThreadPoolExecutor(3) as pool:
            hits = list(pool.map(lambda q: retriever.search([q], 1)[0][0].id, ["a", "b", "c"]))
        retriever.close()
    finally:
        server.shutdown()
        server.server_close()
    assert hits == ["a", "b", "c"]
