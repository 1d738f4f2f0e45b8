"""`pyrag-dsl rl build-data | train | export | merge`: RL fine-tuning with verl (see docs/rl.md)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from .common import EXIT_INVALID, EXIT_OK, UsageError

if TYPE_CHECKING:
    from ..rl.launch import TrainPlan


def cmd_build_data(args: argparse.Namespace, console: Console) -> int:
    from ..rl.data import SETS, Builder, BuildError, BuildOptions, write_sets
    from ..rl.sources import SourceError, read_qa, read_records

    try:
        options = BuildOptions(
            sets=tuple(args.sets.split(",")) if args.sets else tuple(SETS),
            val_fraction=args.val_fraction,
            seed=args.seed,
            topks=tuple(int(k) for k in args.topks.split(",")),
            correct_if=args.correct_if,
        )
        qa = [item for path in args.qa or [] for item in read_qa(path)]
        records, skipped = [], 0
        for path in args.records or []:
            got, bad = read_records(path)
            records += got
            skipped += bad
    except (BuildError, SourceError, ValueError) as e:
        raise UsageError(str(e)) from None
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise UsageError(f"{out} exists and is not empty (use --force to overwrite)")
    retriever = None
    if "answer_with_docs" in options.sets:
        from ..retrievers.embedded import open_retriever

        retriever = open_retriever(args.retriever_url, args.index)
    try:
        rows, reports = Builder(options, retriever).build(qa, records)
    except BuildError as e:
        raise UsageError(str(e)) from None
    inputs = {
        "qa": args.qa or [],
        "records": args.records or [],
        "skipped_records": skipped,
        "seed": args.seed,
        "val_fraction": args.val_fraction,
        "topks": list(options.topks),
        "correct_if": options.correct_if,
        "retriever": args.retriever_url or args.index or "embedded",
    }
    summary = write_sets(rows, reports, out, inputs)
    table = Table("set", "train", "val", "dropped (why)")
    for name, s in summary["sets"].items():
        why = ", ".join(f"{k} {v}" for k, v in sorted(s["dropped"].items())) or "-"
        table.add_row(name, str(s["kept"].get("train", 0)), str(s["kept"].get("val", 0)), why)
    console.print(table)
    if skipped:
        console.print(f"{skipped} record(s) skipped (no question, or a baseline method's)")
    console.print(f"wrote {out}/<set>/{{train,val}}.parquet and {out}/summary.json", highlight=False)
    empty = [n for n, s in summary["sets"].items() if not s["kept"].get("train")]
    if empty:
        console.print(f"[yellow]no training rows for: {', '.join(empty)}[/yellow]")
    return EXIT_INVALID if len(empty) == len(summary["sets"]) else EXIT_OK


def _kv(pairs: list[str] | None, flag: str) -> dict[str, str]:
    from ..rl.launch import LaunchError, parse_sets

    try:
        return parse_sets(pairs or [])
    except LaunchError as e:
        raise UsageError(f"{flag}: {e}") from None


def cmd_train(args: argparse.Namespace, console: Console) -> int:
    from ..rl.launch import LaunchError, plan_stage

    try:
        plan = plan_stage(
            args.stage,
            args.model,
            Path(args.data),
            adapter=args.adapter,
            answer_adapter=args.answer_adapter,
            plan_adapter=args.plan_adapter,
            answer_url=args.answer_url,
            plan_url=args.plan_url,
            retriever_url=args.retriever_url,
            n_gpus_per_node=args.n_gpus_per_node,
            nnodes=args.nnodes,
            output_dir=args.output_dir,
            sets=_kv(args.set, "--set"),
            reward_kwargs=_kv(args.reward, "--reward"),
            check_files=not args.dry_run,
        )
    except LaunchError as e:
        raise UsageError(str(e)) from None
    if args.check_config:
        from ..rl.verl_config import VerlConfigError, compose

        try:
            compose(plan.override_list())
        except VerlConfigError as e:
            console.print(f"[red]the overrides do not compose against verl's config:[/red] {e}", highlight=False)
            return EXIT_INVALID
        console.print("[green]overrides compose against verl's config[/green]")
    if args.dry_run or args.check_config:
        if plan.frozen:  # comments, so that the output is a script that only trains
            print("# start first: the frozen agents of this stage (each on its own GPUs) and the retriever")
            for endpoint in plan.frozen:
                print("#   " + " ".join(endpoint.serve_command(args.model)))
            print(f"#   a retrieval server at {plan.retriever_url} (pyrag-dsl serve-retriever)")
        print(plan.shell())
        return EXIT_OK
    import importlib.util

    if importlib.util.find_spec("verl") is None:
        raise UsageError(
            "verl is not installed (GPU machines: pip install 'pyrag-dsl[verl]'); --dry-run prints the command"
        )
    _check_endpoints(plan)
    console.print(f"starting verl GRPO for the {args.stage} stage", highlight=False)
    return subprocess.call(plan.command(), env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _check_endpoints(plan: TrainPlan) -> None:
    """Fail fast when a frozen agent or the retriever does not answer (a reward would score 0 forever)."""
    import httpx

    for endpoint in plan.frozen:
        try:
            models = httpx.get(endpoint.url.rstrip("/") + "/models", timeout=10).json()
            names = {m.get("id") for m in models.get("data", [])}
        except (httpx.HTTPError, ValueError) as e:
            serve = " ".join(endpoint.serve_command(plan.overrides["actor_rollout_ref.model.path"]))
            raise UsageError(
                f"the frozen {endpoint.role} agent at {endpoint.url} does not answer ({e}); start it with: {serve}"
            ) from None
        if endpoint.model not in names:
            raise UsageError(
                f"the frozen {endpoint.role} agent at {endpoint.url} serves {sorted(names)}, not {endpoint.model!r}"
            )
    if plan.retriever_url:
        try:
            httpx.post(
                plan.retriever_url.rstrip("/") + "/retrieve",
                json={"queries": ["test"], "topk": 1, "return_scores": True},
                timeout=30,
            ).raise_for_status()
        except httpx.HTTPError as e:
            raise UsageError(f"the retrieval server at {plan.retriever_url} does not answer ({e})") from None


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    from ..rl.launch import export_command

    cmd = export_command(args.checkpoint, args.out)
    if args.dry_run:
        print(" ".join(cmd))
        return EXIT_OK
    if not Path(args.checkpoint).is_dir():
        raise UsageError(f"no such checkpoint directory: {args.checkpoint}")
    return subprocess.call(cmd)


def cmd_merge(args: argparse.Namespace, console: Console) -> int:
    from ..rl.merge import MergeError, adapter_base, merge_adapter

    try:
        base = args.base or adapter_base(args.adapter)
        if not base:
            raise UsageError("the adapter does not name its base model: give --base")
        out = merge_adapter(base, args.adapter, args.out, dtype=args.dtype)
    except MergeError as e:
        raise UsageError(str(e)) from None
    console.print(f"merged {args.adapter} into {base}: {out}", highlight=False)
    print(json.dumps({"base": base, "adapter": args.adapter, "out": str(out)}))
    return EXIT_OK


def add_rl_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "rl",
        help="RL fine-tuning with verl: training data, GRPO + LoRA launch, adapters",
        description="RL fine-tuning of the Answer, Plan and Decompose agents with verl (GRPO + "
        "LoRA), in that order. See docs/rl.md.",
    )
    rsub = p.add_subparsers(dest="rl_command", metavar="ACTION", required=True)

    b = rsub.add_parser(
        "build-data",
        help="build the four verl parquet sets from QA files and run/eval records",
        description="Build OUT/{answer_with_docs,answer_no_docs,plan,decompose}/{train,val}.parquet "
        "with the prompts the agents send at inference, and OUT/summary.json (rows kept, rows "
        "dropped and why).",
    )
    b.add_argument(
        "--qa", action="append", metavar="FILE", help="QA JSON Lines {id, question, golden_answers}; repeatable"
    )
    b.add_argument(
        "--records",
        action="append",
        metavar="PATH",
        help="eval records (JSON Lines), result.json files of 'pyrag-dsl run', or directories of them; repeatable",
    )
    b.add_argument("--out", required=True, help="output directory")
    b.add_argument(
        "--sets", help="comma-separated subset of answer_with_docs,answer_no_docs,plan,decompose (default: all)"
    )
    src = b.add_mutually_exclusive_group()
    src.add_argument("--retriever-url", help="retrieval server for answer_with_docs (default: the embedded corpus)")
    src.add_argument("--index", help="index directory for answer_with_docs")
    b.add_argument("--topks", default="3,5,8,10", help="top-k values drawn per question for answer_with_docs")
    b.add_argument("--val-fraction", type=float, default=0.1, help="share of questions in validation (default 0.1)")
    b.add_argument("--seed", type=int, default=0, help="seed of the split and of the top-k draws")
    b.add_argument(
        "--correct-if",
        choices=("em", "acc", "f1"),
        default="em",
        help="when a run's prediction counts as correct for answer_no_docs (f1: F1 >= 0.5)",
    )
    b.add_argument("--force", action="store_true", help="write into a non-empty output directory")
    b.set_defaults(func=cmd_build_data)

    t = rsub.add_parser(
        "train",
        help="run (or print) verl's GRPO + LoRA training of one curriculum stage",
        description="Build python -m verl.trainer.main_ppo for a stage: answer, then plan, then "
        "decompose, each starting from the previous stage's adapter (--adapter). The plan and "
        "decompose rewards call the frozen agents (pyrag-dsl serve-llm, commands printed by "
        "--dry-run) and the retrieval server.",
    )
    t.add_argument("--stage", choices=("answer", "plan", "decompose"), required=True)
    t.add_argument("--model", required=True, help="base model, e.g. Qwen/Qwen2.5-7B-Instruct")
    t.add_argument("--data", required=True, help="the output directory of 'pyrag-dsl rl build-data'")
    t.add_argument("--adapter", help="the previous stage's LoRA adapter (lora_adapter_path) to start from")
    t.add_argument("--answer-adapter", help="adapter of the frozen Answer agent (plan stage default: --adapter)")
    t.add_argument("--plan-adapter", help="adapter of the frozen Plan agent (decompose stage default: --adapter)")
    t.add_argument("--answer-url", default="http://127.0.0.1:8337/v1", help="frozen Answer agent endpoint")
    t.add_argument("--plan-url", default="http://127.0.0.1:8336/v1", help="frozen Plan agent endpoint")
    t.add_argument("--retriever-url", default="http://127.0.0.1:8008", help="retrieval server for the rewards")
    t.add_argument("--n-gpus-per-node", type=int, default=8, help="GPUs that train, per node (default 8)")
    t.add_argument("--nnodes", type=int, default=1, help="nodes of the Ray cluster (default 1)")
    t.add_argument("--output-dir", help="checkpoints go to OUTPUT_DIR/<stage>-<model>/ (trainer.default_local_dir)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any verl key; repeatable")
    t.add_argument(
        "--reward",
        action="append",
        metavar="KEY=VALUE",
        help="a reward setting (reward_kwargs: topk, run_timeout_s, max_tool_calls, ...); repeatable",
    )
    t.add_argument(
        "--check-config",
        action="store_true",
        help="compose the overrides against the installed verl's Hydra config (no GPU needed)",
    )
    t.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    t.set_defaults(func=cmd_train)

    e = rsub.add_parser(
        "export",
        help="export a verl FSDP checkpoint: merged model and its lora_adapter/",
        description="Run verl's model merger on CHECKPOINT (…/global_step_N/actor): OUT gets the "
        "merged model and OUT/lora_adapter, the adapter for the next stage and for serving.",
    )
    e.add_argument("checkpoint", help="verl checkpoint directory (…/global_step_N/actor)")
    e.add_argument("--out", required=True)
    e.add_argument("--dry-run", action="store_true", help="print the command")
    e.set_defaults(func=cmd_export)

    m = rsub.add_parser("merge", help="merge a LoRA adapter into its base model (peft, CPU is fine)")
    m.add_argument("adapter", help="LoRA adapter directory (adapter_config.json + weights)")
    m.add_argument("--base", help="base model directory or name (default: the one the adapter names)")
    m.add_argument("--out", required=True, help="output directory for the merged model")
    m.add_argument("--dtype", default="auto", help="auto, bfloat16, float16 or float32")
    m.set_defaults(func=cmd_merge)


__all__ = ["add_rl_commands"]
