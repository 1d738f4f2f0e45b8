"""The OpenTelemetry export received by a real Arize Phoenix server (issue 22).

`phoenix serve` runs on free loopback ports with a temporary working directory, started and stopped here.
Phoenix lives in its own virtualenv (its many pins would disturb ours): the executable is $PYRAG_PHOENIX, else
/work/venv-phoenix/bin/phoenix or .venv-phoenix/bin/phoenix in the repository root (.ci/run creates it with
`python3 -m venv .venv-phoenix && .venv-phoenix/bin/pip install arize-phoenix`). Without it the test is
skipped on a workstation and FAILS in CI (CI set).

A run answers two questions (a scripted LLM, our retrieval server over a real Lucene index, both on loopback)
exporting live with --otlp-endpoint; then `trace export` sends the recorded traces to another project. Phoenix's
own REST API must return, for each question, one trace: a CHAIN root, LLM spans for decompose, plan and each
answer with their token counts, RETRIEVER spans with their documents, every span a child of the root; and the
exported recording must look exactly like the live run (names, kinds, times, parents).
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from scripted_llm import ScriptedLLM
from test_otel import QUESTION, handler

pytestmark = pytest.mark.slow(seconds=48)

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [QUESTION, "Which of Jed Hoyer and John William Henry II was born first?"]
STARTUP_S = 300  # Phoenix runs its database migrations first: about a minute on a busy 2-core machine


def phoenix_executable() -> str:
    given = os.environ.get("PYRAG_PHOENIX")
    candidates = (
        [given] if given else ["/work/venv-phoenix/bin/phoenix", str(ROOT / ".venv-phoenix" / "bin" / "phoenix")]
    )
    for path in candidates:
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    why = (
        f"no Arize Phoenix executable ({' or '.join(candidates)}): python3 -m venv .venv-phoenix && "
        ".venv-phoenix/bin/pip install arize-phoenix (or set PYRAG_PHOENIX)"
    )
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory):
    exe = phoenix_executable()
    work = tmp_path_factory.mktemp("phoenix")
    port, grpc = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PHOENIX_"))}
    env.update(
        PHOENIX_WORKING_DIR=str(work),
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(grpc),
        PHOENIX_TELEMETRY_ENABLED="false",
    )
    log = open(work / "phoenix.log", "wb")
    proc = subprocess.Popen(
        [exe, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"phoenix serve exited with {proc.returncode}:\n{_tail(work)}")
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"phoenix serve did not answer in {STARTUP_S} s:\n{_tail(work)}")
            time.sleep(1)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


def _tail(work: Path) -> str:
    return (work / "phoenix.log").read_text(errors="replace")[-3000:]


def spans_of(phoenix: str, project: str, expected: int, timeout_s: float = 120) -> list[dict]:
    """The project's spans from Phoenix's REST API, once it has `expected` of them (ingestion is queued)."""
    deadline = time.monotonic() + timeout_s
    spans: list[dict] = []
    while time.monotonic() < deadline:
        r = httpx.get(f"{phoenix}/v1/projects/{project}/spans", params={"limit": 1000}, timeout=10)
        if r.status_code == 200:
            spans = r.json()["data"]
            if len(spans) >= expected:
                return spans
        time.sleep(1)
    pytest.fail(f"Phoenix has {len(spans)} spans in project {project!r}, expected {expected}")


def cli(*args, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    for key in ("LLM_MODEL", "LLM_BASE_URL", "PLAN_LLM_MODEL", "PLAN_LLM_BASE_URL", "OUTPUT_DIR"):
        full_env.pop(key, None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pyrag_dsl.cli", *args], capture_output=True, text=True, timeout=300, env=full_env
    )


def check_question_traces(spans: list[dict], project: str) -> dict[str, list[dict]]:
    """One trace per question with the expected tree; returns {question: its spans}."""
    traces: dict[str, list[dict]] = {}
    for s in spans:
        traces.setdefault(s["context"]["trace_id"], []).append(s)
    assert len(traces) == len(QUESTIONS), f"{project}: {len(traces)} traces"
    by_question = {}
    for trace_id, members in traces.items():
        roots = [s for s in members if s["parent_id"] is None]
        assert len(roots) == 1, f"{project}: trace {trace_id} has {len(roots)} roots"
        root = roots[0]
        assert (root["name"], root["span_kind"]) == ("question", "CHAIN")
        assert root["attributes"]["output.value"] == "John William Henry II"
        assert all(s["parent_id"] == root["context"]["span_id"] for s in members if s is not root)
        assert Counter(s["span_kind"] for s in members) == {"CHAIN": 1, "LLM": 5, "RETRIEVER": 2}
        assert sorted(s["name"] for s in members if s["span_kind"] == "LLM") == ["answer"] * 3 + ["decompose", "plan"]
        for s in members:
            a = s["attributes"]
            assert s["status_code"] == "OK"
            if s["span_kind"] == "LLM":
                assert (a["llm.token_count.prompt"], a["llm.token_count.completion"], a["llm.token_count.total"]) == (
                    1,
                    1,
                    2,
                )
                assert a["llm.model_name"] == "scripted" and a["llm.input_messages.0.message.role"]
            if s["span_kind"] == "RETRIEVER":
                assert a["input.value"].startswith("When was ")
                assert a["retrieval.documents.0.document.id"] and a["retrieval.documents.0.document.content"]
                assert a["retrieval.documents.0.document.score"] > 0
                assert a["retrieval.documents.0.document.metadata.title"]
            assert s["start_time"] <= s["end_time"]
        by_question[root["attributes"]["input.value"]] = members
    assert sorted(by_question) == sorted(QUESTIONS)
    return by_question


def shape(members: list[dict]) -> list[tuple]:
    names = {s["context"]["span_id"]: s["name"] for s in members}
    return sorted(
        (s["name"], s["span_kind"], s["start_time"], s["end_time"], names.get(s["parent_id"])) for s in members
    )


def test_phoenix_shows_one_trace_per_question_live_and_recorded(phoenix, retrieval_server, tmp_path):
    questions = tmp_path / "questions.txt"
    questions.write_text("\n".join(QUESTIONS) + "\n")
    with ScriptedLLM(handler()) as llm:
        live = cli(
            "run",
            str(questions),
            "--llm-url",
            llm.url,
            "--llm-model",
            "scripted",
            "--retriever-url",
            retrieval_server.url,
            "--output-dir",
            str(tmp_path / "out"),
            "--otlp-endpoint",
            phoenix,
            env={"OTEL_RESOURCE_ATTRIBUTES": "openinference.project.name=pyrag-live"},
        )
    assert live.returncode == 0, live.stderr + live.stdout
    assert "2 question trace(s), 16 spans sent" in live.stderr
    (run_dir,) = list((tmp_path / "out").iterdir())
    exported = cli(
        "trace",
        "export",
        str(run_dir),
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": phoenix,
            "OTEL_RESOURCE_ATTRIBUTES": "openinference.project.name=pyrag-recorded",
        },
    )
    assert exported.returncode == 0, exported.stderr
    assert "exported 2 trace(s), 16 spans" in exported.stdout

    live_traces = check_question_traces(spans_of(phoenix, "pyrag-live", 16), "pyrag-live")
    recorded_traces = check_question_traces(spans_of(phoenix, "pyrag-recorded", 16), "pyrag-recorded")
    for question in QUESTIONS:  # the recorded run looks as it did live: same spans, times and parents
        assert shape(live_traces[question]) == shape(recorded_traces[question])
    # Phoenix's own per-trace token totals: 5 LLM requests of 1 + 1 tokens each
    r = httpx.get(f"{phoenix}/v1/projects/pyrag-live/traces", params={"limit": 10}, timeout=10)
    assert r.status_code == 200
    assert [t["token_count_total"] for t in r.json()["data"]] == [10, 10]
