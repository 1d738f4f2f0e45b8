"""`pyrag-dsl replay`: render a recorded run and re-execute its program with the recorded tool outputs (or,
with --live, against the current tools), showing the step-level differences."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .common import (
    EXIT_OK,
    EXIT_RUNTIME,
    UsageError,
    open_session,
    pipeline_of,
    settings_from_args,
)
from .exits import EXIT_FAILED
from .render import show_program, step_table
from .safe_text import markup, text
from .trace_cmds import read_trace_file

if TYPE_CHECKING:
    from ..interpreter.trace import TraceEvent
    from ..pipeline.replay import ReplayReport


def cmd_replay(args: argparse.Namespace, console: Console) -> int:
    header, events = read_trace_file(Path(args.trace))
    if args.step is not None:
        return _show_step(args, console, events)
    report = _replay(args, console, header, events)
    _show_recording(console, events)
    if report.ok:
        console.print(
            f"[green]replay OK[/green]: {report.steps_compared} steps reproduced, final answer "
            f"{markup(repr(report.final_answer_replayed))}",
            highlight=False,
        )
        return EXIT_OK
    return _show_differences(args, console, report)


def _show_step(args: argparse.Namespace, console: Console, events: list[TraceEvent]) -> int:
    """`replay --step N`: that step in full."""
    from ..pipeline.steps import describe_event

    match = [e for e in events if e.step == args.step]
    if not match:
        raise UsageError(f"no step {args.step} in {args.trace} (steps 1..{len(events)})")
    console.print(describe_event(match[0]), highlight=False, markup=False)
    return EXIT_OK


def _replay(
    args: argparse.Namespace, console: Console, header: dict[str, Any], events: list[TraceEvent]
) -> ReplayReport:
    """The replay's report: with the recorded outputs, or with --live against the session's tools."""
    from ..pipeline.replay import ReplayError, replay

    overrides = replay_overrides(args)
    tools = None
    session = None
    if args.live:
        session = open_session(settings_from_args(args), console)
        tools = pipeline_of(session).tools()
    try:
        return replay(header, events, tools=tools, overrides=overrides)
    except ReplayError as e:
        raise UsageError(f"{args.trace}: {e}") from None
    finally:
        if session is not None:
            session.close()


def _show_recording(console: Console, events: list[TraceEvent]) -> None:
    """The recorded question, final program and steps."""
    from ..pipeline.events import DecomposeEvent, FinalEvent

    decompose = next((e for e in events if e.kind == "decompose"), None)
    if isinstance(decompose, DecomposeEvent):
        console.print(f"[bold]Question:[/bold] {markup(decompose.question)}", highlight=False)
    final = next((e for e in reversed(events) if e.kind == "final"), None)
    if isinstance(final, FinalEvent) and final.program:
        show_program(console, final.program)
    console.print(step_table([e for e in events if e.kind not in ("plan", "decompose")], title="Recorded steps"))


def _show_differences(args: argparse.Namespace, console: Console, report: ReplayReport) -> int:
    """The steps that differ and both final answers; the exit code (with --live a difference is the
    what-if's answer, not a failure, unless the live run failed where the recording did not)."""
    table = Table("step", "field", "recorded", "replayed", title="Differences", title_justify="left")
    for d in report.diffs[:50]:
        table.add_row(str(d.step), text(d.field), text(str(d.recorded)[:80]), text(str(d.replayed)[:80]))
    console.print(table)
    console.print(
        f"final answer: recorded {markup(repr(report.final_answer_recorded))}, replayed "
        f"{markup(repr(report.final_answer_replayed))}",
        highlight=False,
    )
    if (
        args.live and report.new_error and report.error is not None
    ):  # the current tools failed where the recording did not
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


def replay_overrides(args: argparse.Namespace) -> dict[str, Any]:
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


__all__ = ["cmd_replay", "replay_overrides"]
