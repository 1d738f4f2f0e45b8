"""The eval runner over a scripted OpenAI-compatible server and a real (tantivy BM25) index: records,
errors recorded without stopping the run, concurrency equal to sequential, per-endpoint caps."""

import json

import pytest
from conftest import SMALL_CORPUS
from eval_helpers import FAIL_MARK, QA, handler, write_qa
from scripted_llm import ScriptedLLM

from pyrag_dsl.agents import LLMClient, LLMConfig
from pyrag_dsl.eval.data import load_questions
from pyrag_dsl.eval.methods import method_class
from pyrag_dsl.eval.records import RecordWriter, read_records
from pyrag_dsl.eval.runner import finish, prepare_out_dir, run_rows
from pyrag_dsl.eval.summary import FIELDS
from pyrag_dsl.pipeline import PipelineConfig
from pyrag_dsl.pipeline.batch import EndpointLimits


@pytest.fixture(scope="module")
def tantivy_retriever(tmp_path_factory):
    from pyrag_dsl.retrievers.indexes import open_index
    from pyrag_dsl.retrievers.tantivy_bm25 import build_tantivy_index

    out = tmp_path_factory.mktemp("tantivy") / "idx"
    build_tantivy_index(SMALL_CORPUS, out)
    r = open_index(out)
    yield r
    r.close()


@pytest.fixture(scope="module")
def llm():
    with ScriptedLLM(handler, delay=0.02) as server:
        yield server


def make_method(name, llm_url, retriever, limits=None):
    client = LLMClient(LLMConfig(base_url=llm_url, model="scripted", timeout_s=10, retries=0))
    return method_class(name)(client, retriever, config=PipelineConfig(), retriever_endpoint="tantivy", limits=limits)


def run_eval(tmp_path, name, llm, retriever, concurrency=1, rows=None, limits=None):
    qa = load_questions(str(write_qa(tmp_path / "qa.jsonl", rows)))
    out = tmp_path / f"{name}-{concurrency}"
    prepare_out_dir(out, {"method": name}, resume=False)
    writer = RecordWriter(out / "records.jsonl")
    method = make_method(name, llm.url, retriever, limits)
    run_rows(method, qa.rows, out, writer, concurrency=concurrency)
    writer.close()
    return out, qa, read_records(out)


def strip_time(records):
    return sorted(({k: v for k, v in r.items() if k != "seconds"} for r in records), key=lambda r: r["id"])


def test_pyrag_records_have_every_field(tmp_path, llm, tantivy_retriever):
    out, qa, records = run_eval(tmp_path, "pyrag", llm, tantivy_retriever)
    assert [r["id"] for r in records] == [r["id"] for r in QA]
    r1 = records[0]
    for key in (
        "id",
        "question",
        "gold",
        "prediction",
        "metrics",
        "sub_queries",
        "program",
        "repairs",
        "adaptive_retry",
        "llm_calls",
        "prompt_tokens",
        "completion_tokens",
        "retrievals",
        "seconds",
        "error",
        "trace",
        "first_program_valid",
        "retrieved_titles",
        "type",
    ):
        assert key in r1, key
    assert r1["prediction"] == "Eiffel Tower" and r1["metrics"]["em"] == 1.0 and r1["metrics"]["recall"] == 1.0
    assert r1["sub_queries"] == [QA[0]["question"]] and "retrieve(" in r1["program"]
    assert r1["llm_calls"]["decompose"] == 1 and r1["llm_calls"]["plan"] == 1 and r1["llm_calls"]["answer"] >= 1
    assert r1["prompt_tokens"] == r1["llm_calls"]["total_requests"]  # the scripted server reports 1 per call
    assert r1["retrievals"] >= 1 and r1["first_program_valid"] is True
    trace = out / r1["trace"]
    assert trace.is_file() and (trace.parent / "result.json").is_file()
    result = json.loads((trace.parent / "result.json").read_text())
    assert result["retrieved_docs"] and result["first_program_valid"] is True
    summary = finish(out, qa, {"method": "pyrag"})
    assert set(FIELDS) <= set(summary["overall"]) and set(summary["by_type"]) == {"bridge", "comparison"}
    assert summary["overall"]["n"] == 6 and summary["complete"] is True
    assert (out / "summary.md").read_text().count("| bridge |") == 1


def test_failing_question_is_recorded_and_the_run_goes_on(tmp_path, llm, tantivy_retriever):
    rows = [dict(QA[0]), {**QA[1], "question": f"{FAIL_MARK}: who wrote Python?"}, dict(QA[2])]
    for name in ("pyrag", "vanilla", "direct"):
        out, qa, records = run_eval(tmp_path, name, llm, tantivy_retriever, rows=rows)
        assert [r["id"] for r in records] == ["q1", "q2", "q3"], name
        bad = records[1]
        assert bad["error"] is not None and bad["metrics"]["em"] == 0.0, name
        assert bad["error"]["type"] in ("LLMError", "ToolError"), bad["error"]
        assert "scripted failure" in json.dumps(bad["error"]) or "500" in json.dumps(bad["error"])
        assert records[0]["error"] is None and records[2]["error"] is None
        summary = finish(out, qa, {"method": name})
        assert summary["overall"]["error_rate"] == pytest.approx(1 / 3)


def test_concurrency_gives_the_same_records_as_sequential(tmp_path, llm, tantivy_retriever):
    for name in ("pyrag", "vanilla"):
        _, _, seq = run_eval(tmp_path, name, llm, tantivy_retriever, concurrency=1)
        limits = EndpointLimits(2)
        _, _, par = run_eval(tmp_path, name, llm, tantivy_retriever, concurrency=4, limits=limits)
        assert strip_time(seq) == strip_time(par), name
        assert limits.peak[f"llm:{llm.url}"] == 2  # capped below the 4 questions in flight


def test_baselines_vanilla_and_direct(tmp_path, llm, tantivy_retriever):
    _, _, van = run_eval(tmp_path, "vanilla", llm, tantivy_retriever)
    assert van[0]["prediction"] == "Eiffel Tower" and van[0]["llm_calls"] == {"answer": 1, "total_requests": 1}
    assert van[0]["retrievals"] == 1 and van[0]["program"] is None and van[0]["metrics"]["recall"] == 1.0
    _, _, direct = run_eval(tmp_path, "direct", llm, tantivy_retriever)
    assert {r["prediction"] for r in direct} == {"Paris"} and all(r["retrievals"] == 0 for r in direct)
    assert all(r["metrics"]["recall"] is None for r in direct)
    prompts = [r["messages"][-1]["content"] for r in llm.requests if "own knowledge" in r["messages"][-1]["content"]]
    assert prompts and "Document 1" not in prompts[0]


def test_resume_knows_the_data_by_its_hash_not_its_path(tmp_path):
    """A moved checkout (or another venv) resumes; the same path with other content does not."""
    from pyrag_dsl.eval.runner import EvalError

    def config(path, sha, limit=10):
        return {"method": "pyrag", "data": {"source": "f.jsonl", "path": path, "sha256": sha, "limit": limit}}

    out = tmp_path / "out"
    prepare_out_dir(out, config("/old/checkout/f.jsonl", "abc"), resume=False)
    prepare_out_dir(out, config("/new/place/f.jsonl", "abc", limit=20), resume=True)
    assert json.loads((out / "config.json").read_text())["data"]["path"] == "/new/place/f.jsonl"
    with pytest.raises(EvalError, match="in data"):
        prepare_out_dir(out, config("/new/place/f.jsonl", "def"), resume=True)


def test_questions_wait_out_an_open_breaker_instead_of_failing_fast(tmp_path, llm, tantivy_retriever, monkeypatch):
    """A server that just failed N times opens its breaker: eval waits for the cooldown before it starts the
    next question (which then runs), instead of recording it as a fail-fast error."""
    from pyrag_dsl.config.retry import breaker_for, configure_breakers, wait_for_open_breakers

    configure_breakers(3, 2.0)  # long enough that a question started at once would find it still cooling
    down = breaker_for("http://127.0.0.1:9/v1")  # another endpoint of this process, failing right now
    cooling_at_request = []  # per LLM request: the seconds the open breaker still had to wait then

    def watching(role, prompt, body):
        cooling_at_request.append(down.retry_in())
        return handler(role, prompt, body)

    monkeypatch.setattr(llm, "handler", watching)
    try:
        for _ in range(3):
            down.record_failure()
        assert 1.5 < down.retry_in() <= 2.0
        out, qa, records = run_eval(tmp_path, "direct", llm, tantivy_retriever, rows=QA[:2])
        assert cooling_at_request and set(cooling_at_request) == {0}  # the first question started after the cooldown
        assert [r["id"] for r in records] == [r["id"] for r in QA[:2]] and not any(r["error"] for r in records)
        assert down.retry_in() == 0 and wait_for_open_breakers() == 0  # nothing left to wait for
    finally:
        down.record_success()
        configure_breakers(3, 30.0)


def test_resume_ignores_the_prompt_cache_setting_only():
    """The embedded server's RAM prompt cache changes memory and speed, not answers: a run started with it
    resumes without it; any other llama setting still counts."""
    from pyrag_dsl.eval.runner import _canon, _comparable

    llm = {"embedded": True, "model": "default", "llama": {"threads": 2, "prompt_cache": True, "cache_mb": 1024}}
    off = {**llm, "llama": {"threads": 2, "prompt_cache": False, "cache_mb": 512}}
    other = {**llm, "llama": {"threads": 1, "prompt_cache": True, "cache_mb": 1024}}
    assert _canon(_comparable("llm", llm)) == _canon(_comparable("llm", off))
    assert _canon(_comparable("llm", llm)) != _canon(_comparable("llm", other))
