"""Deterministic pipeline behaviour against a scripted OpenAI-compatible server on loopback."""

import json
import time

import pytest
from corpus import JED_HOYER
from scripted_llm import ScriptedLLM, doc_titles, question_in

from pyrag_dsl.agents import LLMClient, LLMConfig
from pyrag_dsl.grammar import Limits
from pyrag_dsl.interpreter import dumps_jsonl, loads_jsonl
from pyrag_dsl.pipeline import Pipeline, PipelineConfig
from pyrag_dsl.pipeline.replay import replay

QUESTION = "Who is older, Jed Hoyer or John William Henry II?"
BIRTHS = {"Jed Hoyer": "December 7, 1973", "John W. Henry": "September 13, 1949"}


def fenced(program: str) -> str:
    return (
        "Here is the program:\n```python\n"
        + program.replace('"When was Jed', "\u201cWhen was Jed", 1).replace('born?")\njed', "born?\u201d)\njed", 1)
        + "```\nIt retrieves and answers."
    )


def default_handler(programs=None, answers=None):
    programs = list(programs or [fenced(JED_HOYER)])

    def handler(role, prompt, body):
        if role == "decompose":
            return 'Sure! ```json\n["When was Jed Hoyer born?", "When was John William Henry II born?"]\n```'
        if role in ("plan", "repair"):
            return programs.pop(0) if len(programs) > 1 else programs[0]
        if role == "answer_docs":
            if answers:
                return answers(prompt)
            titles = doc_titles(prompt)
            return f"<answer>{BIRTHS.get(titles[0], 'unknown')}</answer>" if titles else "<answer>unknown</answer>"
        if role == "answer_synth":
            return "<think>1949 is before 1973</think><answer>John William Henry II</answer>"
        raise AssertionError(role)

    return handler


def make_pipeline(llm_url, retriever, **cfg):
    client = LLMClient(
        LLMConfig(
            base_url=llm_url,
            model="scripted",
            timeout_s=cfg.pop("timeout_s", 10),
            retries=cfg.pop("retries", 0),
            backoff_s=0.01,
        )
    )
    return Pipeline(client, retriever, config=PipelineConfig(**cfg))


def test_happy_path_reference_keys_and_trace(bm25):
    with ScriptedLLM(default_handler()) as llm:
        result = make_pipeline(llm.url, bm25).run(QUESTION)
    assert result.ok, result.error
    assert result.final_answer == "John William Henry II"
    assert result.sub_queries == ["When was Jed Hoyer born?", "When was John William Henry II born?"]
    assert result.generated_code.startswith('docs1 = retrieve("When was Jed Hoyer born?")')  # smart quotes fixed
    assert result.variables["jed_birth"] == "December 7, 1973"
    assert result.retried_with_topk10 is False and result.repair_rounds == 0
    assert result.llm_calls == {"decompose": 1, "plan": 1, "answer": 3, "total_requests": 5}
    assert result.retrieval_calls == 2
    kinds = [e.kind for e in result.trace]
    assert kinds == ["decompose", "plan", "execute", "retrieve", "answer", "retrieve", "answer", "answer", "final"]
    assert [e.step for e in result.trace] == list(range(1, 10))
    assert result.execution_log[0] == "[Step 1] retrieve('When was Jed Hoyer born?', topk=5)"
    assert "[Step 2] answer('When was Jed Hoyer born?')" in result.execution_log
    assert result.execution_log[1].startswith("    doc1: (Title: Jed Hoyer) Jed Hoyer (born December 7, 1973)")
    d = result.to_dict()
    for key in (
        "original_query",
        "sub_queries",
        "generated_code",
        "execution_log",
        "variables",
        "final_answer",
        "retried_with_topk10",
    ):
        assert key in d
    json.dumps(d)


def test_validation_error_is_repaired_with_feedback(bm25):
    broken = JED_HOYER.replace("jed_birth}", "jed_brith}")
    with ScriptedLLM(default_handler([broken, JED_HOYER])) as llm:
        result = make_pipeline(llm.url, bm25).run(QUESTION)
        repair_prompt = [r for r in llm.requests if r["role"] == "repair"][0]["messages"][-1]["content"]
    assert result.ok and result.repair_rounds == 1
    assert "UndefinedName: name 'jed_brith' is not defined" in repair_prompt
    assert "Did you mean 'jed_birth'?" in repair_prompt and "^^^^^^^^^" in repair_prompt
    repair = [e for e in result.trace if e.kind == "repair"][0]
    assert repair.errors[0]["type"] == "UndefinedName"
    plans = [e for e in result.trace if e.kind == "plan"]
    assert [p.round for p in plans] == [0, 1] and plans[0].errors and not plans[1].errors
    assert result.programs == [broken, JED_HOYER]


def test_runtime_error_repair_reuses_unchanged_calls(bm25):
    # the first program asks for too many documents; the fixed one keeps its first two calls
    greedy = JED_HOYER.replace(
        'docs2 = retrieve("When was John William Henry II born?")',
        'docs2 = retrieve("When was John William Henry II born?", topk=50)',
    )
    with ScriptedLLM(default_handler([greedy, JED_HOYER])) as llm:
        result = make_pipeline(llm.url, bm25, limits=Limits(max_docs=5)).run(QUESTION)
        answer_requests = llm.count("answer_docs") + llm.count("answer_synth")
    assert result.ok and result.repair_rounds == 1
    assert result.trace[[e.kind for e in result.trace].index("repair")].errors[0]["limit"] == "max_docs"
    second = result.trace[[i for i, e in enumerate(result.trace) if e.kind == "execute"][1] :]
    calls = [e for e in second if e.kind in ("retrieve", "answer")]
    assert [e.cached for e in calls] == [True, True, False, False, False]
    assert answer_requests == 3 and result.retrieval_calls == 3  # not 4 answers and 4 retrievals
    assert result.llm_calls["answer"] == 3


def _unknown_at_top5(prompt):
    """Virginia Bruce's birth date is only in the 6th+ document: 'unknown' with 5 documents."""
    titles = doc_titles(prompt)
    q = question_in(prompt)
    if "Virginia Bruce" in q:
        found = "Virginia Bruce" in titles and len(titles) > 5
        return "<answer>September 29, 1910</answer>" if found else "<answer>unknown</answer>"
    return "<answer>1939</answer>"


ADAPTIVE_PROGRAM = """film_docs = retrieve("When was Let Freedom Ring released?")
film_year = answer("When was Let Freedom Ring released?", film_docs)
bruce_docs = retrieve("When was Virginia Bruce born?")
bruce_birth = answer("When was Virginia Bruce born?", bruce_docs)
final_answer = answer(f"Given: the film came out in {film_year} and Virginia Bruce was born {bruce_birth}. Answer the question: How old was Virginia Bruce in Let Freedom Ring?")
"""


def _synth_age(role, prompt, body):
    if role == "answer_synth":
        return "<answer>28</answer>" if "1910" in prompt else "<answer>unknown</answer>"
    return None


def adaptive_handler():
    base = default_handler([ADAPTIVE_PROGRAM], answers=_unknown_at_top5)

    def handler(role, prompt, body):
        return _synth_age(role, prompt, body) or base(role, prompt, body)

    return handler


def test_adaptive_retry_reruns_only_the_affected_subtree(bm25):
    with ScriptedLLM(adaptive_handler()) as llm:
        result = make_pipeline(llm.url, bm25).run("How old was Virginia Bruce in Let Freedom Ring?")
    assert result.ok and result.final_answer == "28" and result.retried_with_topk10
    retry = [e for e in result.trace if e.kind == "adaptive_retry"]
    assert len(retry) == 1
    assert (retry[0].statement, retry[0].retrieve_statements, retry[0].topk, retry[0].rerun) == (3, [2], 10, [2, 3, 4])
    after = result.trace[result.trace.index(retry[0]) + 1 :]
    rerun_calls = [(e.statement, e.kind, e.inputs.get("topk")) for e in after if e.kind in ("retrieve", "answer")]
    assert rerun_calls == [(2, "retrieve", 10), (3, "answer", None), (4, "answer", None)]
    film = [e for e in result.trace if e.kind == "retrieve" and e.statement == 0]
    assert len(film) == 1  # the unaffected retrieval ran once
    assert result.retrieval_calls == 3 and result.llm_calls["answer"] == 5


def test_reference_policy_reruns_everything(bm25):
    with ScriptedLLM(adaptive_handler()) as llm:
        result = make_pipeline(llm.url, bm25, policy="reference").run("How old was Virginia Bruce?")
    assert result.ok and result.final_answer == "28" and result.retried_with_topk10
    assert result.retrieval_calls == 4 and result.llm_calls["answer"] == 6
    assert [e.kind for e in result.trace].count("execute") == 2


def test_final_answer_sentinel_boosts_every_upstream_retrieval(bm25):
    def answers(prompt):  # with more documents the answers get more precise
        titles = doc_titles(prompt)
        year = BIRTHS.get(titles[0], "unknown")
        return f"<answer>{year if len(titles) > 5 else year[-4:]}</answer>"

    def handler(role, prompt, body):
        if role == "answer_synth":
            return "<answer>Henry</answer>" if "December" in prompt else "<answer>unknown</answer>"
        return default_handler(answers=answers)(role, prompt, body)

    with ScriptedLLM(handler) as llm:
        result = make_pipeline(llm.url, bm25).run(QUESTION)
    retry = [e for e in result.trace if e.kind == "adaptive_retry"]
    assert [(r.statement, r.retrieve_statements, r.rerun) for r in retry] == [(4, [0, 2], [0, 1, 2, 3, 4])]
    assert result.variables["jed_birth"] == "December 7, 1973"
    assert result.final_answer == "Henry"


def test_sentinel_matching_is_not_substring(bm25):
    from pyrag_dsl.agents import Sentinels

    s = Sentinels()
    assert s("unknown") and s("Unknown.") and s("Not enough information to answer.") and s("") and s("N/A")
    assert s("unknown, the documents do not say")
    assert not s("The Unknown Soldier") and not s("Unknown Soldier") and not s("Nonesuch Press")
    assert Sentinels(("nope",))("Nope!") and not Sentinels(("nope",))("unknown")


def test_llm_timeout_is_typed_and_keeps_results(bm25):
    inner = default_handler()

    def slow_answers(role, prompt, body):
        if role == "answer_docs":
            time.sleep(2)
        return inner(role, prompt, body)

    with ScriptedLLM(slow_answers) as llm:
        result = make_pipeline(llm.url, bm25, timeout_s=0.5).run(QUESTION)
    assert not result.ok
    assert result.error["type"] == "ToolError" and "LLMError" in result.error["message"]
    assert "timed out" in result.error["message"]
    assert result.sub_queries and result.generated_code == JED_HOYER
    assert "docs1" in result.variables and "jed_birth" not in result.variables
    assert [e.kind for e in result.trace][-2:] == ["error", "final"]


def test_garbage_from_every_agent(bm25):
    def handler(role, prompt, body):
        return {
            "decompose": "I think you should search the web.",
            "plan": "print('hello')",
            "repair": "Sorry, I cannot help with that.",
        }.get(role, "<answer>x</answer>")

    with ScriptedLLM(handler) as llm:
        result = make_pipeline(llm.url, bm25).run(QUESTION)
    assert result.sub_queries == [QUESTION]
    decompose = result.trace[0]
    assert decompose.fallback is True and decompose.attempts == 2 and len(decompose.raw) == 2
    assert result.error["type"] == "NoValidProgram" and result.repair_rounds == 3
    assert [e.kind for e in result.trace].count("plan") == 4
    assert result.final_answer is None and result.retrieval_calls == 0


def test_a_decompose_reply_nested_too_deep_falls_back(bm25):
    """A JSON list nested past the decoder's recursion limit is a bad reply like any other, not a crash."""
    base = default_handler()

    def handler(role, prompt, body):
        return "[" * 3000 + "]" if role == "decompose" else base(role, prompt, body)

    with ScriptedLLM(handler) as llm:
        result = make_pipeline(llm.url, bm25).run(QUESTION)
    assert result.ok, result.error
    assert result.sub_queries == [QUESTION] and result.trace[0].fallback is True
    assert result.final_answer == "John William Henry II"


THINK_QUESTION = "What does the <think> tag hold in a Qwen3 reply?"
THINK_PROGRAM = f"""docs1 = retrieve("What does the <think> tag hold?")
held = answer("What does the <think> tag hold?", docs1)
final_answer = answer(f"Given: it holds {{held}}. Answer the question: {THINK_QUESTION}")
"""


def test_a_question_that_mentions_think_is_answered(bm25):
    """Only a leading think block is thinking: a <think> inside the program (from the question) stays."""
    with ScriptedLLM(default_handler(["<think>It needs one lookup.</think>\n" + fenced(THINK_PROGRAM)])) as llm:
        result = make_pipeline(llm.url, bm25).run(THINK_QUESTION)
    assert result.ok, result.error
    assert result.generated_code == THINK_PROGRAM and result.repair_rounds == 0
    assert result.final_answer == "John William Henry II"  # the scripted synthesis answer


def test_llm_server_down_is_typed(bm25):
    from test_http_retrieval import _free_port

    result = make_pipeline(f"http://127.0.0.1:{_free_port()}/v1", bm25).run(QUESTION)
    assert result.error["type"] == "LLMError" and "cannot connect" in result.error["message"]
    assert result.trace[-1].kind == "final"


@pytest.mark.parametrize("owned_by, field", [("me", "grammar"), ("vllm", "guided_grammar"), ("other", None)])
def test_grammar_constrained_decoding_by_server_kind(bm25, owned_by, field):
    with ScriptedLLM(default_handler(), owned_by=owned_by) as llm:  # the whole language (auto: skeleton on llama.cpp)
        make_pipeline(llm.url, bm25, plan_grammar="language").run(QUESTION)
        plan_body = [r for r in llm.requests if r["role"] == "plan"][0]
        decompose_body = [r for r in llm.requests if r["role"] == "decompose"][0]
    if field is None:
        assert "grammar" not in plan_body and "guided_grammar" not in plan_body
        assert "grammar" not in decompose_body
    else:
        assert "call_retrieve" in plan_body[field] or "call-retrieve" in plan_body[field]
        assert "item" in decompose_body[field]  # the JSON-list grammar


def test_skeleton_plan_grammar(bm25):
    with ScriptedLLM(default_handler([JED_HOYER.replace("docs", "d")]), owned_by="me") as llm:
        make_pipeline(llm.url, bm25, plan_grammar="skeleton").run(QUESTION)
        grammar = [r for r in llm.requests if r["role"] == "plan"][0]["grammar"]
    assert "step2 ::=" in grammar and "step3" not in grammar  # two sub-queries: exactly two steps, no final line


def test_grammar_can_be_switched_off(bm25):
    with ScriptedLLM(default_handler(), owned_by="me") as llm:
        make_pipeline(llm.url, bm25, use_grammar=False).run(QUESTION)
        assert "grammar" not in [r for r in llm.requests if r["role"] == "plan"][0]


def test_plan_prompt_lists_registered_tools(bm25):
    from pyrag_dsl.agents import PlanAgent
    from pyrag_dsl.grammar import DEFAULT_LANGUAGE, Param, ToolSpec, ValueType

    lang = DEFAULT_LANGUAGE.with_tool(
        ToolSpec("year_of", (Param("date", ValueType.TEXT),), ValueType.INT, "Extract the year from a date.")
    )
    prompt = PlanAgent(None, lang).system_prompt()  # type: ignore[arg-type]
    assert "- year_of(date: text) -> int: Extract the year from a date." in prompt
    assert "- retrieve(query: text, topk: int = 5) -> docs" in prompt


@pytest.mark.parametrize("maker", [default_handler, adaptive_handler])
def test_replay_reproduces_every_step(bm25, maker):
    with ScriptedLLM(maker()) as llm:
        result = make_pipeline(llm.url, bm25).run(QUESTION)
    header, events = loads_jsonl(dumps_jsonl(result.trace, {"settings": result.settings}))
    report = replay(header, events)
    assert report.ok, report.diffs
    assert report.final_answer_replayed == result.final_answer
    assert report.steps_compared >= 6


def test_replay_reports_a_step_level_diff(bm25):
    with ScriptedLLM(default_handler()) as llm:
        result = make_pipeline(llm.url, bm25).run(QUESTION)
    text = dumps_jsonl(result.trace, {"settings": result.settings})
    tampered = text.replace('"output":"December 7, 1973"', '"output":"1999"')
    header, events = loads_jsonl(tampered)
    report = replay(header, events)
    assert not report.ok
    # the tampered answer flows into the final query, for which nothing was recorded
    diff = report.diffs[0]
    assert (diff.field, diff.recorded, diff.replayed) == ("kind", "answer", "error")
    assert report.final_answer_replayed is None


def test_reference_style_library_api(retrieval_server):
    from pyrag_dsl.compat import HttpRetrievalAgent, OpenAILLM, RAGProgramRunner, env_enable_thinking

    with ScriptedLLM(default_handler()) as llm:
        instruct = OpenAILLM(model="scripted", base_url=llm.url, enable_thinking=env_enable_thinking())
        runner = RAGProgramRunner(
            llm=instruct, plan_llm=instruct, retrieval_agent=HttpRetrievalAgent(port=retrieval_server.port)
        )
        result = runner.run(QUESTION, topk=5)
    assert result["final_answer"] == "John William Henry II"
    assert result["sub_queries"] and result["generated_code"] and result["execution_log"]
    assert result["retried_with_topk10"] is False


@pytest.mark.parametrize("maker", [default_handler, adaptive_handler])
def test_parallel_pipeline_batches_retrievals_and_replays(bm25, maker):
    with ScriptedLLM(maker()) as llm:
        seq = make_pipeline(llm.url, bm25).run(QUESTION)
    with ScriptedLLM(maker()) as llm:
        par = make_pipeline(llm.url, bm25, parallel=True).run(QUESTION)
    assert par.ok and par.final_answer == seq.final_answer and par.variables == seq.variables
    assert par.settings["parallel"] is True
    kinds = [(e.kind, getattr(e, "statement", None)) for e in par.trace if e.kind in ("retrieve", "answer")]
    seq_kinds = [(e.kind, getattr(e, "statement", None)) for e in seq.trace if e.kind in ("retrieve", "answer")]
    assert kinds == seq_kinds  # the same trace as sequential mode, whatever order the calls finished in
    header, events = loads_jsonl(dumps_jsonl(par.trace, {"settings": par.settings}))
    report = replay(header, events)
    assert report.ok, report.diffs


def test_an_over_long_document_from_the_retriever_is_not_sent_for_repair(bm25):
    """The retriever returns a document over max_string_length: not the program's fault, so no repair round
    (before: three futile Plan repairs, then NoValidProgram); the error names the tool and the limit."""
    from pyrag_dsl import Doc

    class LongDocs:
        def search(self, queries, topk):
            return [[Doc("long", "Long", "x" * 250_000)] + hits[1:] for hits in bm25.search(queries, topk)]

    with ScriptedLLM(default_handler()) as llm:
        result = make_pipeline(llm.url, LongDocs()).run(QUESTION)
        plans = llm.count("plan") + llm.count("repair")
    assert result.error["type"] == "LimitExceeded" and result.error["limit"] == "max_string_length"
    assert result.error["tool"] == "retrieve" and result.repair_rounds == 0 and plans == 1
