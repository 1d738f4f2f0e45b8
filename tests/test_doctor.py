"""`pyrag-dsl doctor`: one row per check, the fix of each failure, exit 1 when the default path cannot answer.
The llama.cpp rows run the real launcher against the stand-in server of tests/llama_standin."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

STANDIN = Path(__file__).parent / "llama_standin"


def doctor(*args: str, env: dict | None = None) -> tuple[int, dict]:
    base = {k: v for k, v in os.environ.items() if not k.endswith("LLM_BASE_URL") and k != "RETRIEVER_URL"}
    proc = subprocess.run(
        [sys.executable, "-m", "pyrag_dsl.cli", "doctor", "--json", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def rows(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


def _standin_env(tmp_path: Path, crash_at: int) -> tuple[Path, dict]:
    model = tmp_path / "dummy.gguf"
    model.write_bytes(b"GGUF")
    return model, {
        "PYTHONPATH": os.pathsep.join([str(STANDIN), os.environ.get("PYTHONPATH", "")]),
        "STANDIN_CRASH_AT": str(crash_at),
    }


def test_quick_report_has_every_kind_of_check():
    code, report = doctor("--quick")
    r = rows(report)
    for name in ("Python", "pip", "CPU", "extra [llm]", "extra [tantivy]", "llama.cpp", "embedded index"):
        assert name in r, sorted(r)
    assert any(n.startswith("model qwen2.5-coder-0.5b") for n in r)
    assert r["pip"]["result"].split(".")[0].isdigit()
    blocking = [c for c in report["checks"] if c["blocking"] and c["status"] == "fail"]
    assert report["ready"] is (not blocking) and code == (0 if report["ready"] else 1)
    assert all(c["fix"] for c in blocking)  # every blocking failure says how to fix it


@pytest.mark.model
def test_a_server_that_crashes_at_its_first_completion_fails_the_llama_row(tmp_path):
    model, env = _standin_env(tmp_path, crash_at=1)
    code, report = doctor("--model", str(model), env=env)
    row = rows(report)["llama.cpp"]
    assert code == 1 and report["ready"] is False
    assert row["status"] == "fail" and row["blocking"] and "SIGSEGV" in row["result"]
    assert row["fix"]


@pytest.mark.model
def test_a_working_server_reports_prompt_and_decode_speed(tmp_path):
    model, env = _standin_env(tmp_path, crash_at=0)
    _, report = doctor("--model", str(model), env=env)
    row = rows(report)["llama.cpp"]
    assert row["status"] == "ok", row
    m = re.search(r"prompt ([\d.]+) tokens/s, decode ([\d.]+) tokens/s", row["result"])
    assert m and float(m.group(1)) > 0 and float(m.group(2)) > 0, row  # the stand-in streams three tokens


def test_an_unreachable_configured_llm_is_a_blocking_failure():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, report = doctor("--llm-url", f"http://127.0.0.1:{port}/v1", "--llm-model", "m")
    row = rows(report)["LLM"]
    assert code == 1 and row["status"] == "fail" and row["blocking"] and row["fix"]
    assert "llama.cpp" not in rows(report)  # the embedded server is not the default path then
