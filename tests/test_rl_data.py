"""`pyrag-dsl rl build-data`: the four parquet sets read back with pyarrow and checked row by row; every
prompt equals the messages the agents sent to a (scripted, loopback) LLM server during real runs."""

import json

import pyarrow.parquet as pq
import pytest
from scripted_llm import ScriptedLLM
from test_rl_rewards import BIRTHS, QUESTION, frozen_agents

from pyrag_dsl.agents import AnswerAgent, DecomposeAgent, LLMClient, LLMConfig, PlanAgent
from pyrag_dsl.cli import main
from pyrag_dsl.documents import Docs
from pyrag_dsl.pipeline import Pipeline, PipelineConfig
from pyrag_dsl.pipeline.outputs import write_result
from pyrag_dsl.retrievers.http_client import HttpRetriever
from pyrag_dsl.rl.data import Builder, BuildOptions, split_of
from pyrag_dsl.rl.sources import Item, SourceError, read_qa, read_records

SUBS = ["When was Jed Hoyer born?", "When was John William Henry II born?"]
QA = [
    {"id": "q1", "question": QUESTION, "golden_answers": ["John William Henry II"]},
    {"id": "q2", "question": "Which country is the Eiffel Tower in?", "golden_answers": ["France"]},
    {"id": "q3", "question": "What is the capital of France?", "golden_answers": ["Paris"]},
    {"id": "q4", "question": "Where is Mount Everest?", "golden_answers": ["Himalayas"]},
    {"id": "q5", "question": "Who owns the Boston Red Sox?", "golden_answers": ["John W. Henry"]},
    {"id": "q6", "question": "A question without gold?", "golden_answers": []},
]


def _handler():
    base = frozen_agents()

    def handler(role, prompt, body):
        if role == "decompose":
            return json.dumps(SUBS)
        return base(role, prompt, body)

    return handler


@pytest.fixture(scope="module")
def built(tmp_path_factory, retrieval_server):
    """Two real runs (one right, one wrong) written as `pyrag-dsl run` does, an eval record, a QA file;
    then build-data through the CLI. Returns (out dir, the requests the agents sent, tmp)."""
    tmp = tmp_path_factory.mktemp("rl-data")
    with ScriptedLLM(_handler()) as llm:
        client = LLMClient(LLMConfig(base_url=llm.url, model="scripted", retries=0))
        pipeline = Pipeline(client, HttpRetriever(retrieval_server.url), config=PipelineConfig(use_grammar=False))
        right = pipeline.run(QUESTION)
        assert right.final_answer == "John William Henry II"
        write_result(tmp / "runs", 1, right)
        wrong = pipeline.run("Who is younger, Jed Hoyer or John William Henry II?")
        write_result(tmp / "runs", 2, wrong)
        # the Answer agent with documents, as inference calls it, for each top-k the builder may draw
        agent = AnswerAgent(client, use_grammar=False)
        retriever = HttpRetriever(retrieval_server.url)
        for row in QA:
            for k in (2, 3):
                agent(row["question"], Docs(tuple(retriever.search([row["question"]], k)[0])))
        requests = list(llm.requests)
    (tmp / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in QA))
    # an eval output directory: records.jsonl (pyrag and a baseline) with the pyrag trace under traces/
    write_result(tmp / "eval" / "traces", "q1", right)
    record = {
        "id": "q1",
        "question": QUESTION,
        "gold": ["John William Henry II"],
        "method": "pyrag",
        "prediction": "John William Henry",
        "sub_queries": SUBS,
        "program": right.generated_code,
        "error": None,
        "trace": "traces/q1/trace.jsonl",
    }
    baseline = {**record, "method": "vanilla", "prediction": "John William Henry II", "trace": None}
    (tmp / "eval" / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (record, baseline, {"id": "x"})))
    out = tmp / "out"
    code = main(
        [
            "rl",
            "build-data",
            "--qa",
            str(tmp / "qa.jsonl"),
            "--records",
            str(tmp / "runs"),
            "--records",
            str(tmp / "eval"),
            "--retriever-url",
            retrieval_server.url,
            "--topks",
            "2,3",
            "--val-fraction",
            "0.3",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out, requests, tmp


def _rows(out, name):
    rows = []
    for split in ("train", "val"):
        rows += pq.read_table(out / name / f"{split}.parquet").to_pylist()
    return rows


def _sent(requests, role):
    return [r["messages"] for r in requests if r["role"] == role]


def test_every_row_has_verls_shape(built):
    out, _, _ = built
    for name, source in [
        ("answer_with_docs", "pyrag_answer_with_docs"),
        ("answer_no_docs", "pyrag_answer_no_docs"),
        ("plan", "pyrag_plan"),
        ("decompose", "pyrag_decompose"),
    ]:
        rows = _rows(out, name)
        assert rows, name
        for row in rows:
            assert set(row) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
            assert row["data_source"] == source
            assert row["reward_model"]["style"] == "rule" and row["reward_model"]["ground_truth"]
            assert all(set(m) == {"role", "content"} for m in row["prompt"])
            info = row["extra_info"]
            assert info["split"] in ("train", "val") and info["question"]
        for split in ("train", "val"):
            idx = [r["extra_info"]["index"] for r in rows if r["extra_info"]["split"] == split]
            assert idx == list(range(len(idx)))


def test_prompts_equal_what_the_agents_sent(built):
    out, requests, _ = built
    decompose = _rows(out, "decompose")
    assert len(decompose) == 5  # the QA questions with gold; q6 and the second run's question have none
    sent = _sent(requests, "decompose")
    for row in decompose:
        assert row["prompt"] == DecomposeAgent.messages(row["extra_info"]["question"])
    assert any(row["prompt"] == sent[0] for row in decompose)

    plan = _rows(out, "plan")
    assert [r["extra_info"]["question"] for r in plan] == [QUESTION]  # the eval record duplicates run 1
    assert plan[0]["prompt"] == _sent(requests, "plan")[0]
    assert plan[0]["extra_info"]["sub_queries"] == SUBS and plan[0]["extra_info"]["topk"] == 5
    assert plan[0]["prompt"] == PlanAgent(llm=None).write_messages(QUESTION, SUBS)

    no_docs = _rows(out, "answer_no_docs")
    assert len(no_docs) == 1 and no_docs[0]["prompt"] == _sent(requests, "answer_synth")[0]
    assert no_docs[0]["reward_model"]["ground_truth"] == ["John William Henry II"]

    with_docs = _rows(out, "answer_with_docs")
    sent_docs = _sent(requests, "answer_docs")
    assert len(with_docs) == 5
    for row in with_docs:
        topk = row["extra_info"]["topk"]
        assert topk in (2, 3) and 1 <= len(row["extra_info"]["doc_ids"]) <= topk
        assert row["prompt"] in sent_docs


def test_splits_are_per_question_and_summary_says_why(built):
    out, _, _ = built
    split = {}
    for name in ("answer_with_docs", "answer_no_docs", "plan", "decompose"):
        for row in _rows(out, name):
            q = row["extra_info"]["question"]
            assert split.setdefault(q, row["extra_info"]["split"]) == row["extra_info"]["split"]
    assert "val" in split.values() and "train" in split.values()
    summary = json.loads((out / "summary.json").read_text())
    sets = summary["sets"]
    assert sets["answer_no_docs"]["dropped"] == {"not_correct": 1, "no_gold": 1}
    assert sets["decompose"]["dropped"] == {"no_gold": 2}
    assert sets["plan"]["dropped"] == {"no_gold": 1, "duplicate": 1}
    assert summary["inputs"]["skipped_records"] == 2  # a line without a question, the baseline's record
    for name, s in sets.items():
        assert sum(s["kept"].values()) == len(_rows(out, name))


def test_split_is_seeded_and_stable():
    items = [Item(f"question {i}?", ["a"]) for i in range(20)]
    a, b = split_of(items, 0.25, 7), split_of(list(reversed(items)), 0.25, 7)
    assert a == b and list(a.values()).count("val") == 5
    assert split_of(items, 0.25, 8) != a


def test_sources_report_bad_input_with_its_line(tmp_path):
    bad = tmp_path / "qa.jsonl"
    bad.write_text('{"question": "ok?", "golden_answers": ["x"]}\nnot json\n')
    with pytest.raises(SourceError, match="qa.jsonl:2: not JSON"):
        read_qa(bad)
    with pytest.raises(SourceError, match="no such QA file"):
        read_qa(tmp_path / "missing.jsonl")
    with pytest.raises(SourceError, match="no such records"):
        read_records(tmp_path / "missing")


def test_answer_with_docs_needs_a_retriever_and_nothing_is_an_error():
    from pyrag_dsl.rl.data import BuildError

    with pytest.raises(BuildError, match="needs a retriever"):
        Builder(BuildOptions()).build([Item("q?", ["a"])], [])
    with pytest.raises(BuildError, match="nothing to build"):
        Builder(BuildOptions(sets=("decompose",))).build([], [])
    with pytest.raises(BuildError, match="unknown"):
        BuildOptions(sets=("answers",))


def test_cli_refuses_a_non_empty_output(tmp_path, capsys):
    (tmp_path / "qa.jsonl").write_text(json.dumps(QA[0]) + "\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("keep me")
    assert (
        main(
            [
                "rl",
                "build-data",
                "--qa",
                str(tmp_path / "qa.jsonl"),
                "--sets",
                "decompose",
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 2
    )
    assert (tmp_path / "out" / "x").read_text() == "keep me"
    assert BIRTHS  # shared fixture data is importable


def test_eval_records_read_their_traces(built):
    _, requests, tmp = built
    items, skipped = read_records(tmp / "eval")
    assert skipped == 2 and [i.question for i in items] == [QUESTION]
    assert items[0].sub_queries == SUBS and items[0].golds == ["John William Henry II"]
    assert AnswerAgent.messages(items[0].synthesis_query) == _sent(requests, "answer_synth")[0]
