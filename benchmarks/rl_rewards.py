"""Cost of the verl rewards (pyrag_dsl.rl.rewards.compute_score), in one run:

1. The answer reward (pure: extraction + EM/F1): microseconds per rollout; and on hostile rollouts of
   repeated unclosed "<answer>" tags, 1 MB (refused by the length cap) and just under the cap (the tag scan;
   the old span regex was quadratic there).
2. The plan reward for one GRPO group of n rollouts of one prompt, scored by n threads at once as verl's
   reward workers do, against a scripted frozen Answer agent on loopback (every call waits --latency s)
   and our retrieval server over a tantivy index of the test corpus: wall time of the group, and the
   requests that reached the endpoints versus the tool calls the programs made (the shared cache).
   Cold: a fresh cache per group; warm: the same group again (the next epoch's rollouts of the prompt).

    python benchmarks/rl_rewards.py [--latency 0.05] [--n 8] [--repeats 5]

Prints medians with min-max as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from corpus import JED_HOYER  # noqa: E402
from scripted_llm import ScriptedLLM  # noqa: E402
from test_rl_rewards import GOLD, QUESTION, frozen_agents  # noqa: E402

from pyrag_dsl.retrievers import open_index  # noqa: E402
from pyrag_dsl.retrievers.server import BackgroundServer, create_app  # noqa: E402
from pyrag_dsl.retrievers.tantivy_bm25 import build_tantivy_index  # noqa: E402
from pyrag_dsl.rl.rewards import MAX_ROLLOUT_CHARS, compute_score  # noqa: E402

VARIANT = JED_HOYER.replace("Who is older", "Which one is older")
GROUP = [JED_HOYER] * 5 + [VARIANT] * 2 + ['x = __import__("os")\nfinal_answer = "x"\n']


def stats(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4), "max": round(max(values), 4)}


def answer_reward(repeats: int) -> tuple[float, dict]:
    """Microseconds per scored rollout, and milliseconds on the hostile rollouts (median, min-max)."""
    t0 = time.perf_counter()
    for _ in range(10_000):
        compute_score("pyrag_answer_with_docs", "<answer>John William Henry II</answer>", GOLD)
    answer_us = (time.perf_counter() - t0) / 10_000 * 1e6
    hostile_ms = {}
    for name, size in (("repeated_tags_1MB", 1_000_000), ("repeated_tags_at_cap", MAX_ROLLOUT_CHARS)):
        rollout = "<answer>" * (size // 8)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            kind = compute_score("pyrag_answer_with_docs", rollout, GOLD)["error_kind"]
            times.append((time.perf_counter() - t) * 1e3)
        hostile_ms[name] = {**stats(times), "error_kind": kind}
    return answer_us, hostile_ms


def plan_groups(args: argparse.Namespace) -> dict:
    """One GRPO group scored by n threads, cold and warm, `--repeats` times, against loopback endpoints."""
    group = (GROUP * (args.n // len(GROUP) + 1))[: args.n]
    with tempfile.TemporaryDirectory() as tmp:
        build_tantivy_index(ROOT / "tests" / "data" / "small-corpus.jsonl", Path(tmp) / "idx")
        retriever = open_index(Path(tmp) / "idx")
        with (
            BackgroundServer(create_app(retriever, name="small")) as server,
            ScriptedLLM(frozen_agents(), delay=args.latency) as llm,
        ):
            cold, warm, sent, made = [], [], [], []
            for rep in range(args.repeats):
                kw = {
                    "answer_url": llm.url,
                    "answer_model": "scripted",
                    "retriever_url": server.url,
                    "use_grammar": False,
                    "cache_size": 10_000 + rep,
                }  # a fresh process cache per repeat
                for bucket in (cold, warm):
                    before = len(llm.requests)
                    t = time.perf_counter()
                    with ThreadPoolExecutor(args.n) as pool:
                        outs = list(
                            pool.map(
                                lambda p: compute_score("pyrag_plan", p, GOLD, {"question": QUESTION}, **kw), group
                            )
                        )
                    bucket.append(time.perf_counter() - t)
                    if bucket is cold:
                        sent.append(len(llm.requests) - before)
                        made.append(sum(o["calls"] for o in outs))
    return {
        "n": args.n,
        "latency_s": args.latency,
        "repeats": args.repeats,
        "cold_group_s": stats(cold),
        "warm_group_s": stats(warm),
        "tool_calls_made_by_programs": stats(made),
        "llm_requests_sent_cold": stats(sent),
        "error_kinds": sorted({o["error_kind"] for o in outs}),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.05, help="seconds each scripted LLM call waits")
    ap.add_argument("--n", type=int, default=8, help="rollouts per prompt (GRPO group size)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    answer_us, hostile_ms = answer_reward(args.repeats)
    report = {
        "answer_reward_us_per_rollout": round(answer_us, 1),
        "answer_reward_hostile_ms": hostile_ms,
        "plan_group": plan_groups(args),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
