"""Latency at the critical path: sequential vs parallel (dataflow) execution, the whole pipeline with and
without streamed plans, and batch throughput of `pyrag-dsl run --concurrency`.

Real parts on loopback: the per-token OpenAI-compatible server of benchmarks/latency_server.py (default
20 ms + 10 ms per completion token) and the real retrieval server (`create_app` over the embedded corpus's
BM25 index, uvicorn), reached through HttpRetriever and the Answer agent.

1. Program shapes (1/2/4/8 independent branches, uneven branches, a chain) run by `execute()` in sequential
   and dataflow mode. The critical-path bound of a shape is the longest path through its dependency graph
   with each statement priced at its median *measured* duration in the sequential runs (trace start/end),
   so it includes the real retrieval server and HTTP costs, not only the latency model.
2. The whole pipeline (`Pipeline.run`) on a two-branch comparison question: sequential, parallel, and
   parallel + streamed plan (`PipelineConfig(stream_plan=True)`, when that field exists).
3. Batch throughput of many questions (pyrag_dsl.pipeline.questions, the `run --concurrency` code) at
   concurrency 1 vs 16 against a server that answers every request after 200 ms.

    python benchmarks/dataflow.py [--runs 5] [--base-ms 20] [--per-token-ms 10] [--skip-batch]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency_server import LatencyServer, Script  # noqa: E402

from pyrag_dsl.agents import LLMClient, LLMConfig  # noqa: E402
from pyrag_dsl.agents.answer import AnswerAgent  # noqa: E402
from pyrag_dsl.grammar import parse_program  # noqa: E402
from pyrag_dsl.interpreter import execute  # noqa: E402
from pyrag_dsl.pipeline import Pipeline, PipelineConfig  # noqa: E402
from pyrag_dsl.retrievers.base import RetrieveTool  # noqa: E402
from pyrag_dsl.retrievers.embedded import embedded_retriever  # noqa: E402
from pyrag_dsl.retrievers.http_client import HttpRetriever  # noqa: E402
from pyrag_dsl.retrievers.server import BackgroundServer, create_app  # noqa: E402

QUESTION = "Who is older, Jed Hoyer or John William Henry II?"
TOPICS = [
    "Jed Hoyer",
    "John William Henry II",
    "Kiss and Tell",
    "Big Stone Gap",
    "Virginia Bruce",
    "Let Freedom Ring",
    "Shirley Temple",
    "Adriana Trigiani",
]


@dataclasses.dataclass
class Shape:
    name: str
    lines: list[str]  # one statement per line
    deps: list[list[int]]  # statement -> statements it reads

    @property
    def source(self) -> str:
        return "\n".join(self.lines) + "\n"


def branches(k: int) -> Shape:
    lines, deps, answers = [], [], []
    for i in range(k):
        q = f"When was {TOPICS[i]} born?"
        lines.append(f'docs{i} = retrieve("{q}")')
        deps.append([])
        lines.append(f'a{i} = answer("{q}", docs{i})')
        deps.append([len(lines) - 2])
        answers.append(len(lines) - 1)
    given = ", ".join(f"{{a{i}}}" for i in range(k))
    lines.append(f'final_answer = answer(f"Given: {given}. Answer the question: who was born first?")')
    deps.append(answers)
    return Shape(f"{k} branch{'es' if k > 1 else ''}", lines, deps)


def uneven() -> Shape:
    lines = [
        'd_film = retrieve("Who directed Kiss and Tell?")',
        'director = answer("Who directed Kiss and Tell?", d_film)',
        'd_dir = retrieve(f"When was {director} born?")',
        'dir_born = answer(f"When was {director} born?", d_dir)',
        'd_star = retrieve("When was Shirley Temple born?")',
        'star_born = answer("When was Shirley Temple born?", d_star)',
        'final_answer = answer(f"Given: the director was born {dir_born}, the star {star_born}. '
        'Answer the question: who is older?")',
    ]
    return Shape("uneven (2 hops + 1)", lines, [[], [0], [1], [1, 2], [], [4], [3, 5]])


def chain() -> Shape:
    lines = [
        'd1 = retrieve("Who directed Big Stone Gap?")',
        'who = answer("Who directed Big Stone Gap?", d1)',
        'd2 = retrieve(f"Where is {who} based?")',
        'where = answer(f"Where is {who} based?", d2)',
        'd3 = retrieve(f"Which state is {where} in?")',
        'final_answer = answer(f"Which state is {where} in?", d3)',
    ]
    return Shape("chain (3 hops)", lines, [[], [0], [1], [1, 2], [3], [3, 4]])


def critical_path(shape: Shape, durations: list[float]) -> float:
    finish: list[float] = []
    for i, d in enumerate(durations):
        finish.append(max((finish[j] for j in shape.deps[i]), default=0.0) + d)
    return max(finish)


class CountingRetriever:
    """Counts requests reaching the retrieval server (one search = one /retrieve request here)."""

    def __init__(self, inner: HttpRetriever) -> None:
        self.inner = inner
        self.requests = 0
        self._lock = threading.Lock()

    def search(self, queries, topk):
        with self._lock:
            self.requests += 1
        return self.inner.search(queries, topk)


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):6.3f} ({min(xs):.3f}-{max(xs):.3f})"


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def shapes_part(llm_url: str, retriever_url: str, runs: int) -> None:
    client = LLMClient(LLMConfig(base_url=llm_url, model="latency", retries=0, grammar="off"))
    answerer = AnswerAgent(client, use_grammar=False)
    print(f"\n1. Program shapes through execute(): seconds, median (min-max) of {runs} runs; {load()}")
    print("   critical path: longest dependency path, statements priced at their median measured sequential duration")
    print(
        f"   {'shape':<22} {'sequential':>22} {'parallel':>22} {'crit. path':>10} {'par/crit':>8} "
        f"{'seq/par':>7} {'/retrieve seq':>13} {'par':>4}"
    )
    for shape in [branches(1), branches(2), branches(4), branches(8), uneven(), chain()]:
        program = parse_program(shape.source)
        times: dict[str, list[float]] = {"sequential": [], "dataflow": []}
        reqs: dict[str, list[int]] = {"sequential": [], "dataflow": []}
        per_stmt: list[list[float]] = [[] for _ in shape.lines]
        for r in range(runs + 1):  # the first round warms connections and imports; not counted
            for mode in ("sequential", "dataflow"):
                counter = CountingRetriever(HttpRetriever(retriever_url, max_batch=256))
                tools = {"retrieve": RetrieveTool(counter), "answer": answerer}
                t0 = time.perf_counter()
                res = execute(program, tools, mode=mode, max_workers=8, batch_window_s=0.005)
                wall = time.perf_counter() - t0
                counter.inner.close()
                if res.error is not None:
                    raise SystemExit(f"{shape.name} {mode}: {res.error}")
                if r == 0:
                    continue
                times[mode].append(wall)
                reqs[mode].append(counter.requests)
                if mode == "sequential":
                    spans: dict[int, float] = {}
                    for ev in res.trace:
                        if getattr(ev, "statement", None) is not None:
                            spans[ev.statement] = spans.get(ev.statement, 0.0) + (ev.end - ev.start)
                    for i in range(len(shape.lines)):
                        per_stmt[i].append(spans.get(i, 0.0))
        crit = critical_path(shape, [statistics.median(x) for x in per_stmt])
        seq, par = statistics.median(times["sequential"]), statistics.median(times["dataflow"])
        print(
            f"   {shape.name:<22} {med(times['sequential']):>22} {med(times['dataflow']):>22} {crit:>10.3f} "
            f"{par / crit:>7.2f}x {seq / par:>6.2f}x {statistics.median(reqs['sequential']):>13.0f} "
            f"{statistics.median(reqs['dataflow']):>4.0f}"
        )
    client.close()


def pipeline_part(llm: LatencyServer, retriever_url: str, runs: int) -> None:
    llm_url = llm.url
    has_stream = "stream_plan" in {f.name for f in dataclasses.fields(PipelineConfig)}
    variants: list[tuple[str, dict[str, Any]]] = [("sequential", {"parallel": False}), ("parallel", {"parallel": True})]
    if has_stream:
        variants.append(("parallel + streamed", {"parallel": True, "stream_plan": True}))
    think = getattr(llm.script, "think_tokens", 0)
    print(
        f"\n2. Whole pipeline on {QUESTION!r}, answers of {'~' + str(think + 10) if think else '~10'} tokens: "
        f"seconds, median (min-max) of {runs} runs; {load()}"
    )
    first = len(llm.requests)
    results: dict[str, list[float]] = {}
    client = LLMClient(LLMConfig(base_url=llm_url, model="latency", retries=0, grammar="off"))
    for r in range(runs + 1):
        for label, kw in variants:
            retriever = HttpRetriever(retriever_url)
            pipe = Pipeline(client, retriever, config=PipelineConfig(max_workers=8, **kw))
            t0 = time.perf_counter()
            res = pipe.run(QUESTION)
            wall = time.perf_counter() - t0
            retriever.close()
            if not res.ok:
                raise SystemExit(f"pipeline {label}: {res.error}")
            if r:
                results.setdefault(label, []).append(wall)
    for label, xs in results.items():
        print(f"   {label:<22} {med(xs):>22}  answer {res.final_answer!r}")
    par = statistics.median(results["parallel"])
    print(f"   sequential / parallel: {statistics.median(results['sequential']) / par:.2f}x")
    # the most streaming can save: everything but Decompose, Plan and the statements after the plan's last
    # token (here the synthesis answer) overlaps with the Plan reply; priced by the latency model
    reqs = [r for r in llm.requests[first:] if not r["stream"]]
    model = {
        role: statistics.median(llm.seconds_for(r["completion_tokens"]) for r in reqs if r["role"] == role)
        for role in ("decompose", "plan", "answer_docs", "answer_synth")
        if any(r["role"] == role for r in reqs)
    }
    bound = model["decompose"] + model["plan"] + model["answer_synth"]
    print(
        f"   latency model: decompose {model['decompose']:.3f} s, plan {model['plan']:.3f} s, answer "
        f"{model.get('answer_docs', 0):.3f} s, synthesis {model['answer_synth']:.3f} s; streamed bound "
        f"(decompose + plan + synthesis) {bound:.3f} s = {100 * (1 - bound / par):.1f}% below measured parallel"
    )
    if has_stream:
        st = statistics.median(results["parallel + streamed"])
        print(f"   streamed vs parallel: {100 * (1 - st / par):.1f}% lower (target >= 20%)")
    else:
        print("   streamed: not available (PipelineConfig has no stream_plan field yet)")
    client.close()


def batch_part(retriever_url: str, n_low: int, n_high: int, runs: int) -> None:
    from pyrag_dsl.pipeline.batch import EndpointLimits, MeteredLLM, MeteredRetriever
    from pyrag_dsl.pipeline.questions import run_questions

    print(
        f"\n3. Batch throughput (run --concurrency, parallel mode), every LLM request answered after 200 ms; "
        f"{n_low} questions at concurrency 1, {n_high} at 16; median (min-max) of {runs} runs; {load()}"
    )
    qs = [f"Who is older, {TOPICS[i % 8]} or {TOPICS[(i + 3) % 8]}?" for i in range(max(n_low, n_high))]
    rates: dict[int, list[float]] = {}
    with LatencyServer(Script(default_answer="1950"), delay_for=lambda role, prompt: 0.2) as llm:
        client = LLMClient(LLMConfig(base_url=llm.url, model="latency", retries=0, grammar="off"))
        retriever = HttpRetriever(retriever_url)
        for conc, n in ((1, n_low), (16, n_high)):
            for _ in range(runs):
                limits = EndpointLimits(per_endpoint=conc)  # as `run`: --llm-inflight defaults to --concurrency

                def make(_i: int, lim: EndpointLimits = limits) -> Pipeline:
                    return Pipeline(
                        MeteredLLM(client, lim),
                        MeteredRetriever(retriever, retriever_url, lim),
                        config=PipelineConfig(parallel=True),
                    )

                t0 = time.perf_counter()
                done = run_questions(make, qs[:n], concurrency=conc)
                wall = time.perf_counter() - t0
                failed = [o for o in done if o.result.error is not None]
                if failed or len(done) != n:
                    raise SystemExit(f"batch: {failed[0].result.error if failed else 'questions missing'}")
                rates.setdefault(conc, []).append(n / wall)
        retriever.close()
        client.close()
    for conc, xs in rates.items():
        print(f"   concurrency {conc:>2}: {med(xs)} questions/s")
    ratio = statistics.median(rates[16]) / statistics.median(rates[1])
    print(f"   concurrency 16 / 1: {ratio:.1f}x (target >= 8x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="measured runs per case (after one warm-up)")
    ap.add_argument("--base-ms", type=float, default=20.0, help="LLM latency before the first token")
    ap.add_argument("--per-token-ms", type=float, default=10.0, help="LLM latency per completion token")
    ap.add_argument(
        "--think-tokens",
        type=int,
        default=54,
        help="also run the pipeline with a <think> of this many tokens before each answer "
        "(~64-token answers, as in the issue; 0: skip)",
    )
    ap.add_argument("--skip-shapes", action="store_true")
    ap.add_argument("--skip-pipeline", action="store_true")
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument(
        "--batch-questions",
        type=int,
        nargs=2,
        default=(8, 64),
        metavar=("N1", "N16"),
        help="questions at concurrency 1 and at 16",
    )
    args = ap.parse_args()
    print(
        f"LLM: latency server {args.base_ms:g} ms + {args.per_token_ms:g} ms per completion token "
        f"(tokens = ceil(chars/4)); retrieval: real server over the embedded corpus (BM25); {load()}"
    )
    retr = embedded_retriever()
    with (
        BackgroundServer(create_app(retr)) as rserver,
        LatencyServer(
            Script(default_answer="1950"), base_s=args.base_ms / 1000, per_token_s=args.per_token_ms / 1000
        ) as llm,
    ):
        if not args.skip_shapes:
            shapes_part(llm.url, rserver.url, args.runs)
        if not args.skip_pipeline:
            pipeline_part(llm, rserver.url, args.runs)
            if args.think_tokens:
                with LatencyServer(
                    Script(default_answer="1950", think_tokens=args.think_tokens),
                    base_s=args.base_ms / 1000,
                    per_token_s=args.per_token_ms / 1000,
                ) as slow:
                    pipeline_part(slow, rserver.url, args.runs)
        if not args.skip_batch:
            batch_part(rserver.url, *args.batch_questions, runs=max(1, min(args.runs, 3)))
    retr.close()


if __name__ == "__main__":
    main()
