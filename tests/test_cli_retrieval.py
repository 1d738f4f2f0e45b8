import json
import signal
import subprocess
import sys
import time

import httpx
import pytest
from conftest import SMALL_CORPUS
from test_http_retrieval import _free_port

pytestmark = pytest.mark.slow(seconds=90)


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "pyrag_dsl.cli", *args], capture_output=True, text=True, timeout=300, env=env
    )


def test_index_build_bm25_and_search(tmp_path):
    out = tmp_path / "idx"
    r = cli("index", "build", str(SMALL_CORPUS), "--kind", "bm25", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "built bm25 index of 26 passages" in r.stdout
    assert json.loads((out / "pyrag-index.json").read_text())["documents"] == 26
    r = cli("search", "Mount Everest", "--index", str(out), "--topk", "2")
    assert r.returncode == 0 and "Mount Everest" in r.stdout
    r = cli("index", "build", str(SMALL_CORPUS), "--out", str(out))
    assert r.returncode == 2 and "--force" in r.stderr


def test_index_build_reports_bad_lines(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "1", "contents": "ok"}\n{"id": 2\n{"id": "3"}\n')
    r = cli("index", "build", str(corpus), "--out", str(tmp_path / "idx"))
    assert r.returncode == 1
    assert "line 2: not JSON" in r.stdout and "line 3: no 'contents'" in r.stdout
    assert not (tmp_path / "idx").exists()
    r = cli("index", "build", str(corpus), "--out", str(tmp_path / "idx"), "--skip-bad")
    assert r.returncode == 0 and "of 1 passages" in r.stdout


def test_index_build_missing_corpus(tmp_path):
    r = cli("index", "build", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "idx"))
    assert r.returncode == 2 and "no such corpus file" in r.stderr


def test_serve_retriever_command(bm25_index):
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pyrag_dsl.cli",
            "serve-retriever",
            "--index",
            str(bm25_index),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline
                time.sleep(0.3)
        assert health["documents"] == 26
        r = httpx.post(
            f"http://127.0.0.1:{port}/retrieve", json={"queries": ["Tokyo capital"], "topk": 1, "return_scores": True}
        )
        assert r.json()["result"][0][0]["document"]["contents"].startswith('"Tokyo"')
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


def test_search_against_a_down_server_is_one_line():
    r = cli("search", "q", "--url", f"http://127.0.0.1:{_free_port()}")
    assert r.returncode == 3 and "cannot connect" in r.stderr and "Traceback" not in r.stderr  # 3: runtime failure
