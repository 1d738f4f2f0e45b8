"""`pyrag-dsl run --concurrency N`: input order kept, a failing question does not stop the others, the same
records at concurrency 1 and 4, and the per-server cap on LLM requests in flight holds."""

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from latency_server import LatencyServer, Script  # noqa: E402

from pyrag_dsl.pipeline.questions import run_questions  # noqa: E402
from pyrag_dsl.retrievers.tantivy_bm25 import build_tantivy_index  # noqa: E402

SMALL_CORPUS = Path(__file__).resolve().parent / "data" / "small-corpus.jsonl"

N = 6
FAILING = 3  # question 3's Decompose request gets a 400 (not retried)
QUESTIONS = [f"Who is older, Alpha{i} or Beta{i}?" for i in range(1, N + 1)]


class BadRequest(Exception):
    status = 400


class Scripted(Script):
    def __call__(self, role, prompt, body):
        if role == "decompose" and f"Alpha{FAILING} " in prompt:
            raise BadRequest("the model rejects this question")
        return super().__call__(role, prompt, body)


def delay_for(role, prompt):
    """Earlier questions answer more slowly, so they finish after later ones when several are in flight."""
    m = re.search(r"Alpha(\d)", prompt)
    k = int(m.group(1)) if m else N
    return 0.01 + (0.12 if role.startswith("answer") else 0.03) * (N - k) / N


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    """An in-process BM25 index (no JVM: the CLI starts faster)."""
    out = tmp_path_factory.mktemp("tantivy")
    build_tantivy_index(SMALL_CORPUS, out)
    return out


@pytest.fixture
def llm():
    with LatencyServer(Scripted(answers={"Alpha": "1960", "Beta": "1950"}), delay_for=delay_for) as server:
        yield server


def cli(*args, stdin=None):
    import os

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
        timeout=300,
        env=env,
    )


def run(llm, index, out, *extra):
    r = cli(
        "run",
        "-",
        "--json",
        "--llm-url",
        llm.url,
        "--llm-model",
        "latency",
        "--index",
        str(index),
        "--output-dir",
        str(out),
        "--no-grammar",
        *extra,
        stdin="\n".join(QUESTIONS) + "\n",
    )
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    return r, rows


def comparable(row):
    return {
        k: row[k]
        for k in (
            "original_query",
            "sub_queries",
            "generated_code",
            "variables",
            "final_answer",
            "programs",
            "llm_calls",
            "retrieval_calls",
            "retrievals",
        )
    } | {"error": (row["error"] or {}).get("type")}


def test_concurrent_run_keeps_input_order_and_the_same_records(llm, index, tmp_path):
    r1, seq = run(llm, index, tmp_path / "seq")
    peak_seq = llm.peak_in_flight
    llm.peak_in_flight = 0
    r4, par = run(llm, index, tmp_path / "par", "--concurrency", "4", "--llm-inflight", "3")
    assert r1.returncode == 1 and r4.returncode == 1, r4.stderr  # exit 1: a question failed, the rest answered
    assert [row["n"] for row in par] == list(range(1, N + 1))
    assert [row["original_query"] for row in par] == QUESTIONS
    assert [comparable(x) for x in par] == [comparable(x) for x in seq]
    assert par[FAILING - 1]["error"] is not None and par[FAILING - 1]["final_answer"] is None
    others = [row for row in par if row["n"] != FAILING]
    assert all(
        row["error"] is None and row["final_answer"] == row["original_query"].split(" or ")[1][:-1] for row in others
    )
    assert peak_seq == 1 and llm.peak_in_flight == 3  # several questions in flight, capped at --llm-inflight
    for out in ("seq", "par"):
        (run_dir,) = list((tmp_path / out).iterdir())
        saved = {int(p.name): json.loads((p / "result.json").read_text()) for p in run_dir.iterdir()}
        assert sorted(saved) == list(range(1, N + 1))
        assert [saved[n]["final_answer"] for n in sorted(saved)] == [row["final_answer"] for row in seq]


def test_bad_concurrency_is_a_usage_error(tmp_path):
    r = cli("run", "-", "--concurrency", "0", stdin="a question?\n")
    assert r.returncode == 2 and "--concurrency must be >= 1" in r.stderr


def test_run_questions_orders_results_and_survives_an_exception():
    """Question n returns only after on_finished has heard of question n+1 (so the four must run at once, and
    4 finishes first): on_finished hears 4, 3, 2, 1, on_ordered still in input order, and question 2's exception
    is its own error. (Set when run() returns, the event would let question 3 be collected before 4.)"""
    done = {n: threading.Event() for n in range(1, 6)}
    done[5].set()

    class Pipe:
        def __init__(self, n):
            self.n = n

        def run(self, question):
            if not done[self.n + 1].wait(30):
                raise TimeoutError(f"question {self.n + 1} did not finish while {self.n} ran")
            if self.n == 2:
                raise RuntimeError("boom")
            return type("R", (), {"error": None, "final_answer": question.upper()})()

    finished, ordered = [], []

    def on_finished(o):
        finished.append(o.n)
        done[o.n].set()

    outs = run_questions(
        Pipe,
        ["a", "b", "c", "d"],
        4,
        on_finished=on_finished,
        on_ordered=lambda o: ordered.append(o.n),
        stop=threading.Event(),
    )
    assert ordered == [1, 2, 3, 4] and finished == [4, 3, 2, 1]
    assert outs[1].result.error["type"] == "RuntimeError" and outs[1].result.error["message"] == "boom"
    assert [o.result.final_answer for o in outs if o.n != 2] == ["A", "C", "D"]


def _is_question_1_answer(role, prompt):
    return ("Alpha1 " in prompt or "Alpha1?" in prompt) and role.startswith("answer")


def _start_run(server, index, out_dir, concurrency):
    """`pyrag-dsl run -` on QUESTIONS (stdin already closed) against `server`, saving under `out_dir`."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("LLM_BASE_URL", "LLM_MODEL", "OUTPUT_DIR")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyrag_dsl.cli", "run", "-", "--json", "--llm-url", server.url]
        + ["--llm-model", "latency", "--index", str(index), "--output-dir", str(out_dir)]
        + ["--no-grammar", "--concurrency", str(concurrency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    proc.stdin.write("\n".join(QUESTIONS) + "\n")
    proc.stdin.close()
    proc.stdin = None
    return proc


def _wait_for_saved_results(out_dir, n, proc, cap_s=240):
    """Polls until `n` questions have their result.json under `out_dir` (a hang guard bounds it)."""
    import time

    end = time.monotonic() + cap_s
    while len(list(out_dir.glob("*/*/result.json"))) < n:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < end, "timed out waiting for the finished questions to be saved"
        time.sleep(0.1)


def _check_the_partial_save(out_dir, rows):
    (run_dir,) = list(out_dir.iterdir())
    assert sorted(int(p.name) for p in run_dir.iterdir()) == [1, 2, 3, 4, 5, 6]
    partial = json.loads((run_dir / "1" / "result.json").read_text())
    assert partial["error"]["type"] == "Interrupted" and rows[-1]["error"]["type"] == "Interrupted"
    assert partial["error"]["message"] == "terminated (SIGTERM)"
    assert partial["sub_queries"] and partial["generated_code"]  # decomposed and planned before the signal
    trace = (run_dir / "1" / "trace.jsonl").read_text().splitlines()[1:]
    assert any(e["kind"] == "retrieve" for e in map(json.loads, trace))


def test_sigterm_saves_and_prints_what_finished(index, tmp_path):
    """Question 1's answer is held by the server; SIGTERM once the other five are saved: exit 143 while that
    answer is still held (the run did not wait for it), those five printed (in order) and saved, and question 1
    saved with what it had computed."""
    import signal

    release = threading.Event()

    def hold_question_1(role, prompt):
        if _is_question_1_answer(role, prompt):
            release.wait(120)
        return 0.01

    out_dir = tmp_path / "out"
    with LatencyServer(Scripted(answers={"Alpha": "1960", "Beta": "1950"}), delay_for=hold_question_1) as server:
        proc = _start_run(server, index, out_dir, concurrency=3)
        try:
            _wait_for_saved_results(out_dir, N - 1, proc)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)  # a hang guard: the run must not wait for question 1
            still_held = not release.is_set() and server.in_flight >= 1
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 143, err
    assert still_held  # the run ended while question 1's answer was still held by the server
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["n"] for row in rows] == [2, 3, 4, 5, 6, 1]  # the finished in order, then the partial one
    assert "terminated (SIGTERM)" in err and "5 of 6 questions finished" in err
    assert "1 in flight saved with what they had computed (question 1)" in " ".join(err.split())
    _check_the_partial_save(out_dir, rows)


def test_ctrl_c_keeps_answered_questions_as_finished_and_saves_the_ones_in_flight():
    """Ctrl-C while question 1 is being saved: question 2 has returned meanwhile (finished, not partial),
    question 3 is still running (its partial result, from interrupted_result, goes to on_interrupted)."""
    import time

    class Pipe:
        def __init__(self, n):
            self.n = n

        def run(self, question):
            time.sleep({1: 0.0, 2: 0.1, 3: 5.0}[self.n])
            return type("R", (), {"error": None, "final_answer": question.upper()})()

        def interrupted_result(self):
            return type("R", (), {"error": {"type": "Interrupted"}, "final_answer": None})()

    finished, ordered, partial = [], [], []

    def on_finished(o):
        finished.append(o.n)
        if o.n == 1:
            time.sleep(0.5)  # question 2 returns meanwhile
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_questions(
            Pipe,
            ["a", "b", "c"],
            3,
            on_finished=on_finished,
            on_ordered=lambda o: ordered.append(o.n),
            on_interrupted=lambda o: partial.append((o.n, o.result.error["type"])),
        )
    assert finished == [1, 2] and ordered == [1, 2] and partial == [(3, "Interrupted")]
