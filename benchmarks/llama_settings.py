"""The embedded llama.cpp server's settings, measured: prompt evaluation and generation speed and the
effect of the RAM prompt cache on the small-model prompts (whose examples form a stable prefix).

For each setting, the server is started once; then the Plan agent's skeleton prompt (the longest
prompt with a stable prefix) is sent for --questions different questions, one after the other.
Reports median (min-max) seconds per call, completion tokens per second of call time, and the machine
load before and after. (Consecutive prompts of one kind: the case where llama-cpp-python's own reuse of
the previous prompt's prefix already applies; the RAM cache is for prompts of several kinds interleaved.)

    nice -n 10 python benchmarks/llama_settings.py [--model qwen2.5-coder-0.5b] [--questions 4] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pyrag_dsl.agents import LLMClient, LLMConfig  # noqa: E402
from pyrag_dsl.agents.local_server import LlamaSettings, LocalLLMServer  # noqa: E402
from pyrag_dsl.agents.plan import PlanAgent  # noqa: E402

QUESTIONS = [
    (
        "Which magazine was started first, Arthur's Magazine or First for Women?",
        ["When was Arthur's Magazine started?", "When was First for Women started?"],
    ),
    (
        "What nationality was the composer of the opera Rusalka?",
        ["Who composed the opera Rusalka?", "What nationality was the composer of Rusalka?"],
    ),
    (
        "Are Cadmium Chloride and Calcium Chloride both used as drying agents?",
        ["Is Cadmium Chloride used as a drying agent?", "Is Calcium Chloride used as a drying agent?"],
    ),
    (
        "In which city was the founder of the company that makes the Kindle born?",
        [
            "Which company makes the Kindle?",
            "Who founded the company that makes the Kindle?",
            "In which city was the founder born?",
        ],
    ),
    (
        "Who was born first, Greta Garbo or Ingrid Bergman?",
        ["When was Greta Garbo born?", "When was Ingrid Bergman born?"],
    ),
    (
        "How many people live in the capital of Norway?",
        ["What is the capital of Norway?", "How many people live in the capital of Norway?"],
    ),
]


def _span(xs: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(xs), 2), "min": round(min(xs), 2), "max": round(max(xs), 2)}


def measure(model: str, settings: LlamaSettings, n: int) -> dict:
    rows = []
    with LocalLLMServer(model, settings=settings) as server:
        llm = LLMClient(LLMConfig(model=server.alias, base_url=server.base_url, grammar="gbnf", timeout_s=600))
        planner = PlanAgent(llm, grammar="skeleton")
        for question, subs in QUESTIONS[:n]:
            usage = {}
            t = time.monotonic()
            llm.chat(
                planner.write_messages(question, subs),
                extra_body=planner._extra(subs),
                max_tokens=300,
                on_usage=lambda u: usage.update(prompt=u.prompt_tokens, completion=u.completion_tokens),
            )
            rows.append({"question": question, "seconds": time.monotonic() - t, **usage})
        llm.close()
    secs = [r["seconds"] for r in rows]
    return {
        "settings": settings.to_dict(),
        "plan_call_s": _span(secs),
        "first_call_s": round(secs[0], 2),
        "later_calls_s": _span(secs[1:]) if len(secs) > 1 else None,
        "completion_tok_per_s": _span([r["completion"] / r["seconds"] for r in rows if r.get("completion")]),
        "prompt_tokens": _span([r["prompt"] for r in rows if r.get("prompt")]),
        "calls": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--questions", type=int, default=4)
    ap.add_argument("--out", default=None, help="write the JSON report here too")
    args = ap.parse_args()
    report = {"model": args.model, "load_before": os.getloadavg(), "runs": []}
    for settings in (LlamaSettings(), LlamaSettings(prompt_cache=False)):
        report["runs"].append(measure(args.model, settings, args.questions))
        print(json.dumps({k: v for k, v in report["runs"][-1].items() if k != "calls"}), flush=True)
    report["load_after"] = os.getloadavg()
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
