"""`pyrag-dsl run | exec | replay | serve-llm`: the parser table, and serve-llm; the commands themselves are
in run_cmd, exec_cmd and replay_cmd."""

from __future__ import annotations

import argparse
import subprocess
import sys

from rich.console import Console

from .common import EXIT_OK, UsageError
from .exec_cmd import cmd_exec
from .flags import add_llm_flags
from .questions_file import MAX_QUESTION_CHARS, MAX_QUESTIONS_BYTES, read_questions
from .replay_cmd import cmd_replay, replay_overrides
from .run_cmd import cmd_run

VLLM_PORTS = {"plan": 8336, "answer": 8337}


def vllm_command(args: argparse.Namespace) -> list[str]:
    port = args.port or VLLM_PORTS[args.role]
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        args.model,
        "--host",
        args.host,
        "--port",
        str(port),
        "--served-model-name",
        args.model,
        "--tensor-parallel-size",
        str(args.tensor_parallel_size),
        "--max-model-len",
        str(args.max_model_len),
        "--generation-config",
        "vllm",
    ]
    if getattr(args, "adapter", None):  # LoRA adapters, requested by their NAME (pyrag-dsl rl train)
        cmd += ["--enable-lora", "--lora-modules", *args.adapter, "--max-lora-rank", str(args.max_lora_rank)]
    return cmd + list(args.vllm_args or [])


def cmd_serve_llm(args: argparse.Namespace, console: Console) -> int:
    cmd = vllm_command(args)
    env_hint = "PLAN_LLM" if args.role == "plan" else "LLM"
    url = f"http://{args.host if args.host != '0.0.0.0' else '127.0.0.1'}:{cmd[cmd.index('--port') + 1]}/v1"
    if args.adapter and any("=" not in a for a in args.adapter):
        raise UsageError("--adapter wants NAME=PATH")
    served = args.adapter[0].split("=", 1)[0] if args.adapter else args.model
    if args.dry_run:
        print(" ".join(cmd))
        print(f"# then: export {env_hint}_BASE_URL={url} {env_hint}_MODEL={served}")
        return EXIT_OK
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise UsageError(
            "vLLM is not installed (it needs a GPU): pip install 'pyrag-dsl[vllm]'; --dry-run prints the command"
        )
    console.print(
        f"starting vLLM for the {args.role} role on {url}; then export {env_hint}_BASE_URL={url} "
        f"{env_hint}_MODEL={served}",
        highlight=False,
    )
    return subprocess.call(cmd)


def add_pipeline_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .trace_cmds import add_otel_flags

    p = sub.add_parser(
        "run",
        help="answer questions: decompose, plan, execute, repair, adaptive retrieval",
        description="Answer each question of a file (one per line; - for stdin). Writes "
        "OUTPUT_DIR/<timestamp>/<n>/ with generated_code.py, trace.jsonl and result.json.",
    )
    p.add_argument(
        "questions",
        help="questions file, one per line, or - for standard input; JSON Lines rows "
        'with a "question" key (an eval data file) work too',
    )
    p.add_argument("--output-dir", help="where results go (default: $OUTPUT_DIR or ./outputs)")
    p.add_argument("--json", action="store_true", help="print results as JSON Lines instead of tables")
    p.add_argument(
        "--concurrency",
        type=int,
        default=1,
        metavar="N",
        help="questions in flight (default 1); results are still saved and printed in input order",
    )
    p.add_argument(
        "--llm-inflight",
        type=int,
        metavar="N",
        help="cap on requests in flight to each LLM server (default: --concurrency)",
    )
    p.add_argument(
        "--retrieval-inflight", type=int, metavar="N", help="cap on requests in flight to the retriever (default: none)"
    )
    add_llm_flags(p)
    p.set_defaults(func=cmd_run)
    add_otel_flags(p)

    p = sub.add_parser("exec", help="run a given program with the configured tools and print its trace")
    p.add_argument("program", help="program file (.py), or - for standard input")
    p.add_argument("--trace", help="also write the trace (JSON Lines) to this file")
    add_llm_flags(p)
    p.set_defaults(func=cmd_exec)
    add_otel_flags(p)

    p = sub.add_parser(
        "replay",
        help="re-execute a recorded run with its recorded tool outputs",
        description="Render a recorded run (trace.jsonl) and re-execute its program with the "
        "recorded tool outputs: no LLM and no retriever. Exits 1 with a step-level diff when the "
        "replay does not reproduce the recording.",
    )
    p.add_argument("trace", help="trace.jsonl from an outputs directory")
    p.add_argument("--live", action="store_true", help="re-run against the current tools and show the diff")
    p.add_argument("--step", type=int, help="print one step in full")
    add_llm_flags(p)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser(
        "serve-llm",
        help="start vLLM's OpenAI-compatible server for a role (GPU)",
        description="Start vLLM with the settings the pipeline expects: the Plan role on port "
        "8336, Decompose/Answer on 8337, as in the reference. Needs 'pip install pyrag-dsl[vllm]'.",
    )
    p.add_argument("--role", choices=("plan", "answer"), required=True)
    p.add_argument(
        "--model", required=True, help="e.g. Qwen/Qwen2.5-Coder-7B-Instruct (plan), Qwen/Qwen2.5-7B-Instruct (answer)"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, help="default: 8336 for plan, 8337 for answer")
    p.add_argument("--tensor-parallel-size", type=int, default=1)
    p.add_argument("--max-model-len", type=int, default=8192)
    p.add_argument(
        "--adapter",
        action="append",
        metavar="NAME=PATH",
        help="serve a LoRA adapter under NAME (requests use model NAME); repeatable",
    )
    p.add_argument("--max-lora-rank", type=int, default=64, help="largest LoRA rank to serve (default 64)")
    p.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    p.add_argument("vllm_args", nargs=argparse.REMAINDER, help="extra arguments for vLLM after --")
    p.set_defaults(func=cmd_serve_llm)


__all__ = [
    "MAX_QUESTIONS_BYTES",
    "MAX_QUESTION_CHARS",
    "add_pipeline_commands",
    "cmd_exec",
    "cmd_replay",
    "cmd_run",
    "read_questions",
    "replay_overrides",
    "vllm_command",
]
