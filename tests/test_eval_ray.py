"""`eval --ray`: the questions sharded over Ray tasks on a local Ray instance (2 CPUs); records, resume and
the summary are the same as for a local run."""

import json

import pytest
import ray
from conftest import SMALL_CORPUS
from eval_helpers import QA, handler, write_qa
from scripted_llm import ScriptedLLM, question_in

from pyrag_dsl.cli import main

pytestmark = pytest.mark.slow(seconds=22)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_shards_records_resume_and_summary(tmp_path, local_ray, monkeypatch):
    from pyrag_dsl.retrievers.tantivy_bm25 import build_tantivy_index

    for key in ("LLM_MODEL", "LLM_BASE_URL", "PLAN_LLM_MODEL", "PLAN_LLM_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    index = tmp_path / "idx"
    build_tantivy_index(SMALL_CORPUS, index)
    rows = [{**QA[i % len(QA)], "id": f"r{i}"} for i in range(8)]
    qa = write_qa(tmp_path / "qa.jsonl", rows)
    out2 = tmp_path / "ray-run2"
    with ScriptedLLM(handler) as llm:
        base = [
            "eval",
            "--data",
            str(qa),
            "--out",
            str(out2),
            "--llm-url",
            llm.url,
            "--index",
            str(index),
            "--method",
            "pyrag",
            "--ray",
            "--shards",
            "2",
        ]
        assert main(base) == 0
        shard_files = sorted(p.name for p in out2.glob("records-ray-*.jsonl"))
        assert shard_files == ["records-ray-000.jsonl", "records-ray-001.jsonl"]
        ids = [json.loads(x)["id"] for p in out2.glob("records-ray-*.jsonl") for x in p.read_text().splitlines()]
        assert sorted(ids) == sorted(r["id"] for r in rows)
        # drop two records from one shard, then resume: only those two are asked again
        shard0 = out2 / "records-ray-000.jsonl"
        kept = shard0.read_text().splitlines()
        dropped = [json.loads(x)["id"] for x in kept[-2:]]
        shard0.write_text("\n".join(kept[:-2]) + "\n")
        before = len(llm.requests)
        assert main([*base, "--resume"]) == 0
        asked = {question_in(r["messages"][-1]["content"]) for r in llm.requests[before:] if r["role"] == "decompose"}
        assert asked == {x["question"] for x in rows if x["id"] in dropped}  # only the dropped ones, again
    ids = [json.loads(x)["id"] for p in out2.glob("records*.jsonl") for x in p.read_text().splitlines()]
    assert sorted(ids) == sorted(r["id"] for r in rows)
    summary = json.loads((out2 / "summary.json").read_text())
    assert summary["overall"]["n"] == 8 and summary["complete"] and summary["overall"]["em"] > 0
