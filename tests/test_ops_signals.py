"""Signals through the CLI as operators send them: SIGTERM (Slurm, Docker, `timeout`) is handled like
Ctrl-C, and the embedded llama.cpp server never outlives its parent, even one killed by SIGKILL."""

import json
import signal
import time

import pytest
from ops_helpers import alive, children, cmdline, pgrp, popen, tantivy_index, wait_for  # noqa: F401
from scripted_llm import ScriptedLLM
from test_pipeline import QUESTION, default_handler

from pyrag_dsl.agents.models import TEST_MODEL

pytestmark = pytest.mark.slow(seconds=25)

SECOND = "Who is older, Jed Hoyer or John W. Henry?"


def _slow_second_question():
    base = default_handler()
    seen = {"decompose": 0}

    def handler(role, prompt, body):
        if role == "decompose":
            seen["decompose"] += 1
        if role == "answer_synth" and seen["decompose"] == 2:
            time.sleep(6)  # the signal lands while question 2 waits for its last answer
        return base(role, prompt, body)

    return handler


def test_sigterm_mid_run_keeps_finished_and_partial_results(tantivy_index, tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text(f"{QUESTION}\n{SECOND}\n")
    out = tmp_path / "out"
    with ScriptedLLM(_slow_second_question()) as llm:
        proc = popen(
            "run", str(questions), "--llm-url", llm.url, "--index", str(tantivy_index), "--output-dir", str(out)
        )
        wait_for(lambda: llm.count("answer_synth") >= 2, 120, "question 2's last answer", proc)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "terminated (SIGTERM) during question 2" in stdout + stderr
    assert "Traceback" not in stderr
    (run_dir,) = list(out.iterdir())
    first = json.loads((run_dir / "1" / "result.json").read_text())
    assert first["final_answer"] == "John William Henry II" and first["error"] is None  # finished: kept
    second = json.loads((run_dir / "2" / "result.json").read_text())
    assert second["error"]["type"] == "Interrupted"
    assert second["variables"]["jed_birth"] == "December 7, 1973"  # computed before the signal: kept
    assert (run_dir / "2" / "trace.jsonl").read_text().count('"kind":"answer"') >= 2
    assert not [p for p in run_dir.rglob(".*tmp*")]


def test_sigterm_during_exec_writes_the_partial_trace(tantivy_index, tmp_path):
    base = default_handler()

    def slow(role, prompt, body):
        if role == "answer_synth":
            time.sleep(6)
        return base(role, prompt, body)

    from corpus import JED_HOYER

    program = tmp_path / "p.py"
    program.write_text(JED_HOYER)
    trace = tmp_path / "t.jsonl"
    with ScriptedLLM(slow) as llm:
        proc = popen("exec", str(program), "--trace", str(trace), "--llm-url", llm.url, "--index", str(tantivy_index))
        wait_for(lambda: llm.count("answer_synth") >= 1, 120, "the synthesis answer", proc)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "terminated (SIGTERM)" in stderr and "Traceback" not in stderr
    rows = [json.loads(line) for line in trace.read_text().splitlines()]
    assert rows[-1]["kind"] == "final" and rows[-1]["error"]["type"] == "Interrupted"
    assert sum(r.get("kind") == "answer" for r in rows) >= 2  # the answers that finished are in the trace
    assert "Steps before terminated (SIGTERM)" in stdout and "December 7, 1973" in stdout  # and shown


def _llama_child(parent: int) -> int | None:
    for pid in children(parent):
        if "llama_cpp.server" in cmdline(pid):
            return pid
    return None


@pytest.mark.model
def test_embedded_server_dies_with_a_killed_parent(tantivy_index, tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text(QUESTION + "\n")
    proc = popen(
        "run",
        str(questions),
        "--model",
        TEST_MODEL,
        "--index",
        str(tantivy_index),
        "--output-dir",
        str(tmp_path / "out"),
    )
    try:
        child = wait_for(lambda: _llama_child(proc.pid), 120, "the llama.cpp child", proc)
        assert pgrp(child) == child and pgrp(child) != pgrp(proc.pid)  # its own process group
        time.sleep(1.0)  # let it load the model: the kill lands on a working server
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        wait_for(lambda: not alive(child), 15, "the llama.cpp child to die with its parent")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.model
def test_sigterm_stops_the_embedded_server(tantivy_index, tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text(QUESTION + "\n")
    proc = popen(
        "run",
        str(questions),
        "--model",
        TEST_MODEL,
        "--index",
        str(tantivy_index),
        "--output-dir",
        str(tmp_path / "out"),
    )
    try:
        child = wait_for(lambda: _llama_child(proc.pid), 120, "the llama.cpp child", proc)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert not alive(child)
