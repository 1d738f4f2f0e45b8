"""`pyrag-dsl exec`: run a given program with the configured tools and print its trace."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from . import signals
from .common import EXIT_OK, EXIT_RUNTIME, open_session, pipeline_of, read_text, render_error, settings_from_args
from .exits import EXIT_FAILED
from .render import show_program, step_table
from .safe_text import markup, text

if TYPE_CHECKING:
    from ..config.settings import Settings
    from ..grammar import Program
    from ..interpreter import Run
    from ..interpreter.trace import TraceEvent
    from ..pipeline.adaptive import Executor
    from ..pipeline.config import PipelineConfig


def cmd_exec(args: argparse.Namespace, console: Console) -> int:
    from ..grammar import validate
    from ..pipeline.config import pipeline_config

    source = read_text(args.program)
    settings = settings_from_args(args)
    cfg = pipeline_config(settings)
    checked = validate(source, cfg.language, cfg.limits)
    if checked.program is None:
        for err in checked.errors:
            render_error(console, err, args.program)
        return EXIT_FAILED
    trace: list[TraceEvent] = []
    run = _execute(args, console, settings, cfg, checked.program, source, trace)
    show_program(console, source)
    console.print(step_table(trace))
    return _report(args, console, trace, source, cfg, run)


def _execute(
    args: argparse.Namespace,
    console: Console,
    settings: Settings,
    cfg: PipelineConfig,
    program: Program,
    source: str,
    trace: list[TraceEvent],
) -> Run:
    """Run the program (adaptive retrieval included), its events going to `trace`. On Ctrl-C or SIGTERM the
    steps that finished are shown, and saved with --trace, before the interrupt goes on."""
    from ..agents.answer import Sentinels
    from ..interpreter import CallCache
    from ..pipeline.adaptive import Executor
    from .trace_cmds import export_trace

    session = open_session(settings, console)
    executor = None
    try:
        tools = pipeline_of(session).tools()
        executor = Executor(cfg, tools, Sentinels(cfg.sentinels), trace)
        run = executor.execute(program, CallCache(), 1)
        executor.adaptive(1)
        export_trace(
            {"program": args.program, "final_answer": run.variables.get("final_answer")}, trace
        )  # --otlp-endpoint
        return run
    except KeyboardInterrupt:
        _keep_interrupted_steps(args, console, trace, source, cfg, executor)
        raise
    finally:
        session.close()


def _keep_interrupted_steps(
    args: argparse.Namespace,
    console: Console,
    trace: list[TraceEvent],
    source: str,
    cfg: PipelineConfig,
    executor: Executor | None,
) -> None:
    """After Ctrl-C / SIGTERM: show the steps that finished, and write them with --trace."""
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


def _report(
    args: argparse.Namespace, console: Console, trace: list[TraceEvent], source: str, cfg: PipelineConfig, run: Run
) -> int:
    """The trace written (--trace), then the error or the final answer; the exit code."""
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
            f"[bold green]final_answer[/bold green] = {markup(repr(run.variables.get('final_answer')))}",
            highlight=False,
        )
    if unsaved is not None:
        Console(stderr=True, soft_wrap=True).print(Text("error: ", style="red") + Text(str(unsaved)))
        return EXIT_RUNTIME
    return EXIT_FAILED if run.error is not None else EXIT_OK


def _write_exec_trace(
    args: argparse.Namespace,
    trace: list[TraceEvent],
    source: str,
    cfg: PipelineConfig,
    run: Run,
    error: dict[str, Any] | None,
) -> None:
    """exec --trace: the events, a final event, and a header with the settings, limits and language.
    Raises OutputError (naming the file) when it cannot be written."""
    from ..pipeline.events import FinalEvent, append_event
    from ..pipeline.outputs import write_trace

    final = run.variables.get("final_answer")
    append_event(trace, FinalEvent, final_answer=None if final is None else str(final), program=source, error=error)
    write_trace(args.trace, trace, {"program": args.program, "settings": cfg.settings()})


__all__ = ["cmd_exec"]
