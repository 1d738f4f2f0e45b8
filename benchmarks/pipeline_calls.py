"""Pipeline cost, in one run:

1. Scripted scenarios (repairs, adaptive retries) answered on loopback by the per-token OpenAI-compatible
   server of benchmarks/latency_server.py over the embedded corpus's BM25 index: LLM calls, retrieval calls,
   the LLM seconds the latency model charges (base + per token of each reply, so a Plan or repair reply of
   ~110 tokens costs ten times a short answer) and the wall time, for our incremental policy versus the
   reference's whole-program re-run.
2. The embedded model (SmolLM2-135M on llama.cpp) over --questions HotpotQA questions: share of valid
   first programs with the skeleton grammar, the whole-language grammar, and no grammar.

Runs on the README's install (`.[all]` + the `bench` extra); nothing from tests/.

    python benchmarks/pipeline_calls.py [--base-ms 20] [--per-token-ms 10] [--questions 20] [--skip-embedded]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from latency_server import LatencyServer, doc_titles, question_in  # noqa: E402

from pyrag_dsl.agents import LLMClient, LLMConfig  # noqa: E402
from pyrag_dsl.grammar import Limits, validate  # noqa: E402
from pyrag_dsl.pipeline import Pipeline, PipelineConfig  # noqa: E402
from pyrag_dsl.retrievers.embedded import embedded_retriever  # noqa: E402

QUESTION = "Who is older, Jed Hoyer or John William Henry II?"
JED_HOYER = (ROOT / "examples" / "jed_hoyer.py").read_text().split("\n", 1)[1]
BIRTHS = {"Jed Hoyer": "December 7, 1973", "John William Henry II": "September 13, 1949"}
ADAPTIVE_QUESTION = "How old was Virginia Bruce in Let Freedom Ring?"
ADAPTIVE_PROGRAM = """film_docs = retrieve("When was Let Freedom Ring released?")
film_year = answer("When was Let Freedom Ring released?", film_docs)
bruce_docs = retrieve("When was Virginia Bruce born?")
bruce_birth = answer("When was Virginia Bruce born?", bruce_docs)
final_answer = answer(f"Given: the film came out in {film_year} and Virginia Bruce was born {bruce_birth}. \
Answer the question: How old was Virginia Bruce in Let Freedom Ring?")
"""
GREEDY = JED_HOYER.replace(
    'docs2 = retrieve("When was John William Henry II born?")',
    'docs2 = retrieve("When was John William Henry II born?", topk=50)',
)
GREEDY_ADAPTIVE = ADAPTIVE_PROGRAM.replace(
    'bruce_docs = retrieve("When was Virginia Bruce born?")',
    'bruce_docs = retrieve("When was Virginia Bruce born?", topk=50)',
)


def fenced(program: str) -> str:
    return "```python\n" + program + "```"


def handler(programs: list[str]):
    """Replies by role; Plan/repair replies come from `programs` in turn (the last one repeats). Virginia
    Bruce's birth date is "found" only with more than 5 documents, which makes the adaptive retry happen
    on any index."""
    queue = list(programs)

    def reply(role: str, prompt: str, body: dict) -> str:
        if role == "decompose":
            if "Virginia Bruce" in prompt:
                return json.dumps(["When was Let Freedom Ring released?", "When was Virginia Bruce born?"])
            return json.dumps(["When was Jed Hoyer born?", "When was John William Henry II born?"])
        if role in ("plan", "repair"):
            return fenced(queue.pop(0) if len(queue) > 1 else queue[0])
        if role == "answer_docs":
            q = question_in(prompt)
            if "Virginia Bruce" in q:
                return (
                    "<answer>September 29, 1910</answer>" if len(doc_titles(prompt)) > 5 else "<answer>unknown</answer>"
                )
            if "Let Freedom Ring" in q:
                return "<answer>1939</answer>"
            return f"<answer>{next((v for k, v in BIRTHS.items() if k in q), 'unknown')}</answer>"
        if role == "answer_synth":
            return "<answer>28</answer>" if "1910" in prompt else "<answer>John William Henry II</answer>"
        return "<answer>unknown</answer>"

    return reply


def scenarios():
    # max_docs makes the greedy first programs (topk=50) fail at run time after their first calls
    return [
        ("no repair, no retry", QUESTION, [JED_HOYER], 8),
        ("1 repair (runtime limit)", QUESTION, [GREEDY, JED_HOYER], 8),
        ("1 adaptive retry", ADAPTIVE_QUESTION, [ADAPTIVE_PROGRAM], 10),
        ("1 repair + 1 adaptive retry", ADAPTIVE_QUESTION, [GREEDY_ADAPTIVE, ADAPTIVE_PROGRAM], 10),
    ]


def scripted_part(base_s: float, per_token_s: float) -> None:
    retriever = embedded_retriever()
    with LatencyServer(handler([JED_HOYER]), base_s=0, per_token_s=0) as llm:  # warm-up: imports, connections
        Pipeline(LLMClient(LLMConfig(base_url=llm.url, model="latency", grammar="off")), retriever).run(QUESTION)
    print(
        f"Scripted scenarios: LLM {base_s * 1000:g} ms + {per_token_s * 1000:g} ms per completion token "
        f"(tokens = ceil(chars/4)), embedded corpus (BM25); load {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(
        f"  {'scenario':<30} {'policy':<13} {'LLM calls':>9} {'answer':>7} {'tokens out':>10} "
        f"{'LLM s':>6} {'retrievals':>10} {'wall s':>7}  final answer"
    )
    for name, question, programs, max_docs in scenarios():
        rows = {}
        for label in ("incremental", "reference", "incr+parallel"):
            policy = "reference" if label == "reference" else "incremental"
            with LatencyServer(handler(programs), base_s=base_s, per_token_s=per_token_s) as llm:
                client = LLMClient(LLMConfig(base_url=llm.url, model="latency", retries=0, grammar="off"))
                config = PipelineConfig(
                    policy=policy, limits=Limits(max_docs=max_docs), parallel=label == "incr+parallel"
                )
                t0 = time.perf_counter()
                result = Pipeline(client, retriever, config=config).run(question)
                wall = time.perf_counter() - t0
                calls = len(llm.requests)
                tokens = sum(r["completion_tokens"] for r in llm.requests)
                priced = sum(llm.seconds_for(r["completion_tokens"]) for r in llm.requests)
                client.close()
            rows[label] = (calls, result.llm_calls["answer"], tokens, priced, result.retrieval_calls, wall)
            print(
                f"  {name:<30} {label:<13} {calls:>9} {result.llm_calls['answer']:>7} {tokens:>10} "
                f"{priced:>6.2f} {result.retrieval_calls:>10} {wall:>7.2f}  {result.final_answer}"
            )
        inc, ref = rows["incremental"], rows["reference"]
        print(
            f"  {'':<30} {'saved':<13} {ref[0] - inc[0]:>9} {ref[1] - inc[1]:>7} {ref[2] - inc[2]:>10} "
            f"{ref[3] - inc[3]:>6.2f} {ref[4] - inc[4]:>10} {ref[5] - inc[5]:>7.2f}  (incremental vs reference)"
        )
    retriever.close()


def embedded_part(n_questions: int) -> None:
    from pyrag_dsl.agents import DecomposeAgent, PlanAgent
    from pyrag_dsl.agents.local_server import LocalLLMServer
    from pyrag_dsl.retrievers.embedded import QUESTIONS_FILE

    questions = [json.loads(x)["question"] for x in QUESTIONS_FILE.read_text().splitlines()[:n_questions]]
    print(
        f"\nEmbedded model (SmolLM2-135M, llama.cpp, CPU) over {len(questions)} HotpotQA questions: "
        "share of valid first programs"
    )
    with LocalLLMServer() as server:
        client = LLMClient(LLMConfig(base_url=server.base_url, model="local", grammar="gbnf", timeout_s=300))
        subs = [DecomposeAgent(client).run(q).sub_queries for q in questions]
        for mode in ("skeleton", "language", "off"):
            planner = PlanAgent(client, grammar=mode)
            valid, t0 = 0, time.perf_counter()
            for q, s in zip(questions, subs):
                valid += validate(planner.write(q, s)).ok
            secs = (time.perf_counter() - t0) / len(questions)
            print(
                f"  plan grammar {mode:<9} valid {valid:>3}/{len(questions)} ({valid / len(questions):.0%}), "
                f"{secs:.1f} s per program"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-ms", type=float, default=20.0, help="LLM milliseconds before the first token")
    ap.add_argument("--per-token-ms", type=float, default=10.0, help="LLM milliseconds per completion token")
    ap.add_argument("--questions", type=int, default=20, help="questions for the embedded-model part")
    ap.add_argument("--skip-embedded", action="store_true", help="skip the embedded-model part (minutes on CPU)")
    args = ap.parse_args()
    scripted_part(args.base_ms / 1000, args.per_token_ms / 1000)
    if not args.skip_embedded:
        embedded_part(args.questions)


if __name__ == "__main__":
    main()
