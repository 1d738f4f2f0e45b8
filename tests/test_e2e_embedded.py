"""End to end on the embedded defaults, as the README's first command: the default model (Qwen2.5-Coder-0.5B,
assembled from its carrier packages into a fresh cache) on a real llama.cpp server, the embedded corpus, the
README's question answered correctly, and the trace replayed exactly. The local server's start, stop and
errors are checked with the small SmolLM2 GGUF."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyrag_dsl import validate
from pyrag_dsl.agents import LLMError
from pyrag_dsl.agents.local_server import LocalLLMServer, smollm2_path

pytestmark = [pytest.mark.model, pytest.mark.slow(seconds=40)]

ROOT = Path(__file__).parent.parent


def test_embedded_run_and_exact_replay(tmp_path):
    env = {**os.environ, "PYRAG_DSL_CACHE": str(tmp_path / "cache")}
    for key in ("LLM_MODEL", "LLM_BASE_URL", "PLAN_LLM_MODEL", "PLAN_LLM_BASE_URL", "OUTPUT_DIR"):
        env.pop(key, None)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pyrag_dsl.cli",
            "run",
            str(ROOT / "examples" / "question.txt"),
            "--output-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (run_dir,) = list((tmp_path / "out").iterdir())
    result = json.loads((run_dir / "1" / "result.json").read_text())
    assert result["original_query"] == "Who is older, Jed Hoyer or John William Henry II?"
    assert result["error"] is None and result["final_answer"]
    assert "John William Henry II" in result["final_answer"], (result["sub_queries"], result["generated_code"])
    assert validate(result["generated_code"]).ok
    assert result["settings"]["plan_grammar"] == "skeleton"
    lines = (run_dir / "1" / "trace.jsonl").read_text().splitlines()
    kinds = [json.loads(line)["kind"] for line in lines[1:]]
    assert kinds[:3] == ["decompose", "plan", "execute"] and kinds[-1] == "final"
    assert kinds.count("retrieve") >= 1 and kinds.count("answer") >= 2
    first_retrieve = next(json.loads(x) for x in lines[1:] if json.loads(x)["kind"] == "retrieve")
    assert first_retrieve["output"] and first_retrieve["inputs"]["topk"] in (5, 10)
    replay = subprocess.run(
        [sys.executable, "-m", "pyrag_dsl.cli", "replay", str(run_dir / "1" / "trace.jsonl")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert replay.returncode == 0, replay.stdout[-2000:]
    assert "replay OK" in replay.stdout


def test_local_server_starts_and_stops():
    server = LocalLLMServer(smollm2_path(), n_ctx=1024)
    with server:
        proc = server.proc
        assert proc.poll() is None and server.base_url.startswith("http://127.0.0.1:")
    assert proc.poll() is not None  # stopped on exit


def test_local_server_bad_model_is_a_typed_error(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file")
    with pytest.raises(LLMError, match="exited"):
        LocalLLMServer(bad, startup_timeout_s=60).start()
    with pytest.raises(LLMError, match="not found"):
        LocalLLMServer(tmp_path / "missing.gguf")
