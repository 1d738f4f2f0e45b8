"""Through the whole pipeline: an adaptive retry after a name was reassigned re-asks the question the
flagged answer was computed from (the binding), not the name's last value."""

from scripted_llm import ScriptedLLM, doc_titles, question_in
from test_pipeline import QUESTION, default_handler, make_pipeline

PROGRAM = """q = "When was Jed Hoyer born?"
docs = retrieve(q)
jed = answer(q, docs)
q = "When was John William Henry II born?"
docs = retrieve(q)
john = answer(q, docs)
final_answer = answer(f"Given: Jed Hoyer was born {jed}, John William Henry II was born {john}. Answer the question: {q}")
"""


def _answers(prompt):
    question, n_docs = question_in(prompt), len(doc_titles(prompt))
    if "Jed Hoyer" in question:
        return "<answer>December 7, 1973</answer>" if n_docs > 5 else "<answer>unknown</answer>"
    return "<answer>September 13, 1949</answer>"


def test_adaptive_retry_follows_bindings_after_reassignment(bm25):
    for parallel in (False, True):
        with ScriptedLLM(default_handler([PROGRAM], answers=_answers)) as llm:
            result = make_pipeline(llm.url, bm25, parallel=parallel).run(QUESTION)
        assert result.ok, result.error
        assert result.retried_with_topk10
        retry = next(e for e in result.trace if e.kind == "adaptive_retry")
        assert (retry.statement, retry.retrieve_statements, retry.rerun) == (2, [1], [1, 2, 6])
        after = result.trace[result.trace.index(retry) + 1 :]
        boosted = [e for e in after if e.kind == "retrieve"]
        assert [(e.statement, e.inputs["query"], e.inputs["topk"]) for e in boosted] == [
            (1, "When was Jed Hoyer born?", 10)
        ]
        assert result.variables["jed"] == "December 7, 1973"
        assert result.variables["john"] == "September 13, 1949"
        assert result.variables["q"] == "When was John William Henry II born?"
