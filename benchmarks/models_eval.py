"""Embedded models on the shipped HotpotQA dev questions: pyrag vs vanilla vs direct, EM/F1, seconds per
question, and how often the Answer agent says it cannot answer (a sentinel) and adaptive retrieval fires.

A stand-in until `pyrag-dsl eval` exists; methods as there: `vanilla` = retrieve top-5 for the question and
answer once with the (large-model) Answer prompt; `direct` = closed book (prompts/direct.txt).
Resumable: answered ids already in --out are skipped, so it can be stopped and restarted.

    nice -n 10 python benchmarks/models_eval.py --model qwen2.5-coder-0.5b --n 100 \
        --out 'benchmarks/results/qwen05-{method}.jsonl' [--budget-s 3600]
    python benchmarks/models_eval.py --summary benchmarks/results/*.jsonl
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

DATA = ROOT / "pyrag_dsl" / "data" / "hotpotqa-dev300.qa.jsonl"


def _answered(out: Path) -> set[str]:
    if not out.exists():
        return set()
    return {json.loads(line)["id"] for line in out.read_text().splitlines() if line.strip()}


def answer_one(p, method: str, question: str) -> dict:
    """The record's method-specific fields (at least `prediction`) for one question."""
    from pyrag_dsl.agents.answer import AnswerAgent, extract_answer
    from pyrag_dsl.agents.formats import answer_rules, grammars
    from pyrag_dsl.agents.prompts import load_prompt, render

    if method == "pyrag":
        before = p.answerer.computed
        res = p.run(question)
        answers = {k: v for k, v in res.variables.items() if k.startswith("ans")}
        return dict(
            prediction=res.final_answer,
            sub_queries=res.sub_queries,
            program=res.generated_code,
            error=res.error,
            retried=res.retried_with_topk10,
            llm_calls=res.llm_calls,
            step_answers=answers,
            sentinels=sum(p.is_sentinel(str(v)) for v in answers.values()),
            computed=p.answerer.computed - before,
            copied_example=p.planner.copied_example,
        )
    if method == "vanilla":
        docs = p.retriever.search([question], 5)[0]
        return {"prediction": AnswerAgent(p.llm)(question, docs)}
    prompt = render(load_prompt("direct"), query=question)
    reply = p.llm.chat(
        [{"role": "user", "content": prompt}],
        max_tokens=64,
        extra_body=p.llm.grammar_body(*grammars(answer_rules(), "reply")),
    )
    return {"prediction": extract_answer(reply) or "unknown"}


def run(args: argparse.Namespace) -> None:
    from pyrag_dsl.eval.metrics import exact_match, f1_score
    from pyrag_dsl.pipeline.session import Session, Settings

    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()][: args.n]
    methods = args.method.split(",")
    outs = {m: Path(args.out.replace("{method}", m)) for m in methods}
    for out in outs.values():
        out.parent.mkdir(parents=True, exist_ok=True)
    done = {m: _answered(outs[m]) for m in methods}
    if all(r["id"] in done[m] for r in rows for m in methods):
        return
    deadline = time.time() + args.budget_s if args.budget_s else None
    settings = Settings.resolve(flags={"model": args.model, "output_dir": "/tmp/pyrag-models-eval"}, environ={})
    with Session(settings) as session:
        for r in rows:
            for method in methods:
                if r["id"] in done[method]:
                    continue
                if deadline and time.time() > deadline:
                    print("budget spent; rerun the same command to continue", flush=True)
                    return
                load = os.getloadavg()[0]
                t = time.monotonic()
                rec: dict = {"id": r["id"], "question": r["question"], "golds": r["golden_answers"]}
                rec.update(model=args.model, method=method, **answer_one(session.pipeline, method, r["question"]))
                pred = rec.get("prediction") or ""
                rec.update(
                    em=exact_match(pred, r["golden_answers"]),
                    f1=f1_score(pred, r["golden_answers"]),
                    seconds=round(time.monotonic() - t, 2),
                    load1=round(load, 2),
                )
                with outs[method].open("a") as f:
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                print(
                    f"{method} {len(_answered(outs[method]))}/{len(rows)} em={rec['em']:.0f} {rec['seconds']:.0f}s "
                    f"load={load:.1f} {pred!r} | {r['golden_answers']}",
                    flush=True,
                )


def summary(paths: list[str]) -> None:
    print("| model | method | n | EM | F1 | s/question median (min-max) | answers/min | load1 median | extra |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in paths:
        recs = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        if not recs:
            continue
        secs = [r["seconds"] for r in recs]
        extra = ""
        if recs[0]["method"] == "pyrag":
            steps = sum(len(r.get("step_answers") or {}) for r in recs)
            extra = (
                f"step answers 'unknown': {sum(r.get('sentinels', 0) for r in recs)}/{steps}; adaptive fired: "
                f"{sum(bool(r.get('retried')) for r in recs)}/{len(recs)}; comparisons computed: "
                f"{sum(r.get('computed', 0) for r in recs)}; errors: {sum(bool(r.get('error')) for r in recs)}"
            )
        print(
            f"| {recs[0]['model']} | {recs[0]['method']} | {len(recs)} | "
            f"{100 * statistics.mean(r['em'] for r in recs):.1f} | {100 * statistics.mean(r['f1'] for r in recs):.1f} | "
            f"{statistics.median(secs):.1f} ({min(secs):.1f}-{max(secs):.1f}) | {60 * len(secs) / sum(secs):.2f} | "
            f"{statistics.median(r['load1'] for r in recs):.1f} | {extra} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument(
        "--method",
        default="pyrag,vanilla,direct",
        help="comma-separated: pyrag, vanilla, direct; run per question in one session (same load)",
    )
    ap.add_argument("--n", type=int, default=100, help="the first N questions of the shipped dev set")
    ap.add_argument("--out", help="JSON Lines results per method, with {method} in the name (appended; resumable)")
    ap.add_argument("--budget-s", type=float, default=0, help="stop after this many seconds (0: no limit)")
    ap.add_argument("--summary", nargs="+", help="print the markdown table of these result files")
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
    else:
        run(args)


if __name__ == "__main__":
    main()
