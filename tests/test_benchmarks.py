"""The benchmark scripts run and print their tables (numbers are not asserted: they live in the scripts)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow(seconds=30)

ROOT = Path(__file__).parent.parent


def test_engine_overhead_script_runs():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "engine_overhead.py"), "--repeat", "1", "--skip-hostile"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "Validation time per program" in out.stdout
    assert "Engine overhead per tool call (us): ours minus exec() in the same round" in out.stdout
    assert len([line for line in out.stdout.splitlines() if line.strip().startswith(("5 ", "20 ", "100 "))]) == 9


def test_retrieval_benchmark_script_runs(tmp_path):
    import os

    env = {**os.environ, "PYRAG_DSL_CACHE": str(tmp_path)}
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "retrieval.py"),
            "--skip-dense",
            "--requests",
            "64",
            "--skip-build-timing",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "Recall of supporting titles" in out.stdout
    assert "Batched (32) throughput, bm25" in out.stdout and "Batched (32) throughput, tantivy" in out.stdout


def test_pipeline_calls_benchmark_script_runs():
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "pipeline_calls.py"),
            "--skip-embedded",
            "--base-ms",
            "0",
            "--per-token-ms",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "1 repair + 1 adaptive retry" in out.stdout and out.stdout.count("saved") == 4
