"""Pipeline cost, in one run:

1. Scripted scenarios (repairs, adaptive retries) answered by a scripted OpenAI-compatible server on
   loopback over a real Lucene index: LLM calls, retrieval calls and wall time of our incremental
   policy versus the reference's whole-program re-run. Every scripted LLM call waits --latency s.
2. The embedded model (SmolLM2-135M on llama.cpp) over --questions HotpotQA questions: share of valid
   first programs with the skeleton grammar, the whole-language grammar, and no grammar.

    python benchmarks/pipeline_calls.py [--latency 0.05] [--questions 20] [--skip-embedded]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from scripted_llm import ScriptedLLM  # noqa: E402
from test_pipeline import ADAPTIVE_PROGRAM, JED_HOYER, QUESTION, adaptive_handler, default_handler  # noqa: E402

from pyrag_dsl.agents import LLMClient, LLMConfig  # noqa: E402
from pyrag_dsl.grammar import Limits, validate  # noqa: E402
from pyrag_dsl.pipeline import Pipeline, PipelineConfig  # noqa: E402
from pyrag_dsl.retrievers import open_index  # noqa: E402
from pyrag_dsl.retrievers.bm25 import build_bm25_index  # noqa: E402

GREEDY = JED_HOYER.replace('docs2 = retrieve("When was John William Henry II born?")',
                           'docs2 = retrieve("When was John William Henry II born?", topk=50)')
GREEDY_ADAPTIVE = ADAPTIVE_PROGRAM.replace('bruce_docs = retrieve("When was Virginia Bruce born?")',
                                           'bruce_docs = retrieve("When was Virginia Bruce born?", topk=50)')


def scenarios():
    def with_programs(maker, programs):
        def make():
            handler = maker()
            queue = list(programs)

            def h(role, prompt, body):
                if role in ("plan", "repair"):
                    return queue.pop(0) if len(queue) > 1 else queue[0]
                return handler(role, prompt, body)
            return h
        return make

    # max_docs makes the greedy first programs (topk=50) fail at run time after their first calls
    return [
        ("no repair, no retry", QUESTION, default_handler, 8),
        ("1 repair (runtime limit)", QUESTION, with_programs(default_handler, [GREEDY, JED_HOYER]), 8),
        ("1 adaptive retry", "How old was Virginia Bruce?", adaptive_handler, 10),
        ("1 repair + 1 adaptive retry", "How old was Virginia Bruce?",
         with_programs(adaptive_handler, [GREEDY_ADAPTIVE, ADAPTIVE_PROGRAM]), 10),
    ]


def scripted_part(latency: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        build_bm25_index(ROOT / "tests" / "data" / "small-corpus.jsonl", Path(tmp) / "idx")
        retriever = open_index(Path(tmp) / "idx")
        with ScriptedLLM(default_handler()) as llm:  # warm-up: imports, JIT, connections
            Pipeline(LLMClient(LLMConfig(base_url=llm.url, model="scripted")), retriever).run(QUESTION)
        print(f"Scripted scenarios (simulated LLM latency {latency * 1000:.0f} ms per call, real Lucene index)")
        print(f"  {'scenario':<30} {'policy':<13} {'LLM calls':>9} {'answer':>7} {'retrievals':>10} {'wall s':>7}  "
              f"final answer")
        for name, question, make_handler, max_docs in scenarios():
            rows = {}
            for label in ("incremental", "reference", "incr+parallel"):
                policy = "reference" if label == "reference" else "incremental"
                with ScriptedLLM(make_handler(), delay=latency) as llm:
                    client = LLMClient(LLMConfig(base_url=llm.url, model="scripted", retries=0))
                    config = PipelineConfig(policy=policy, limits=Limits(max_docs=max_docs),
                                            parallel=label == "incr+parallel")
                    pipeline = Pipeline(client, retriever, config=config)
                    t0 = time.perf_counter()
                    result = pipeline.run(question)
                    wall = time.perf_counter() - t0
                    calls = len(llm.requests)
                rows[label] = (calls, result.llm_calls["answer"], result.retrieval_calls, wall)
                print(f"  {name:<30} {label:<13} {calls:>9} {result.llm_calls['answer']:>7} "
                      f"{result.retrieval_calls:>10} {wall:>7.2f}  {result.final_answer}")
            inc, ref = rows["incremental"], rows["reference"]
            print(f"  {'':<30} {'saved':<13} {ref[0] - inc[0]:>9} {ref[1] - inc[1]:>7} {ref[2] - inc[2]:>10} "
                  f"{ref[3] - inc[3]:>7.2f}  (incremental vs reference)")
        retriever.close()


def embedded_part(n_questions: int) -> None:
    from pyrag_dsl.agents import DecomposeAgent, PlanAgent
    from pyrag_dsl.agents.local_server import LocalLLMServer
    from pyrag_dsl.retrievers.embedded import QUESTIONS_FILE

    questions = [json.loads(x)["question"] for x in QUESTIONS_FILE.read_text().splitlines()[:n_questions]]
    print(f"\nEmbedded model (SmolLM2-135M, llama.cpp, CPU) over {len(questions)} HotpotQA questions: "
          "share of valid first programs")
    with LocalLLMServer() as server:
        client = LLMClient(LLMConfig(base_url=server.base_url, model="local", grammar="gbnf", timeout_s=300))
        subs = [DecomposeAgent(client).run(q).sub_queries for q in questions]
        for mode in ("skeleton", "language", "off"):
            planner = PlanAgent(client, grammar=mode)
            valid, t0 = 0, time.perf_counter()
            for q, s in zip(questions, subs):
                valid += validate(planner.write(q, s)).ok
            secs = (time.perf_counter() - t0) / len(questions)
            print(f"  plan grammar {mode:<9} valid {valid:>3}/{len(questions)} ({valid / len(questions):.0%}), "
                  f"{secs:.1f} s per program")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.05, help="simulated seconds per scripted LLM call")
    ap.add_argument("--questions", type=int, default=20, help="questions for the embedded-model part")
    ap.add_argument("--skip-embedded", action="store_true", help="skip the embedded-model part (minutes on CPU)")
    args = ap.parse_args()
    scripted_part(args.latency)
    if not args.skip_embedded:
        embedded_part(args.questions)


if __name__ == "__main__":
    main()
