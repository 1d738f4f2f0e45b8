"""Questions input caps, `| head` (a reader that closes the pipe), `--debug` after the subcommand, and
the exit codes: 2 usage, 3 runtime failure."""

import json
import subprocess
import sys

import pytest
from ops_helpers import cli, env, tantivy_index  # noqa: F401
from scripted_llm import ScriptedLLM
from test_http_retrieval import _free_port
from test_pipeline import QUESTION, default_handler

from pyrag_dsl.cli.pipeline_cmds import MAX_QUESTION_CHARS, MAX_QUESTIONS_BYTES

pytestmark = pytest.mark.slow(seconds=27)


def test_a_question_over_the_cap_names_its_line(tmp_path):
    q = tmp_path / "q.txt"
    q.write_text(f"{QUESTION}\n\n{'x' * 5_000_000}\n")
    r = cli("run", str(q))
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"error: {q} line 3: the question has 5,000,000 characters, over the "
        f"{MAX_QUESTION_CHARS:,}-character limit (one question per line)"
    )
    assert len(r.stdout) < 1000  # the question is not printed back
    ok = "y" * MAX_QUESTION_CHARS  # at the cap: accepted (then fails later, on the missing LLM)
    r = cli("run", "-", "--llm-url", f"http://127.0.0.1:{_free_port()}/v1", stdin=ok + "\n")
    assert "character limit" not in r.stderr


def test_a_questions_file_over_the_cap(tmp_path):
    q = tmp_path / "q.txt"
    line = "Who is older, A or B?\n"
    q.write_text(line * (MAX_QUESTIONS_BYTES // len(line) + 10))
    r = cli("run", str(q))
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: {q} is over {MAX_QUESTIONS_BYTES:,} bytes; split it into several files"
    r = cli("run", "-", stdin=line * (MAX_QUESTIONS_BYTES // len(line) + 10))
    assert r.returncode == 2 and "standard input is over" in r.stderr


@pytest.mark.parametrize("mode", ["--json", "--no-grammar"])  # JSON Lines; rich tables
def test_head_closing_the_pipe_ends_quietly_and_keeps_results(tantivy_index, tmp_path, mode):
    with ScriptedLLM(default_handler()) as llm:
        r = subprocess.run(
            f"{sys.executable} -m pyrag_dsl.cli run - {mode} --llm-url {llm.url} --index "
            f'{tantivy_index} --output-dir {tmp_path / "out"} | head -c 1; echo " rc=${{PIPESTATUS[0]}}"',
            shell=True,
            executable="/bin/bash",
            capture_output=True,
            text=True,
            timeout=300,
            input=f"{QUESTION}\n{QUESTION}\n{QUESTION}\n",
            env=env(),
        )
    assert r.stdout.endswith(" rc=141\n"), r.stdout  # 128 + SIGPIPE, as a shell reports it
    assert "BrokenPipe" not in r.stderr and "error" not in r.stderr, r.stderr
    (run_dir,) = list((tmp_path / "out").iterdir())
    assert json.loads((run_dir / "1" / "result.json").read_text())["final_answer"] == "John William Henry II"


def test_debug_after_the_subcommand(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/v1"
    before = cli("--debug", "run", "-", "--llm-url", url, stdin="q?\n")
    after = cli("run", "-", "--llm-url", url, "--debug", stdin="q?\n")
    plain = cli("run", "-", "--llm-url", url, stdin="q?\n")
    assert "Traceback" in before.stderr and "Traceback" in after.stderr
    assert "Traceback" not in plain.stderr and plain.returncode == 3  # runtime failure: the LLM is down
    nested = cli("index", "build", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "i"), "--debug")
    assert nested.returncode == 2 and "no such corpus file" in nested.stderr  # accepted on nested commands
    assert "--debug" in cli("run", "--help").stdout
