"""`pyrag-dsl run | exec | replay | serve-llm`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..config import jsonl
from ..config.limits import MAX_QUESTION_CHARS  # one question (a line); eval's cap too
from . import signals
from .common import (
    EXIT_OK,
    EXIT_RUNTIME,
    UsageError,
    name_the_crash,
    open_session,
    read_text,
    render_error,
    save_result,
    server_died,
    settings_from_args,
)
from .flags import add_llm_flags
from .render import show_program, show_result, step_table
from .safe_text import error_line, markup, text

EXIT_FAILED = 1
VLLM_PORTS = {"plan": 8336, "answer": 8337}


MAX_QUESTIONS_BYTES = 10_000_000  # the questions file as a whole


def read_questions(path: str) -> list[str]:
    """One question per non-empty line, or JSON Lines rows with a "question" (when the first line is an
    object); lines are split on "\\n" only and a BOM is dropped (config.jsonl), so a JSON row holding U+2028
    stays one row. A line over MAX_QUESTION_CHARS or a file over MAX_QUESTIONS_BYTES is a usage error naming it."""
    name = "standard input" if path == "-" else path
    if path == "-":
        data = sys.stdin.buffer.read(MAX_QUESTIONS_BYTES + 1)
    else:
        p = Path(path)
        if not p.is_file():
            raise UsageError(f"no such file: {path}" if not p.exists() else f"{path} is not a file")
        with p.open("rb") as f:
            data = f.read(MAX_QUESTIONS_BYTES + 1)
    if len(data) > MAX_QUESTIONS_BYTES:
        raise UsageError(f"{name} is over {MAX_QUESTIONS_BYTES:,} bytes; split it into several files")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{name} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    lines = [(n, line.strip()) for n, line in jsonl.lines(text)]
    if not lines:
        raise UsageError(f"no questions in {'standard input' if path == '-' else path} (one question per line)")
    json_lines = _question_of_row(lines[0][1]) is not None  # an eval data file: each row's "question"
    questions = []
    for n, line in lines:
        question = _question_of_row(line) if json_lines else line
        if question is None:
            raise UsageError(
                f"{name} line {n}: the file reads as JSON Lines (its first line is an object with a "
                f'"question"), but this line is not one'
            )
        if len(question) > MAX_QUESTION_CHARS:
            raise UsageError(
                f"{name} line {n}: the question has {len(question):,} characters, over the "
                f"{MAX_QUESTION_CHARS:,}-character limit (one question per line)"
            )
        questions.append(question)
    return questions


def _question_of_row(line: str) -> str | None:
    """The "question" of a JSON Lines row, or None when the line is not such a row."""
    if not line.startswith("{"):
        return None
    try:
        row = jsonl.loads(line)
    except jsonl.JsonError:
        return None
    question = row.get("question") if isinstance(row, dict) else None
    return question.strip() if isinstance(question, str) and question.strip() else None


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from ..pipeline.outputs import new_run_dir
    from ..pipeline.runner import Interrupted
    from .run_batch import check_flags, cmd_run_concurrent

    check_flags(args)
    questions = read_questions(args.questions)
    settings = settings_from_args(args)
    quiet = args.json
    status = Console(stderr=True) if quiet else console
    if settings.embedded_llm and not quiet:
        from ..agents.models import DEFAULT_MODEL

        status.print(
            f"[dim]No LLM configured: starting the embedded llama.cpp server ({settings.gguf or DEFAULT_MODEL}; "
            "`pyrag-dsl models` lists the others; see README for a 7B model behind vLLM).[/dim]"
        )
    if getattr(args, "concurrency", 1) > 1 and len(questions) > 1:  # N in flight, printed in input order
        return cmd_run_concurrent(args, questions, settings, console, status)
    session = open_session(settings, status)
    failed = unsaved = 0
    run_dir = None
    try:
        if not quiet:
            # on stderr: a reader of standard output that goes away (`| head`) must not lose the results
            Console(stderr=True).print(f"[dim]LLM: {markup(session.describe_llm())}[/dim]", highlight=False)
        from rich.progress import Progress

        run_dir = new_run_dir(settings.output_dir)
        many = len(questions) > 1
        progress = Progress(console=status, transient=True) if many else None
        task = progress.add_task("questions", total=len(questions)) if progress else None
        if progress:
            progress.start()
        try:
            for n, question in enumerate(questions, 1):
                try:
                    result = session.pipeline.run(question)
                except Interrupted as stop:  # keep what this question had computed, then stop
                    signals.name_the_signal(stop.result)
                    saved = save_result(run_dir, n, stop.result)
                    if quiet:  # its JSON line too, as for a finished question
                        print(
                            json.dumps(
                                {"n": n, "output": str(saved) if saved else None, **stop.result.to_dict()},
                                ensure_ascii=False,
                            ),
                            flush=True,
                        )
                    status.print(
                        f"[red]{signals.interrupt_word()}[/red] during question {n}"
                        + (f"; partial result in {markup(saved)}" if saved else ""),
                        highlight=False,
                    )
                    return signals.interrupt_exit_code()
                name_the_crash(result, session.server_crash())
                out = save_result(run_dir, n, result)  # on a failed write: one line on stderr, answer still shown
                unsaved += out is None
                failed += result.error is not None
                if quiet:
                    print(
                        json.dumps(
                            {"n": n, "output": str(out) if out else None, **result.to_dict()}, ensure_ascii=False
                        ),
                        flush=True,
                    )
                elif many:
                    progress.console.print(
                        f"[bold]{n}.[/bold] {markup(question)}\n   → {markup(result.final_answer)}"
                        + (f"  {error_line(result.error)}" if result.error else ""),
                        highlight=False,
                    )
                else:
                    show_result(console, result)
                if progress:
                    progress.advance(task)
                if session.server_crash() is not None:
                    return server_died(status, session.server_crash(), n, len(questions))
        finally:
            if progress:
                progress.stop()
    finally:
        session.close()
        if run_dir is not None:
            status.print(f"[dim]outputs: {markup(run_dir)}[/dim]")
            status.print(f"[dim]view: pyrag-dsl view {markup(run_dir / '1' if len(questions) == 1 else run_dir)}[/dim]")
    if unsaved:
        return EXIT_RUNTIME
    return EXIT_OK if failed == 0 else EXIT_FAILED


def cmd_exec(args: argparse.Namespace, console: Console) -> int:
    from ..agents.answer import Sentinels
    from ..grammar import validate
    from ..interpreter import CallCache
    from ..pipeline.runner import Executor
    from .trace_cmds import export_trace

    source = read_text(args.program)
    settings = settings_from_args(args)
    from ..pipeline.config import pipeline_config

    cfg = pipeline_config(settings)
    checked = validate(source, cfg.language, cfg.limits)
    if not checked.ok:
        for err in checked.errors:
            render_error(console, err, args.program)
        return EXIT_FAILED
    session = open_session(settings, console)
    trace: list = []
    executor = None
    try:
        tools = session.pipeline.tools()
        executor = Executor(cfg, tools, Sentinels(cfg.sentinels), trace)
        run = executor.execute(checked.program, CallCache(), 1)
        executor.adaptive(1)
        export_trace({"program": args.program, "final_answer": run.env.get("final_answer")}, trace)  # --otlp-endpoint
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: keep the steps that finished (shown, and saved with --trace)
        if trace:
            try:
                console.print(step_table(trace, title=f"Steps before {signals.interrupt_word()}"))
            except Exception:  # noqa: BLE001 - showing them must not hide the interrupt
                pass
        if args.trace and executor is not None and executor.run is not None:
            from ..pipeline.outputs import OutputError

            try:
                _write_exec_trace(
                    args,
                    trace,
                    source,
                    cfg,
                    executor.run,
                    {"type": "Interrupted", "message": "interrupted by a signal"},
                )
            except OutputError as e:
                Console(stderr=True, soft_wrap=True).print(Text("error: ", style="red") + text(str(e)))
        raise
    finally:
        session.close()
    show_program(console, source)
    console.print(step_table(trace))
    unsaved = None
    if args.trace:
        from ..pipeline.outputs import OutputError

        try:
            _write_exec_trace(args, trace, source, cfg, run, run.error.to_dict() if run.error else None)
            console.print(f"[dim]trace: {args.trace}[/dim]")
        except OutputError as e:  # say so, and still show the answer
            unsaved = e
    if run.error is not None:
        console.print(f"[red]Error:[/red] {markup(run.error)}", highlight=False)
    else:
        console.print(
            f"[bold green]final_answer[/bold green] = {markup(repr(run.env.get('final_answer')))}", highlight=False
        )
    if unsaved is not None:
        Console(stderr=True, soft_wrap=True).print(Text("error: ", style="red") + Text(str(unsaved)))
        return EXIT_RUNTIME
    return EXIT_FAILED if run.error is not None else EXIT_OK


def _write_exec_trace(args: argparse.Namespace, trace: list, source: str, cfg, run, error: dict | None) -> None:
    """exec --trace: the events, a final event, and a header with the settings, limits and language.
    Raises OutputError (naming the file) when it cannot be written."""
    from ..pipeline.events import FinalEvent
    from ..pipeline.outputs import write_trace
    from ..pipeline.runner import _emit

    final = run.env.get("final_answer")
    _emit(trace, FinalEvent, final_answer=None if final is None else str(final), program=source, error=error)
    write_trace(args.trace, trace, {"program": args.program, "settings": cfg.settings()})


def cmd_replay(args: argparse.Namespace, console: Console) -> int:
    from ..interpreter.trace import read_jsonl
    from ..pipeline.replay import ReplayError, replay
    from ..pipeline.steps import describe_event

    path = Path(args.trace)
    if not path.is_file():
        raise UsageError(f"{'not a file' if path.exists() else 'no such trace file'}: {args.trace}")
    try:
        header, events = read_jsonl(path)
    except UnicodeDecodeError:
        raise UsageError(f"{args.trace}: not a trace (not UTF-8 text)") from None
    except ValueError as e:
        raise UsageError(f"{args.trace}: {e}") from None
    if args.step is not None:
        match = [e for e in events if e.step == args.step]
        if not match:
            raise UsageError(f"no step {args.step} in {args.trace} (steps 1..{len(events)})")
        console.print(describe_event(match[0]), highlight=False, markup=False)
        return EXIT_OK
    overrides = replay_overrides(args)
    tools = None
    session = None
    if args.live:
        session = open_session(settings_from_args(args), console)
        tools = session.pipeline.tools()
    try:
        report = replay(header, events, tools=tools, overrides=overrides)
    except ReplayError as e:
        raise UsageError(f"{args.trace}: {e}") from None
    finally:
        if session is not None:
            session.close()
    decompose = next((e for e in events if e.kind == "decompose"), None)
    if decompose is not None:
        console.print(f"[bold]Question:[/bold] {markup(decompose.question)}", highlight=False)
    final = next((e for e in reversed(events) if e.kind == "final"), None)
    if final is not None and final.program:
        show_program(console, final.program)
    console.print(step_table([e for e in events if e.kind not in ("plan", "decompose")], title="Recorded steps"))
    if report.ok:
        console.print(
            f"[green]replay OK[/green]: {report.steps_compared} steps reproduced, final answer "
            f"{markup(repr(report.final_answer_replayed))}",
            highlight=False,
        )
        return EXIT_OK
    table = Table("step", "field", "recorded", "replayed", title="Differences", title_justify="left")
    for d in report.diffs[:50]:
        table.add_row(str(d.step), text(d.field), text(str(d.recorded)[:80]), text(str(d.replayed)[:80]))
    console.print(table)
    console.print(
        f"final answer: recorded {markup(repr(report.final_answer_recorded))}, replayed "
        f"{markup(repr(report.final_answer_replayed))}",
        highlight=False,
    )
    if args.live and report.new_error:  # the current tools failed where the recording did not
        Console(stderr=True, soft_wrap=True).print(
            Text("error: ", style="red")
            + text(f"the live replay failed: {report.error.get('type')}: {report.error.get('message')}")
        )
        return EXIT_RUNTIME
    if args.live:
        return EXIT_OK
    console.print("[red]replay does not reproduce the recorded run[/red]")
    return EXIT_FAILED


# replay flags: the what-if settings (honoured with --live), and those that only choose the live tools
_WHAT_IF_FLAGS = {"topk": "--topk", "boosted_topk": "--boosted-topk", "policy": "--policy", "parallel": "--parallel"}
_LIVE_ONLY_FLAGS = {
    "llm_url": "--llm-url",
    "llm_model": "--llm-model",
    "plan_llm_url": "--plan-llm-url",
    "plan_llm_model": "--plan-llm-model",
    "model": "--model",
    "timeout": "--timeout",
    "no_grammar": "--no-grammar",
    "plan_grammar": "--plan-grammar",
    "retriever_url": "--retriever-url",
    "index": "--index",
    "config": "--config",
    "threads": "--threads",
    "n_ctx": "--n-ctx",
    "omp_wait_policy": "--omp-wait-policy",
    "no_prompt_cache": "--no-prompt-cache",
    "deadline": "--deadline",
    "retriever_timeout": "--retriever-timeout",
    "retriever_retries": "--retriever-retries",
    "breaker_failures": "--fail-after",
}


def replay_overrides(args: argparse.Namespace) -> dict:
    """The what-if settings given to `replay`. They need --live (recorded outputs exist only for the
    recorded calls); --max-repairs never applies (replay re-executes the recorded program, no planning)."""
    if getattr(args, "max_repairs", None) is not None:
        raise UsageError("--max-repairs does not apply to replay: it re-executes the recorded program")
    overrides = {k: getattr(args, k) for k in _WHAT_IF_FLAGS if getattr(args, k, None) not in (None, False)}
    if args.live:
        return overrides
    flags = {**_WHAT_IF_FLAGS, **_LIVE_ONLY_FLAGS}
    given = [flag for k, flag in flags.items() if getattr(args, k, None) not in (None, False)]
    if given:
        raise UsageError(
            f"{', '.join(given)} need --live: without it every call is answered from the recording "
            "with the recorded settings; with --live it is a what-if run against the current tools"
        )
    return overrides


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


def add_pipeline_commands(sub) -> None:
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


__all__ = ["add_pipeline_commands", "read_questions", "vllm_command"]
