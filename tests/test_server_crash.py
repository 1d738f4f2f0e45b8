"""A dying embedded llama.cpp server is named as such: the signal, the log's last lines and the fix, at start
(the warm-up completion), mid-run (from the LLM client) and in `pyrag-dsl run` (one line, exit 3, the
questions not asked keep their place). The server is a stand-in (tests/llama_standin) that kills itself with a
real signal at a chosen completion, started by the real launcher as `python -m llama_cpp.server`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ops_helpers import tantivy_index  # noqa: F401 - a module fixture

from pyrag_dsl.agents.cpu import NO_AMX_CFLAGS, AmxProbe, cpu_flags, probe_amx, signal_name
from pyrag_dsl.agents.llm import LLMClient, LLMConfig, LLMError
from pyrag_dsl.agents.local_server import LocalLLMServer, ServerCrashed, crash_remedy

STANDIN = Path(__file__).parent / "llama_standin"


@pytest.fixture
def standin(monkeypatch, tmp_path):
    """Environment that makes `python -m llama_cpp.server` the stand-in; returns a dummy GGUF path."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(STANDIN), os.environ.get("PYTHONPATH", "")]))
    model = tmp_path / "dummy.gguf"
    model.write_bytes(b"GGUF")
    return model


@pytest.mark.model
def test_crash_at_the_warm_up_is_named_with_signal_log_and_fix(standin, monkeypatch):
    monkeypatch.setenv("STANDIN_CRASH_AT", "1")
    server = LocalLLMServer(standin, startup_timeout_s=60)
    with pytest.raises(ServerCrashed) as info:
        server.start()
    err = info.value
    assert err.how == "SIGSEGV"
    assert "warm-up" in err.when
    assert "stand-in fault" in err.log_tail  # the server's own last words
    assert err.log_path is not None and err.log_path.is_file()  # kept for the user to read
    assert "fix:" in str(err) and "cannot connect" not in str(err)
    assert server.proc is None
    server.stop()
    err.log_path.unlink()


@pytest.mark.model
def test_crash_mid_run_is_raised_by_the_client_instead_of_cannot_connect(standin, monkeypatch):
    monkeypatch.setenv("STANDIN_CRASH_AT", "3")  # warm-up, one good answer, then the crash
    with LocalLLMServer(standin, startup_timeout_s=60) as server:
        client = LLMClient(LLMConfig(model=server.alias, base_url=server.base_url, retries=3, backoff_s=0.05))
        client.health = server.check_alive
        assert client.chat([{"role": "user", "content": "hi"}]) == "unknown"
        with pytest.raises(ServerCrashed) as info:
            client.chat([{"role": "user", "content": "hi again"}])
        assert info.value.how == "SIGSEGV" and info.value.when == "during the run"
        assert client.calls == 2  # no retries against a dead server
        client.close()
        path = info.value.log_path
    assert path is not None and path.is_file()
    path.unlink()


@pytest.mark.model
def test_a_stopped_server_is_not_a_crash(standin, monkeypatch):
    monkeypatch.delenv("STANDIN_CRASH_AT", raising=False)
    server = LocalLLMServer(standin, startup_timeout_s=60).start()
    log = server.log_path
    server.stop()
    assert server.crash is None
    assert log is not None and not log.exists()  # a clean stop removes the log


@pytest.mark.parametrize(
    "code,flags,expect",
    [
        (-4, frozenset(), "instructions this CPU lacks"),  # SIGILL: built for another CPU
        (-11, frozenset({"amx_tile", "avx512f"}), NO_AMX_CFLAGS),  # SIGSEGV where AMX is advertised
        (-11, frozenset({"avx2"}), "pyrag-dsl doctor"),  # SIGSEGV elsewhere: the log and doctor
        (-9, frozenset(), "out of memory"),
        (1, frozenset(), "pyrag-dsl doctor"),
    ],
)
def test_crash_remedy_names_the_fix(code, flags, expect):
    assert expect in crash_remedy(code, "", flags)


def test_cpu_flags_and_signal_names():
    info = "processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx avx2 amx_tile\n\nprocessor\t: 1\nflags\t: fpu\n"
    assert cpu_flags(info) == frozenset({"fpu", "avx", "avx2", "amx_tile"})
    assert cpu_flags("no flags here") == frozenset()
    assert signal_name(-11) == "SIGSEGV" and signal_name(-4) == "SIGILL"


def test_amx_probe_reports_xcr0_and_survives_a_faulting_child(monkeypatch):
    real = probe_amx()  # the real child: XGETBV runs wherever AVX does (every x86-64 machine we use)
    if "avx" in cpu_flags():
        assert real.xcr0 is not None and real.xcr0 & 0b111 == 0b111  # x87, SSE and AVX state are on
    if "amx_tile" not in cpu_flags():
        assert real.usable is False
    # a child that reports XCR0 with AMX state on, is granted AMX, then dies at LDTILECFG
    script = (
        "import json, os, signal; print(json.dumps({'xcr0': (1 << 17) | (1 << 18) | 7}), flush=True); "
        "print(json.dumps({'permission': True}), flush=True); os.kill(os.getpid(), signal.SIGSEGV)"
    )
    real_run = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: real_run([sys.executable, "-c", script], **kw))
    faulted = probe_amx()
    assert faulted == AmxProbe(xcr0=(1 << 17) | (1 << 18) | 7, permission=True, tile_ok=False, signal="SIGSEGV")
    assert faulted.os_enabled is True and faulted.usable is False


@pytest.mark.model
def test_run_stops_at_a_dead_server_with_one_line_and_keeps_the_rest(standin, monkeypatch, tmp_path, tantivy_index):
    monkeypatch.setenv("STANDIN_CRASH_AT", "3")  # warm-up, decompose of question 1, then the plan call dies
    questions = tmp_path / "q.txt"
    questions.write_text("Who wrote Hamlet?\nWho painted the Mona Lisa?\nWhere is Paris?\n")
    out = tmp_path / "out"
    env = {**os.environ, "OUTPUT_DIR": str(out)}
    for key in ("LLM_BASE_URL", "PLAN_LLM_BASE_URL"):
        env.pop(key, None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pyrag_dsl.cli",
            "run",
            str(questions),
            "--model",
            str(standin),
            "--index",
            str(tantivy_index),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "error: ServerCrashed" in line]
    assert len(lines) == 1 and "SIGSEGV" in lines[0] and "fix:" in lines[0], proc.stdout + proc.stderr
    assert "cannot connect" not in proc.stdout + proc.stderr
    assert "1 of 3 questions asked and saved; 2 not started" in proc.stdout + proc.stderr
    [run_dir] = [p for p in out.iterdir() if p.is_dir()]
    saved = json.loads((run_dir / "1" / "result.json").read_text())
    assert "SIGSEGV" in saved["error"]["message"]
    assert not (run_dir / "2").exists()


@pytest.mark.model
def test_eval_stops_at_a_dead_server_and_keeps_its_records(standin, monkeypatch, tmp_path, tantivy_index):
    monkeypatch.setenv("STANDIN_CRASH_AT", "4")  # warm-up, question 1's direct answer, 2's, then the crash
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "question": f"Question {i}?", "golden_answers": ["x"]}) + "\n"
            for i in range(1, 6)
        )
    )
    out = tmp_path / "eval"
    env = {k: v for k, v in os.environ.items() if not k.endswith("LLM_BASE_URL")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pyrag_dsl.cli",
            "eval",
            "--data",
            str(qa),
            "--method",
            "direct",
            "--out",
            str(out),
            "--model",
            str(standin),
            "--index",
            str(tantivy_index),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 3, text
    assert sum("ServerCrashed" in line for line in text.splitlines()) == 1 and "SIGSEGV" in text, text
    assert "--resume --retry-errors" in text
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ["q1", "q2", "q3"]  # q4 and q5 were never asked
    assert records[2]["error"] and not records[0]["error"]
    assert (out / "summary.json").is_file()


@pytest.mark.model
def test_a_foreign_server_on_the_chosen_port_is_not_taken_for_ours(standin, monkeypatch):
    """The launcher picks a free port and releases it; if another process binds it first, that process's
    answers must not pass for the embedded server's: the launcher checks the listening socket is its child's,
    and starts again on another port when its child could not bind."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from pyrag_dsl.agents import local_server

    class Foreign(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"data": []}')

    foreign = ThreadingHTTPServer(("127.0.0.1", 0), Foreign)
    threading.Thread(target=foreign.serve_forever, daemon=True).start()
    ports = iter([foreign.server_address[1]])  # the first "free" port is taken; then real free ports
    real = local_server._free_port
    monkeypatch.setattr(local_server, "_free_port", lambda: next(ports, None) or real())
    assert local_server.listens(os.getpid(), foreign.server_address[1]) is True
    monkeypatch.setenv("STANDIN_CRASH_AT", "1")
    try:
        with pytest.raises(ServerCrashed) as info:  # our stand-in's own crash, not the foreign 200
            LocalLLMServer(standin, startup_timeout_s=60).start()
        assert info.value.how == "SIGSEGV"
        info.value.log_path.unlink()
    finally:
        foreign.shutdown()
