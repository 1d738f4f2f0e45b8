"""PipelineResult carries what each program retrieved and whether the first program was valid."""

import json

from corpus import JED_HOYER
from scripted_llm import ScriptedLLM

from pyrag_dsl.agents import LLMClient, LLMConfig
from pyrag_dsl.pipeline import Pipeline, PipelineConfig

QUESTION = "Who is older, Jed Hoyer or John William Henry II?"


def handler(programs):
    programs = list(programs)

    def reply(role, prompt, body):
        if role == "decompose":
            return '["When was Jed Hoyer born?", "When was John William Henry II born?"]'
        if role in ("plan", "repair"):
            return "```python\n" + (programs.pop(0) if len(programs) > 1 else programs[0]) + "```"
        if role == "answer_docs":
            return "<answer>1949</answer>"
        return "<answer>John William Henry II</answer>"

    return reply


def run(bm25, programs):
    with ScriptedLLM(handler(programs)) as llm:
        client = LLMClient(LLMConfig(base_url=llm.url, model="scripted", timeout_s=10, retries=0))
        return Pipeline(client, bm25, config=PipelineConfig()).run(QUESTION)


def test_retrieved_docs_union_and_per_call(bm25):
    result = run(bm25, [JED_HOYER])
    assert result.ok, result.error
    assert result.first_program_valid is True
    assert len(result.retrievals) == 2
    assert [r["query"] for r in result.retrievals] == [
        "When was Jed Hoyer born?",
        "When was John William Henry II born?",
    ]
    assert all(r["attempt"] == 1 and r["topk"] == 5 for r in result.retrievals)
    per_call_ids = [d["id"] for r in result.retrievals for d in r["docs"]]
    assert [d["id"] for d in result.retrieved_docs] == list(dict.fromkeys(per_call_ids))
    titles = {d["title"] for d in result.retrieved_docs}
    assert "Jed Hoyer" in titles
    d = json.loads(json.dumps(result.to_dict()))
    assert d["first_program_valid"] is True and d["retrieved_docs"] == result.retrieved_docs
    assert d["retrievals"][0]["docs"] == result.retrievals[0]["docs"]


def test_first_program_invalid_then_repaired(bm25):
    broken = JED_HOYER.replace("jed_birth}", "jed_brith}")
    result = run(bm25, [broken, JED_HOYER])
    assert result.ok and result.repair_rounds == 1
    assert result.first_program_valid is False
    assert result.retrieved_docs
