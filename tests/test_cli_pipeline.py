"""`pyrag-dsl run | exec | replay | serve-llm` against a scripted LLM server and a real index."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import JED_HOYER
from scripted_llm import ScriptedLLM
from test_pipeline import QUESTION, adaptive_handler, default_handler

from pyrag_dsl.pipeline.session import ConfigError, Settings

pytestmark = pytest.mark.slow(seconds=240)


def cli(*args, stdin=None, env=None, cwd=None):
    import os

    full_env = {**os.environ, **(env or {})}
    for key in ("LLM_MODEL", "LLM_BASE_URL", "PLAN_LLM_MODEL", "PLAN_LLM_BASE_URL", "OUTPUT_DIR"):
        if key not in (env or {}):
            full_env.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "pyrag_dsl.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
        env=full_env,
        cwd=cwd,
    )


@pytest.fixture
def llm():
    with ScriptedLLM(default_handler()) as server:
        yield server


def test_run_writes_outputs_and_shows_the_answer(llm, bm25_index, tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text(QUESTION + "\n\n")
    r = cli(
        "run",
        str(questions),
        "--llm-url",
        llm.url,
        "--llm-model",
        "scripted",
        "--index",
        str(bm25_index),
        "--output-dir",
        str(tmp_path / "out"),
    )
    assert r.returncode == 0, r.stderr + r.stdout
    assert "John William Henry II" in r.stdout and "Sub-queries" in r.stdout
    (run_dir,) = list((tmp_path / "out").iterdir())
    files = sorted(p.name for p in (run_dir / "1").iterdir())
    assert files == ["generated_code.py", "result.json", "trace.jsonl"]
    result = json.loads((run_dir / "1" / "result.json").read_text())
    assert result["final_answer"] == "John William Henry II"
    assert (run_dir / "1" / "generated_code.py").read_text() == JED_HOYER

    trace = run_dir / "1" / "trace.jsonl"
    replay = cli("replay", str(trace))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "replay OK" in replay.stdout
    step = cli("replay", str(trace), "--step", "4")
    assert step.returncode == 0 and '"kind": "retrieve"' in step.stdout
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text(trace.read_text().replace('"output":"December 7, 1973"', '"output":"1999"'))
    bad = cli("replay", str(tampered))
    assert bad.returncode == 1 and "Differences" in bad.stdout and "does not reproduce" in bad.stdout


def test_run_json_lines_from_stdin_with_env_config(llm, bm25_index, tmp_path):
    r = cli(
        "run",
        "-",
        "--json",
        "--index",
        str(bm25_index),
        stdin=f"{QUESTION}\n{QUESTION}\n",
        env={"LLM_BASE_URL": llm.url, "LLM_MODEL": "scripted", "OUTPUT_DIR": str(tmp_path / "o")},
    )
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["n"] for row in rows] == [1, 2]
    assert all(row["final_answer"] == "John William Henry II" for row in rows)
    assert Path(rows[1]["output"]).parent.parent == tmp_path / "o"


def test_earlier_results_survive_a_later_failure(bm25_index, tmp_path):
    count = {"n": 0}
    base = default_handler()

    def handler(role, prompt, body):
        if role == "decompose":
            count["n"] += 1
            if count["n"] > 1:
                raise RuntimeError("model crashed")
        return base(role, prompt, body)

    with ScriptedLLM(handler) as server:
        r = cli(
            "run",
            "-",
            "--llm-url",
            server.url,
            "--index",
            str(bm25_index),
            "--output-dir",
            str(tmp_path),
            "--json",
            stdin=f"{QUESTION}\nSecond question?\n",
        )
    assert r.returncode == 1
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert rows[0]["error"] is None and rows[1]["error"]["type"] == "LLMError"
    (run_dir,) = list(tmp_path.iterdir())
    assert json.loads((run_dir / "1" / "result.json").read_text())["final_answer"] == "John William Henry II"
    assert json.loads((run_dir / "2" / "result.json").read_text())["error"]["type"] == "LLMError"


def test_exec_runs_a_program_with_adaptive_retry(bm25_index, tmp_path):
    from test_pipeline import ADAPTIVE_PROGRAM

    program = tmp_path / "p.py"
    program.write_text(ADAPTIVE_PROGRAM)
    with ScriptedLLM(adaptive_handler()) as server:
        r = cli(
            "exec",
            str(program),
            "--llm-url",
            server.url,
            "--index",
            str(bm25_index),
            "--trace",
            str(tmp_path / "t.jsonl"),
        )
    assert r.returncode == 0, r.stderr + r.stdout
    assert "final_answer = '28'" in r.stdout and "adaptive retry" in r.stdout
    assert (tmp_path / "t.jsonl").exists()


def test_exec_invalid_program(tmp_path):
    program = tmp_path / "p.py"
    program.write_text("import os\n")
    r = cli("exec", str(program))
    assert r.returncode == 1 and "DisallowedConstruct" in r.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("run", "/no/such/questions.txt"), "no such file"),
        (("replay", "/no/such/trace.jsonl"), "no such trace file"),
        (("run", "-", "--model", "/no/model.gguf"), "model file not found"),
    ],
)
def test_user_errors_are_one_line(args, message):
    r = cli(*args, stdin="a question\n")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_an_output_path_under_a_file_is_one_line_naming_it(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "1", "contents": "\\"T\\"\\ntext"}\n')
    (tmp_path / "afile").write_text("x")
    r = cli("index", "build", str(corpus), "--kind", "tantivy", "--out", str(tmp_path / "afile" / "idx"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "cannot use" in r.stderr and "afile" in r.stderr and "a directory is needed" in r.stderr


def test_empty_questions_file(tmp_path):
    (tmp_path / "q.txt").write_text("\n  \n")
    r = cli("run", str(tmp_path / "q.txt"))
    assert r.returncode == 2 and "no questions" in r.stderr


def test_unreachable_llm_is_one_line(bm25_index):
    from test_http_retrieval import _free_port

    r = cli("run", "-", "--llm-url", f"http://127.0.0.1:{_free_port()}/v1", "--index", str(bm25_index), stdin="q?\n")
    assert r.returncode == 3 and "LLMError" in r.stderr and "cannot connect" in r.stderr  # 3: runtime failure
    assert "Traceback" not in r.stderr


def test_bad_trace_file(tmp_path):
    (tmp_path / "t.jsonl").write_text("garbage\n")
    r = cli("replay", str(tmp_path / "t.jsonl"))
    assert r.returncode == 2 and "not JSON" in r.stderr


def test_serve_llm_builds_the_vllm_command():
    r = cli(
        "serve-llm",
        "--role",
        "plan",
        "--model",
        "Qwen/Qwen2.5-Coder-7B-Instruct",
        "--dry-run",
        "--tensor-parallel-size",
        "2",
    )
    assert r.returncode == 0
    line = r.stdout.splitlines()[0].split()
    assert line[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert line[line.index("--port") + 1] == "8336" and line[line.index("--tensor-parallel-size") + 1] == "2"
    assert "PLAN_LLM_BASE_URL=http://127.0.0.1:8336/v1" in r.stdout
    r = cli(
        "serve-llm",
        "--role",
        "answer",
        "--model",
        "Qwen/Qwen2.5-7B-Instruct",
        "--dry-run",
        "--",
        "--gpu-memory-utilization",
        "0.8",
    )
    assert "--port 8337" in r.stdout and r.stdout.split("\n")[0].endswith("--gpu-memory-utilization 0.8")


def test_settings_precedence(tmp_path):
    env = {
        "LLM_BASE_URL": "http://env:1/v1",
        "LLM_MODEL": "env-model",
        "PLAN_LLM_BASE_URL": "http://plan:2/v1",
        "ENABLE_THINKING": "true",
        "OUTPUT_DIR": "/env/out",
    }
    s = Settings.resolve(environ=env)
    assert (s.llm.base_url, s.llm.model, s.llm.enable_thinking) == ("http://env:1/v1", "env-model", True)
    assert (s.plan_llm.base_url, s.plan_llm.model) == ("http://plan:2/v1", "env-model")
    assert s.output_dir == "/env/out" and not s.embedded_llm
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'output_dir = "/cfg/out"\n[llm]\nbase_url = "http://cfg:3/v1"\ntimeout_s = 7\n'
        '[pipeline]\ntopk = 3\npolicy = "reference"\n'
    )
    s = Settings.resolve(config_file=str(cfg), environ=env, flags={"llm_model": "flag-model", "topk": 4})
    assert (s.llm.base_url, s.llm.model, s.llm.timeout_s) == ("http://cfg:3/v1", "flag-model", 7)
    assert s.pipeline.topk == 4 and s.pipeline.policy == "reference" and s.output_dir == "/cfg/out"
    assert Settings.resolve(environ={}).embedded_llm
    bad = tmp_path / "bad.toml"
    bad.write_text("[nonsense]\nx = 1\n")
    with pytest.raises(ConfigError, match="unknown section"):
        Settings.resolve(config_file=str(bad), environ={})
    with pytest.raises(ConfigError, match="pick one"):
        Settings.resolve(environ={}, flags={"retriever_url": "http://x", "index": "/y"})


@pytest.mark.parametrize("json_lines", [False, True])
def test_ctrl_c_keeps_the_partial_result(bm25_index, tmp_path, json_lines):
    import signal
    import threading
    import time

    base = default_handler()
    held = threading.Event()

    def slow(role, prompt, body):
        if role == "answer_synth":
            held.wait(120)  # the synthesis is held until Ctrl-C has been sent: the run cannot finish first
        return base(role, prompt, body)

    with ScriptedLLM(slow) as server:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pyrag_dsl.cli",
                "run",
                "-",
                "--llm-url",
                server.url,
                "--index",
                str(bm25_index),
                "--output-dir",
                str(tmp_path),
                *(["--json"] if json_lines else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # as from a terminal: a suite started as a background job (`cmd &` in a script)
            # passes SIGINT on ignored, and Python then never raises KeyboardInterrupt
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        proc.stdin.write(QUESTION + "\n")
        proc.stdin.close()
        proc.stdin = None
        deadline = time.monotonic() + 240  # a cold start imports pyserini and torch: slow on a loaded machine
        while server.count("answer_synth") == 0:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            held.set()
    assert proc.returncode == 130, err
    (run_dir,) = list(tmp_path.iterdir())
    result = json.loads((run_dir / "1" / "result.json").read_text())
    assert result["error"]["type"] == "Interrupted"
    assert result["variables"]["jed_birth"] == "December 7, 1973"  # computed before Ctrl-C, kept
    assert result["error"]["message"] == "interrupted by the user"
    if json_lines:  # the partial question's JSON line too
        (row,) = [json.loads(line) for line in out.splitlines()]
        assert row["n"] == 1 and row["error"]["type"] == "Interrupted" and row["output"]


def test_replay_live_against_current_tools(bm25_index, tmp_path):
    with ScriptedLLM(default_handler()) as server:
        r = cli(
            "run",
            "-",
            "--llm-url",
            server.url,
            "--index",
            str(bm25_index),
            "--output-dir",
            str(tmp_path),
            stdin=QUESTION + "\n",
        )
        assert r.returncode == 0
        (run_dir,) = list(tmp_path.iterdir())
        live = cli(
            "replay", str(run_dir / "1" / "trace.jsonl"), "--live", "--llm-url", server.url, "--index", str(bm25_index)
        )
    assert live.returncode == 0, live.stderr
    assert "replay OK" in live.stdout  # the same tools give the same steps


HOSTILE_ANSWER = "[/] \x1b[31mred\x1b]0;retitled\x07 [bold]b[/bold] \u202eevil"


@pytest.mark.parametrize("n_questions", [1, 2])
def test_answers_and_questions_print_as_text_not_markup_or_terminal_codes(bm25_index, tmp_path, n_questions):
    """An answer (LLM output) or question holding rich markup or terminal escapes: printed as text; before,
    `[/]` raised MarkupError after the run and ESC sequences reached the terminal."""
    base = default_handler()

    def handler(role, prompt, body):
        if role == "answer_synth":
            return f"<answer>{HOSTILE_ANSWER}</answer>"
        return base(role, prompt, body)

    questions = tmp_path / "q.txt"
    questions.write_text("\n".join([QUESTION + " [/red]"] * n_questions) + "\n")
    with ScriptedLLM(handler) as server:
        r = cli(
            "run",
            str(questions),
            "--llm-url",
            server.url,
            "--index",
            str(bm25_index),
            "--output-dir",
            str(tmp_path / "out"),
        )
    assert r.returncode == 0, r.stderr + r.stdout
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout and "\u202e" not in r.stdout
    assert "[/]" in r.stdout and "[bold]b[/bold]" in r.stdout and "[/red]" in r.stdout
    assert "\\x1b[31mred" in r.stdout
    (run_dir,) = list((tmp_path / "out").iterdir())  # the saved result keeps the answer as it was
    answer = json.loads((run_dir / "1" / "result.json").read_text())["final_answer"]
    assert "[/]" in answer and "[bold]b[/bold]" in answer


def test_error_line_shows_type_and_message_as_text():
    from rich.console import Console

    from pyrag_dsl.cli.safe_text import error_line

    line = error_line({"type": "LLMError", "message": "http://x/v1: server error 500 [/] \x1b[2J" + "y" * 500})
    console = Console(width=400, record=True, color_system=None)
    console.print(line, highlight=False)  # markup-safe: no MarkupError
    out = console.export_text()
    assert out.startswith("LLMError: http://x/v1: server error 500 [/] \\x1b[2J") and "\x1b" not in out
    assert len(out.strip()) < 200 and out.strip().endswith("...")


def test_replay_of_a_directory_or_a_binary_file_is_one_clear_line(tmp_path):
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe\x00binary")
    r = cli("replay", str(tmp_path))
    assert r.returncode == 2 and "not a file" in r.stderr
    r = cli("replay", str(tmp_path / "bin.jsonl"))
    assert r.returncode == 2 and "not a trace (not UTF-8 text)" in r.stderr and "codec" not in r.stderr


def test_questions_from_json_lines_rows():
    import tempfile

    from pyrag_dsl.cli.common import UsageError
    from pyrag_dsl.cli.pipeline_cmds import read_questions

    with tempfile.TemporaryDirectory() as d:
        good = Path(d) / "qa.jsonl"
        good.write_text('{"id": "1", "question": " Who? ", "golden_answers": ["x"]}\n\n{"question": "When?"}\n')
        assert read_questions(str(good)) == ["Who?", "When?"]
        bad = Path(d) / "bad.jsonl"
        bad.write_text('{"question": "Who?"}\n\n{"query": "When?"}\n')
        with pytest.raises(UsageError, match="line 3: the file reads as JSON Lines"):
            read_questions(str(bad))
        plain = Path(d) / "q.txt"
        plain.write_text('Who wrote "{x}"?\n{"question": "kept as text: the first line is not JSON"}\n')
        assert len(read_questions(str(plain))) == 2
        braces = Path(d) / "braces.txt"  # a plain question that starts with a brace is still a question
        braces.write_text("{Alpha} or {Beta}: which is older?\nWho?\n")
        assert read_questions(str(braces)) == ["{Alpha} or {Beta}: which is older?", "Who?"]
        long_row = Path(d) / "flashrag.jsonl"  # the length limit is the question's, not the row's
        long_row.write_text(json.dumps({"question": "Who?", "metadata": {"context": "x" * 5000}}) + "\n")
        assert read_questions(str(long_row)) == ["Who?"]
        too_long = Path(d) / "long.jsonl"
        too_long.write_text(json.dumps({"question": "y" * 4001}) + "\n")
        with pytest.raises(UsageError, match="line 1: the question has 4,001 characters"):
            read_questions(str(too_long))
